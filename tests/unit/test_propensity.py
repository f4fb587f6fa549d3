"""Propensity metrics (KS, decile lift and gain) on known scores, and both models on a synthetic table whose signal
is known: an interaction of two categorical columns that only the pair features let the scorecard see."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import InvalidInputError
from recommender.propensity import fit_propensity, ks_statistic, lift_table

pytestmark = pytest.mark.unit


def test_ks_and_lift_on_known_scores() -> None:
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    score = np.linspace(1.0, 0.1, 10)
    assert ks_statistic(y, score) == pytest.approx(1 - 1 / 7 * 1, abs=1e-9) or ks_statistic(y, score) > 0.8
    assert ks_statistic(y, -score) < ks_statistic(y, score)
    rows = lift_table(y, score, bins=5)
    assert [r.positives for r in rows] == [2, 1, 0, 0, 0]
    assert rows[0].lift == pytest.approx(1.0 / 0.3)
    assert rows[-1].cumulative_gain == pytest.approx(1.0)
    assert ks_statistic(np.zeros(5, dtype=int), np.arange(5.0)) == 0.0


def _table(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    channel = rng.choice(["app", "branch", "phone"], n)
    segment = rng.choice(["young", "family", "retired"], n)
    balance = rng.gamma(2.0, 20_000.0, n)
    logit = -2.5 + 2.2 * ((channel == "app") & (segment == "young")) + 1.4 * (balance > 60_000)
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"channel": channel, "segment": segment, "balance": balance, "noise": rng.normal(size=n),
                         "leak": y.astype(int), "bought": np.where(y, "yes", "no")})  # fmt: skip


def test_both_models_find_the_signal_on_a_stratified_holdout() -> None:
    report = fit_propensity(_table(4000), target="bought", positive="yes", drop=("leak",))
    assert report.holdout_rows == 1000 and report.train_rows == 3000
    assert report.scorecard.auc > 0.72 and report.lightgbm.auc > 0.72
    assert "channel*segment" in report.selected and report.iv["channel*segment"] > report.iv["channel"]
    assert report.iv["noise"] < 0.1 < report.iv["balance"]  # binning gives noise a little IV, real signal far more
    assert report.best.top_decile_lift > 2.0
    assert set(report.as_json()) >= {"best_auc", "scorecard_auc", "lightgbm_auc", "ks", "top_decile_lift"}


def test_time_respecting_holdout_keeps_the_latest_rows_out() -> None:
    table = _table(2000).assign(month=np.repeat(np.arange(20), 100))
    report = fit_propensity(table, target="bought", positive="yes", drop=("leak",), time_column="month")
    assert report.holdout_rows == 500


def test_bad_input_is_named() -> None:
    table = _table(200)
    with pytest.raises(InvalidInputError, match="no target column"):
        fit_propensity(table, target="y", positive="yes")
    with pytest.raises(InvalidInputError, match="not in the table"):
        fit_propensity(table, target="bought", positive="yes", drop=("duration",))
    with pytest.raises(InvalidInputError, match="one class"):
        fit_propensity(table, target="bought", positive="maybe")
