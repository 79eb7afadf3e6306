"""The README's SVG line chart: valid SVG, one line per curve, a logarithmic y axis."""

import xml.etree.ElementTree as ElementTree

import pytest

from pipeline.reporting.charts import line_chart_svg, nice_step
from pipeline.reporting.ledger import tracked_points

SVG = "{http://www.w3.org/2000/svg}"


def polyline_points(svg: str) -> list[list[tuple[float, float]]]:
    root = ElementTree.fromstring(svg)
    return [
        [tuple(float(v) for v in pair.split(",")) for pair in line.get("points").split()]
        for line in root.iter(f"{SVG}polyline")
    ]


def test_one_line_per_curve_with_a_legend_entry_each():
    curves = {"default": [(0, 300.0), (60, 20.0), (120, 5.0)], "a < b & c": [(0, 100.0)]}
    svg = line_chart_svg(curves, x_label="seconds", y_label="distance")
    lines = polyline_points(svg)
    assert [len(line) for line in lines] == [3, 1]
    texts = [node.text for node in ElementTree.fromstring(svg).iter(f"{SVG}text")]
    assert "default" in texts and "a < b & c" in texts  # escaped in the file, whole when read


def test_the_y_axis_is_logarithmic_and_larger_values_are_higher():
    svg = line_chart_svg({"run": [(0, 1.0), (1, 10.0), (2, 100.0)]}, x_label="x", y_label="y")
    (line,) = polyline_points(svg)
    (x0, y1), (x1, y10), (x2, y100) = line
    assert y1 > y10 > y100  # screen y grows downwards
    assert y1 - y10 == pytest.approx(y10 - y100, abs=0.2)  # equal ratios, equal distances
    assert x0 < x1 < x2


def test_nothing_to_draw_is_an_error():
    with pytest.raises(ValueError, match="no points"):
        line_chart_svg({"empty": []}, x_label="x", y_label="y")


@pytest.mark.parametrize(("span", "step"), [(300, 50), (1000, 100), (45, 10), (8, 1)])
def test_grid_steps_are_round(span, step):
    assert nice_step(span) == step


def test_tracked_points_join_dvclives_tables_by_step():
    seconds = "step\ttrain_seconds\n200\t10.5\n400\t21\n600\t33\n"
    distances = "step\tfrechet_distance\n200\t30.25\n400\t9.5\n"  # 600: not measured yet
    assert tracked_points(seconds, distances) == [(10.5, 30.25), (21.0, 9.5)]
    assert tracked_points("step\ttrain_seconds\n", distances) == []
    assert tracked_points("", "") == []
