"""The `voxdesk` command line against a real SQLite database in a temporary folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def voxdesk(tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VOXDESK_VAR_DIR": str(tmp_path / "var"),
        "VOXDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'voxdesk.db'}",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "voxdesk.cli", *args],
        cwd=tmp_path,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_import_rejects_bad_row_and_names_it(tmp_path: Path) -> None:
    assert voxdesk(tmp_path, "db", "upgrade").returncode == 0
    good = tmp_path / "customers.csv"
    good.write_text("customer_id,name,phones,aum_cny\nC1,周杰,13800138000,1000\nC2,吴敏,13900139000,70000\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,name,phones,aum_cny\nC1,周杰,13800138000,1000\nC2,吴敏,13900139000,-5\n")
    rejected = voxdesk(tmp_path, "import", "customers", str(bad))
    assert rejected.returncode == 2
    assert "row 3 [aum_cny]" in rejected.stderr
    exported = tmp_path / "out"
    assert voxdesk(tmp_path, "export", "customers", str(exported)).returncode == 0
    assert (exported / "customers.csv").read_text().count("\n") == 1  # header only: nothing was imported
    accepted = voxdesk(tmp_path, "import", "customers", str(good))
    assert accepted.returncode == 0, accepted.stderr
    assert "imported 2 customers" in accepted.stdout
    voxdesk(tmp_path, "export", "customers", str(exported))
    assert "C2,吴敏,+8613900139000" in (exported / "customers.csv").read_text()
    # Customer data never reaches the logs (stderr carries the JSON logs).
    for result in (rejected, accepted):
        assert "13800138000" not in result.stderr and "周杰" not in result.stderr


def test_users_add_and_list(tmp_path: Path) -> None:
    voxdesk(tmp_path, "db", "upgrade")
    added = voxdesk(
        tmp_path,
        "users",
        "add",
        "li.na",
        "-r",
        "agent",
        "-r",
        "qa",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert added.returncode == 0, added.stderr
    weak = voxdesk(tmp_path, "users", "add", "weak", "-r", "agent", "--password-stdin", stdin="short\n")
    assert weak.returncode == 2 and "password" in weak.stderr
    listed = voxdesk(tmp_path, "users", "list")
    assert "li.na" in listed.stdout and "agent, qa" in listed.stdout


def test_demo_load_and_production_refusal(tmp_path: Path) -> None:
    voxdesk(tmp_path, "db", "upgrade")
    loaded = voxdesk(tmp_path, "demo", "load")
    assert loaded.returncode == 0, loaded.stderr
    assert "200 customers" in loaded.stdout
    assert "already has customers" in voxdesk(tmp_path, "demo", "load").stdout
    refused = voxdesk(tmp_path, "serve", "--production")
    assert refused.returncode == 2
    assert "refusing to start in production mode" in refused.stderr


@pytest.mark.models
def test_models_check_reports_whisper_base_verified(tmp_path: Path) -> None:
    provisioned = voxdesk(tmp_path, "models", "provision")
    assert provisioned.returncode == 0, provisioned.stderr
    checked = voxdesk(tmp_path, "models", "check", "--json")
    report = json.loads(checked.stdout.strip().splitlines()[-1])
    by_name = {m["name"]: m for m in report["models"]}
    assert by_name["whisper base"]["status"] == "present"
    assert "verified" in by_name["whisper base"]["detail"]
    kinds = {m["kind"] for m in report["models"]}
    assert {"asr", "embeddings", "tts", "diarization", "vision"} <= kinds
    assert checked.returncode == 0
