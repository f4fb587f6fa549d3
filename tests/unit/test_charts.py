"""Server-rendered SVG charts: well-formed XML, escaped labels, one mark per value, no inline styles or scripts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from voxdesk.server.charts import bar_chart, line_chart, stacked_bar_chart

pytestmark = pytest.mark.unit

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    root = ET.fromstring(str(markup))
    assert root.tag == SVG + "svg"
    assert "style=" not in markup and "<script" not in markup.lower() and "<foreignObject" not in markup
    return root


def marks(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(SVG + tag) if e.get("class") == cls]


def test_bar_chart_escapes_labels_and_scales_to_the_maximum() -> None:
    hostile = '<script>alert("x")</script> & "quotes"'
    svg = bar_chart([(hostile, 50.0), ("agent-2", 100.0)], name="agents", title="Scores <b>", max_value=100)
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;" in svg
    root = parse(svg)
    assert root.get("data-chart") == "agents" and root.get("role") == "img"
    bars = marks(root, "rect", "bar")
    assert len(bars) == 2
    assert float(bars[1].get("width", "0")) == pytest.approx(2 * float(bars[0].get("width", "0")))
    assert bars[0].findtext(SVG + "title", "").startswith(hostile)


def test_empty_charts_say_so() -> None:
    for svg in (
        bar_chart([], name="a", title="A", empty_text="暂无数据"),
        line_chart(["03-02"], {"calls": [None]}, name="b", title="B", empty_text="暂无数据"),
        stacked_bar_chart(["03-02"], {"x": [0.0]}, name="c", title="C", empty_text="暂无数据"),
    ):
        root = parse(svg)
        assert any(e.get("data-empty") == "1" and e.text == "暂无数据" for e in root.iter(SVG + "text"))


def test_line_chart_breaks_at_missing_values_and_has_a_legend() -> None:
    x = ["03-02", "03-03", "03-04", "03-05", "03-06"]
    svg = line_chart(x, {"mean <score>": [90, 80, None, 70, 75], "flagged": [10, 20, 30, 40, 50]}, name="q",
                     title="Quality", y_max=100)  # fmt: skip
    root = parse(svg)
    lines = marks(root, "polyline", "line")
    assert len(lines) == 3  # two runs of the first series, one of the second
    assert len(list(root.iter(SVG + "circle"))) == 9
    assert "mean &lt;score&gt;" in svg
    assert {e.text for e in root.iter(SVG + "text")} >= {"03-02", "03-06", "flagged", "mean <score>"}


def test_stacked_bar_chart_stacks_each_column() -> None:
    x = ["03-02", "03-03"]
    svg = stacked_bar_chart(x, {"cards": [3, 1], "wealth": [1, 0], "其他": [0, 2]}, name="reasons", title="Reasons")
    root = parse(svg)
    bars = marks(root, "rect", "bar")
    assert len(bars) == 4  # zero values draw nothing
    first = [b for b in bars if b.findtext(SVG + "title", "").startswith("03-02")]
    heights = [float(b.get("height", "0")) for b in first]
    assert heights[0] == pytest.approx(3 * heights[1])
    top_of_lower = float(first[0].get("y", "0"))
    assert float(first[1].get("y", "0")) + heights[1] == pytest.approx(top_of_lower)
    assert "其他" in {e.text for e in root.iter(SVG + "text")}
