"""``voxdesk eval propensity``: the look-alike propensity method (WOE/IV scorecard and LightGBM) on any CSV table.

Reads the table (``--sep``), drops ``--drop`` columns (e.g. ``duration``, known only after the call), holds out a
stratified 25 % (or the latest rows with ``--time-column``), fits both models (:func:`recommender.propensity.
fit_propensity`) and prints AUC, KS and the decile lift table of each, the top information values, and with
``--json`` one JSON object as the last line (``best_auc``, ``scorecard_auc``, ``lightgbm_auc``, ``ks``,
``top_decile_lift`` and more).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from core.errors import InvalidInputError, VoxdeskError
from recommender.propensity import ModelReport, PropensityReport, fit_propensity

__all__ = ["register", "run_eval"]


def run_eval(
    data: Path,
    *,
    target: str,
    positive: str,
    sep: str = ",",
    drop: tuple[str, ...] = (),
    time_column: str | None = None,
) -> PropensityReport:
    """Read ``data`` and fit both models; raises :class:`InvalidInputError` for an unreadable table or bad columns."""
    import pandas as pd

    try:
        frame = pd.read_csv(data, sep=sep)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read the table: {exc}", path=str(data)) from exc
    return fit_propensity(frame, target=target, positive=positive, drop=drop, time_column=time_column)


def _render(report: PropensityReport) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    title = (
        f"voxdesk eval propensity — {report.train_rows} training rows, {report.holdout_rows} held out, "
        f"{100 * report.positive_rate:.1f}% positive"
    )
    summary = Table(title=title)
    for col in ("model", "AUC", "KS", "top-decile lift"):
        summary.add_column(col, justify="left" if col == "model" else "right")
    for m in (report.scorecard, report.lightgbm):
        summary.add_row(m.name, f"{m.auc:.4f}", f"{m.ks:.4f}", f"{m.top_decile_lift:.2f}")
    console.print(summary)
    for m in (report.scorecard, report.lightgbm):
        console.print(_deciles(m))
    iv = Table(title=f"information value (top 15 of {len(report.iv)}; the scorecard uses {len(report.selected)})")
    iv.add_column("feature")
    iv.add_column("IV", justify="right")
    for name, value in list(report.iv.items())[:15]:
        iv.add_row(name, f"{value:.3f}")
    console.print(iv)


def _deciles(model: ModelReport) -> object:
    from rich.table import Table

    table = Table(title=f"{model.name}: lift and gain by score decile")
    for col in ("decile", "customers", "positives", "rate", "lift", "cumulative gain"):
        table.add_column(col, justify="right")
    for d in model.deciles:
        table.add_row(str(d.decile), str(d.customers), str(d.positives), f"{100 * d.rate:.1f}%", f"{d.lift:.2f}",
                      f"{100 * d.cumulative_gain:.1f}%")  # fmt: skip
    return table


def register(eval_app: typer.Typer) -> None:
    """Add ``voxdesk eval propensity``."""

    @eval_app.command("propensity")
    def eval_propensity(
        data: Annotated[Path, typer.Option("--data", exists=True, dir_okay=False, help="the table (CSV)")],
        target: Annotated[str, typer.Option(help="the target column")] = "y",
        positive: Annotated[str, typer.Option(help="the target value that counts as positive")] = "yes",
        sep: Annotated[str, typer.Option(help="the column separator")] = ",",
        drop: Annotated[list[str] | None, typer.Option(help="a column to leave out (repeat)")] = None,
        time_column: Annotated[str | None, typer.Option(help="hold out the latest rows by this column")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """Look-alike propensity: WOE/IV scorecard and LightGBM on a hold-out: AUC, KS, lift by decile, IV."""
        from voxdesk.cli import _fail

        try:
            report = run_eval(data, target=target, positive=positive, sep=sep, drop=tuple(drop or ()),
                              time_column=time_column)  # fmt: skip
        except VoxdeskError as exc:
            _fail(exc)
        _render(report)
        if as_json:
            sys.stdout.write(json.dumps(report.as_json()) + "\n")
