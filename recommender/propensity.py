"""Look-alike propensity models on a customer table: a WOE/IV logistic-regression scorecard and LightGBM, side by side.

:func:`fit_propensity` takes a table (one row per customer, a target column) and:

1. holds out a stratified share (``holdout``, 25 %) for the report (a time-respecting split when ``time_column``
   is given: the latest rows are held out);
2. adds **interaction features**: every pair of low-cardinality categorical columns (at most
   ``max_pair_levels`` level combinations), so that the scorecard can see what a tree sees;
3. bins every feature optimally against the target (``optbinning``: WOE and information value), keeps those with
   IV ≥ ``min_iv``, and fits an L2 logistic regression on the WOE values: the **scorecard**;
4. fits **LightGBM** on the raw columns (categoricals as categories);
5. reports, for each on the hold-out: ROC AUC, KS, the lift and gain of each score decile, and the IV table.

Heavy libraries (pandas, optbinning, lightgbm, scikit-learn) are imported when a model is fitted. Blocking and
CPU-bound (seconds for 40,000 rows on 2 cores); any thread.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import InvalidInputError

__all__ = ["DecileRow", "ModelReport", "PropensityReport", "fit_propensity", "ks_statistic", "lift_table"]


@dataclass(frozen=True)
class DecileRow:
    """One score decile of the hold-out (decile 1 = the highest scores)."""

    decile: int
    customers: int
    positives: int
    rate: float
    lift: float
    cumulative_gain: float
    """Share of all positives found in this decile and the ones above it."""


@dataclass
class ModelReport:
    """How one model did on the hold-out."""

    name: str
    auc: float
    ks: float
    deciles: list[DecileRow]

    @property
    def top_decile_lift(self) -> float:
        return self.deciles[0].lift if self.deciles else 0.0


@dataclass
class PropensityReport:
    """Both models' reports, the information values and what was fitted on."""

    scorecard: ModelReport
    lightgbm: ModelReport
    iv: dict[str, float] = field(default_factory=dict)
    """Information value of every candidate feature (interactions included), highest first."""
    selected: list[str] = field(default_factory=list)
    """The features the scorecard uses (IV ≥ ``min_iv``)."""
    train_rows: int = 0
    holdout_rows: int = 0
    positive_rate: float = 0.0

    @property
    def best(self) -> ModelReport:
        return max((self.scorecard, self.lightgbm), key=lambda m: m.auc)

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` object (keys per the "Eval and bench commands" table, and more)."""
        best = self.best
        return {
            "best_auc": round(best.auc, 4), "best_model": best.name, "scorecard_auc": round(self.scorecard.auc, 4),
            "lightgbm_auc": round(self.lightgbm.auc, 4), "ks": round(best.ks, 4),
            "top_decile_lift": round(best.top_decile_lift, 3), "scorecard_ks": round(self.scorecard.ks, 4),
            "lightgbm_ks": round(self.lightgbm.ks, 4), "features": len(self.selected),
            "train_rows": self.train_rows, "holdout_rows": self.holdout_rows,
            "positive_rate": round(self.positive_rate, 4),
        }  # fmt: skip


def ks_statistic(y: npt.NDArray[np.int_], score: npt.NDArray[np.float64]) -> float:
    """Kolmogorov–Smirnov distance between the score distributions of positives and negatives (0–1)."""
    order = np.argsort(-score, kind="stable")
    ys = y[order]
    positives, negatives = ys.sum(), len(ys) - ys.sum()
    if positives == 0 or negatives == 0:
        return 0.0
    tpr = np.cumsum(ys) / positives
    fpr = np.cumsum(1 - ys) / negatives
    return float(np.max(np.abs(tpr - fpr)))


def lift_table(y: npt.NDArray[np.int_], score: npt.NDArray[np.float64], bins: int = 10) -> list[DecileRow]:
    """Lift and cumulative gain of each score decile, highest scores first."""
    order = np.argsort(-score, kind="stable")
    ys = y[order]
    total_rate = ys.mean() if len(ys) else 0.0
    total_pos = ys.sum()
    rows, found = [], 0
    for i, part in enumerate(np.array_split(ys, bins), start=1):
        pos = int(part.sum())
        found += pos
        rate = float(part.mean()) if len(part) else 0.0
        rows.append(DecileRow(i, len(part), pos, rate, rate / total_rate if total_rate else 0.0,
                              found / total_pos if total_pos else 0.0))  # fmt: skip
    return rows


def _report(name: str, y: npt.NDArray[np.int_], score: npt.NDArray[np.float64]) -> ModelReport:
    from sklearn.metrics import roc_auc_score

    return ModelReport(name, float(roc_auc_score(y, score)), ks_statistic(y, score), lift_table(y, score))


def fit_propensity(
    frame: Any,
    *,
    target: str,
    positive: str,
    drop: tuple[str, ...] = (),
    holdout: float = 0.25,
    time_column: str | None = None,
    seed: int = 42,
    min_iv: float = 0.02,
    max_pair_levels: int = 120,
) -> PropensityReport:
    """Fit and report both models on ``frame`` (a pandas DataFrame; see the module docstring). Raises
    :class:`InvalidInputError` for a missing target, an unknown column to drop, or a target with one class."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    if target not in frame.columns:
        raise InvalidInputError(f"no target column {target!r}", columns=list(frame.columns)[:50])
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise InvalidInputError(f"columns to drop not in the table: {', '.join(unknown)}")
    y = (frame[target].astype(str) == str(positive)).astype(int).to_numpy()
    if y.min() == y.max():
        raise InvalidInputError(f"the target has one class only (positive value {positive!r})")
    x = frame.drop(columns=[target, *drop])
    if time_column is not None:
        order = np.argsort(x[time_column].to_numpy(), kind="stable")
        cut = int(len(order) * (1 - holdout))
        train_idx, test_idx = order[:cut], order[cut:]
        x = x.drop(columns=[time_column])
        x_tr, x_te, y_tr, y_te = x.iloc[train_idx], x.iloc[test_idx], y[train_idx], y[test_idx]
    else:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=holdout, stratify=y, random_state=seed)
    cats = [c for c in x.columns if not pd.api.types.is_numeric_dtype(x[c])]
    pairs = [(a, b) for a, b in itertools.combinations(cats, 2)
             if x_tr[a].nunique() * x_tr[b].nunique() <= max_pair_levels]  # fmt: skip
    scorecard, iv, selected = _scorecard(x_tr, x_te, y_tr, cats, pairs, min_iv=min_iv)
    tree = _lightgbm(x_tr, x_te, y_tr, cats, seed=seed)
    return PropensityReport(
        scorecard=_report("scorecard", y_te, scorecard), lightgbm=_report("lightgbm", y_te, tree), iv=iv,
        selected=selected, train_rows=len(y_tr), holdout_rows=len(y_te), positive_rate=float(y.mean()),
    )  # fmt: skip


def _with_pairs(x: Any, pairs: list[tuple[str, str]]) -> Any:
    out = x.copy()
    for a, b in pairs:
        out[f"{a}*{b}"] = out[a].astype(str) + "|" + out[b].astype(str)
    return out


def _scorecard(
    x_tr: Any, x_te: Any, y_tr: Any, cats: list[str], pairs: list[tuple[str, str]], *, min_iv: float
) -> tuple[npt.NDArray[np.float64], dict[str, float], list[str]]:
    from optbinning import BinningProcess
    from sklearn.linear_model import LogisticRegression

    f_tr, f_te = _with_pairs(x_tr, pairs), _with_pairs(x_te, pairs)
    categorical = cats + [f"{a}*{b}" for a, b in pairs]
    process = BinningProcess(
        variable_names=list(f_tr.columns), categorical_variables=categorical,
        selection_criteria={"iv": {"min": min_iv}}, min_prebin_size=0.02, max_n_prebins=20,
    )  # fmt: skip
    process.fit(f_tr, y_tr)
    summary = process.summary()
    iv = {str(r["name"]): float(r["iv"]) for _, r in summary.sort_values("iv", ascending=False).iterrows()}
    selected = [str(n) for n in process.get_support(names=True)]
    w_tr, w_te = process.transform(f_tr, metric="woe"), process.transform(f_te, metric="woe")
    model = LogisticRegression(max_iter=3000, C=0.1).fit(w_tr, y_tr)
    return model.predict_proba(w_te)[:, 1], iv, selected


def _lightgbm(x_tr: Any, x_te: Any, y_tr: Any, cats: list[str], *, seed: int) -> npt.NDArray[np.float64]:
    import lightgbm as lgb
    import pandas as pd

    l_tr, l_te = x_tr.copy(), x_te.copy()
    for c in cats:
        l_tr[c] = l_tr[c].astype("category")
        l_te[c] = pd.Categorical(l_te[c], categories=l_tr[c].cat.categories)
    model = lgb.LGBMClassifier(
        n_estimators=400, learning_rate=0.03, num_leaves=31, min_child_samples=50, subsample=0.8, subsample_freq=1,
        colsample_bytree=0.8, random_state=seed, n_jobs=2, verbose=-1,
    )  # fmt: skip
    model.fit(l_tr, y_tr)
    proba: Any = model.predict_proba(l_te)
    return np.asarray(proba[:, 1], dtype=np.float64)
