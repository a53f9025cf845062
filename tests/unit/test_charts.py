"""gridwork_common.charts: the SVG the bulletin and the command centre draw."""

import re

from gridwork_common.charts import bar_chart, line_chart


def test_a_line_chart_has_a_point_per_known_value_and_skips_the_unknown():
    svg = line_chart(
        [("2026-03", 2), ("2026-04", None), ("2026-05", 4)],
        maximum=4,
        markers=True,
        shown=lambda value: f"{value} 件",
        label="<cases>",
    )
    assert svg.startswith("<svg") and 'aria-label="&lt;cases&gt;"' in svg
    assert re.findall(r'<circle class="point" cx="(\d+)" cy="([\d.]+)"', svg) == [
        ("40", "95.0"),  # half of the maximum: half of 150 px above the axis at 170
        ("240", "20.0"),
    ]
    assert re.findall(r"<title>([^<]+)</title>", svg) == ["2026-03: 2 件", "2026-05: 4 件"]
    assert 'points="40,95.0 240,20.0"' in svg
    assert svg.count("<text") == 3  # every month labelled, known or not


def test_without_markers_a_line_chart_draws_the_line_alone():
    svg = line_chart([("a", 0.5), ("b", 1.0)])
    assert "<circle" not in svg and 'points="40,95.0 140,20.0"' in svg


def test_bars_escape_their_labels_and_write_unknown_values_as_na():
    svg = bar_chart([("<b>", 50.0), ("c", None)], 100, "%")
    assert "&lt;b&gt;" in svg and "<b>" not in svg
    assert 'width="220.0"' in svg and "50.0%" in svg and "n/a" in svg


def test_bars_write_unknown_values_in_the_callers_words():
    svg = bar_chart([("c", None)], 100, "%", missing="无数据")
    assert "无数据" in svg and "n/a" not in svg
