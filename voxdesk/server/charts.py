"""Small server-rendered SVG charts for the web pages: horizontal bars, lines over periods, stacked bars.

Each function returns an inline ``<svg>`` as :class:`markupsafe.Markup` (a template inserts it as is). Every label
and title is XML-escaped; the charts use presentation attributes only (no ``style``, no script), so they pass the
pages' Content-Security-Policy and need no JavaScript. Sizes are CSS pixels (the SVG scales with its container:
``viewBox`` plus ``width="100%"``). Pure; any thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

__all__ = ["PALETTE", "bar_chart", "line_chart", "stacked_bar_chart"]

PALETTE: tuple[str, ...] = ("#0b5cab", "#e07b00", "#2e7d32", "#b00020", "#6a3d9a", "#00838f", "#8d6e63", "#c2185b")
_FONT = 'font-family="system-ui, sans-serif" font-size="12"'
_MUTED = "#667"
_GRID = "#e3e8ee"


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _num(value: float) -> str:
    return f"{value:.0f}" if abs(value - round(value)) < 1e-9 else f"{value:.2f}".rstrip("0").rstrip(".")


def _open(name: str, title: str, width: int, height: int) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{_e(name)}" role="img" '
        f'aria-label="{_e(title)}" viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet">',
        f"<title>{_e(title)}</title>",
        f'<text x="4" y="16" {_FONT} font-weight="600" fill="#1d2733">{_e(title)}</text>',
    ]


def _empty(name: str, title: str, width: int, empty_text: str) -> Markup:
    parts = _open(name, title, width, 60)
    parts.append(f'<text x="4" y="44" {_FONT} fill="{_MUTED}" data-empty="1">{_e(empty_text)}</text></svg>')
    return Markup("".join(parts))  # noqa: S704 - every label and title went through _e()


def _legend(names: Sequence[str], y: int) -> list[str]:
    parts, x = [], 4
    for i, name in enumerate(names):
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text x="{x + 14}" y="{y}" {_FONT} fill="#1d2733">{_e(name)}</text>')
        x += 24 + 7 * len(name)
    return parts


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    name: str,
    title: str,
    unit: str = "",
    max_value: float | None = None,
    width: int = 640,
    empty_text: str = "no data",
) -> Markup:
    """Horizontal bars, one per ``(label, value)`` in the given order; ``max_value`` fixes the scale (e.g. 100 for
    scores), else the largest value."""
    if not items:
        return _empty(name, title, width, empty_text)
    row, top, label_w = 22, 28, min(220, 16 + 7 * max(len(label) for label, _ in items))
    height = top + row * len(items) + 8
    scale_max = max_value or max((v for _, v in items), default=0.0) or 1.0
    bar_w = width - label_w - 70
    parts = _open(name, title, width, height)
    for i, (label, value) in enumerate(items):
        y = top + i * row
        w = max(0.0, min(1.0, value / scale_max)) * bar_w
        shown = _e(label if len(label) <= 32 else label[:31] + "…")
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" {_FONT} text-anchor="end" fill="#1d2733">{shown}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{PALETTE[0]}">'
            f"<title>{_e(label)}: {_e(_num(value))}{_e(unit)}</title></rect>"
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" {_FONT} fill="{_MUTED}">{_e(_num(value))}{_e(unit)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and title went through _e()


def _x_axis(x_labels: Sequence[str], left: int, step: float, baseline: int) -> list[str]:
    every = max(1, len(x_labels) // 10)
    parts = []
    for i, label in enumerate(x_labels):
        if i % every == 0:
            x = left + step * i + step / 2
            parts.append(f'<text x="{x:.1f}" y="{baseline + 16}" {_FONT} text-anchor="middle" fill="{_MUTED}">')
            parts.append(f"{_e(label)}</text>")
    return parts


def _y_axis(y_max: float, left: int, right: int, top: int, plot_h: int, unit: str) -> list[str]:
    parts = []
    for j in range(5):
        value = y_max * j / 4
        y = top + plot_h - plot_h * j / 4
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{_GRID}"/>')
        parts.append(
            f'<text x="{left - 4}" y="{y + 4:.1f}" {_FONT} text-anchor="end" fill="{_MUTED}">'
            f"{_e(_num(value))}{_e(unit)}</text>"
        )
    return parts


def line_chart(
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    *,
    name: str,
    title: str,
    unit: str = "",
    y_max: float | None = None,
    width: int = 640,
    height: int = 240,
    empty_text: str = "no data",
) -> Markup:
    """One polyline per series over ``x_labels`` (periods); ``None`` values break the line. ``y_max`` fixes the
    scale (e.g. 1 for shares), else the largest value."""
    values = [v for vs in series.values() for v in vs if v is not None]
    if not x_labels or not values:
        return _empty(name, title, width, empty_text)
    left, right, top, bottom = 48, width - 8, 28, height - 40
    plot_h = bottom - top
    top_value = y_max or max(values) or 1.0
    step = (right - left) / len(x_labels)
    parts = _open(name, title, width, height)
    parts += _y_axis(top_value, left, right, top, plot_h, unit)
    parts += _x_axis(x_labels, left, step, bottom)
    for i, (label, vs) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        runs: list[list[tuple[float, float, float]]] = [[]]
        for j, v in enumerate(vs[: len(x_labels)]):
            if v is None:
                runs.append([])
                continue
            y = bottom - plot_h * max(0.0, min(1.0, v / top_value))
            runs[-1].append((left + step * j + step / 2, y, v))
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in run)
                parts.append(
                    f'<polyline class="line" points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>'
                )
            for x, y, v in run:
                parts.append(
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{_e(label)}: '
                    f"{_e(_num(v))}{_e(unit)}</title></circle>"
                )
    parts += _legend(list(series), height - 6)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and title went through _e()


def stacked_bar_chart(
    x_labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    name: str,
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 260,
    empty_text: str = "no data",
) -> Markup:
    """One column per x label, its series' values stacked in the order of ``series`` (e.g. calls per reason per
    day)."""
    totals = [sum(vs[i] for vs in series.values() if i < len(vs)) for i in range(len(x_labels))]
    if not x_labels or not any(totals):
        return _empty(name, title, width, empty_text)
    left, right, top, bottom = 48, width - 8, 28, height - 40 - 14 * ((len(series) - 1) // 6)
    plot_h = bottom - top
    top_value = max(totals) or 1.0
    step = (right - left) / len(x_labels)
    parts = _open(name, title, width, height)
    parts += _y_axis(top_value, left, right, top, plot_h, unit)
    parts += _x_axis(x_labels, left, step, bottom)
    for i in range(len(x_labels)):
        y = float(bottom)
        for k, (label, vs) in enumerate(series.items()):
            v = vs[i] if i < len(vs) else 0.0
            if v <= 0:
                continue
            h = plot_h * v / top_value
            y -= h
            parts.append(
                f'<rect class="bar" x="{left + step * i + step * 0.15:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" '
                f'height="{h:.1f}" fill="{PALETTE[k % len(PALETTE)]}"><title>{_e(x_labels[i])} · {_e(label)}: '
                f"{_e(_num(v))}{_e(unit)}</title></rect>"
            )
    names = list(series)
    for row in range(0, len(names), 6):
        parts += _legend(names[row : row + 6], height - 6 - 14 * ((len(names) - 1) // 6 - row // 6))
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and title went through _e()
