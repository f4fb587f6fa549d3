"""``voxdesk eval propensity`` on the real UCI bank marketing table (Moro et al. 2014, CC BY 4.0) from the shared
data: the issue's targets on a stratified 25 % hold-out without ``duration`` (known only after the call)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_targets_on_the_bank_marketing_table(shared_data: Path) -> None:
    table = shared_data / "marketing" / "uci_bank_marketing" / "bank-additional-full.csv"
    if not table.is_file():
        pytest.skip(f"the UCI bank marketing table is not in the shared data ({table})")
    out = subprocess.run(
        [str(Path(sys.executable).with_name("voxdesk")), "eval", "propensity", "--data", str(table), "--target", "y",
         "--positive", "yes", "--sep", ";", "--drop", "duration", "--json"],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["best_auc"] >= 0.81 and result["scorecard_auc"] >= 0.80, result
    assert result["ks"] > 0.4 and result["top_decile_lift"] > 3.0
    assert "lift and gain by score decile" in out.stdout and "information value" in out.stdout
