"""A line chart as SVG text, for the README: no plotting library, and a code host shows it as is.

The y axis is logarithmic: a Frechet distance falls from hundreds to a few units during
training, and the differences that matter are at the end.
"""

from __future__ import annotations

import math
from html import escape

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
WIDTH, HEIGHT = 720, 400
LEFT, RIGHT, TOP, BOTTOM = 56, 200, 20, 44
TICKS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def line_chart_svg(
    curves: dict[str, list[tuple[float, float]]], *, x_label: str, y_label: str
) -> str:
    """Each curve is a list of (x, y) points with y > 0; x from 0, y on a log scale."""
    points = [point for curve in curves.values() for point in curve]
    if not points:
        raise ValueError("no points to draw")
    x_max = max(x for x, _ in points) or 1.0
    y_low = min(y for _, y in points)
    y_high = max(y for _, y in points)
    y_min = 10 ** math.floor(math.log10(y_low))
    y_max = 10 ** math.ceil(math.log10(max(y_high, y_min * 10)))
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + plot_width * x / x_max

    def sy(y: float) -> float:
        share = (math.log10(y) - math.log10(y_min)) / (math.log10(y_max) - math.log10(y_min))
        return TOP + plot_height * (1 - share)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
    ]
    for tick in TICKS:
        if y_min <= tick <= y_max:
            y = sy(tick)
            parts.append(
                f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_width}" y2="{y:.1f}" '
                'stroke="#ddd"/>'
            )
            parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    step = nice_step(x_max)
    for index in range(int(x_max // step) + 1):
        x = sx(index * step)
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_height}" stroke="#eee"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{TOP + plot_height + 16}" text-anchor="middle">'
            f"{index * step:g}</text>"
        )
    parts += [
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_width}" height="{plot_height}" fill="none" '
        'stroke="#444"/>',
        f'<text x="{LEFT + plot_width / 2}" y="{HEIGHT - 8}" text-anchor="middle">'
        f"{escape(x_label)}</text>",
        f'<text transform="translate(14 {TOP + plot_height / 2}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>',
    ]
    for index, (name, curve) in enumerate(curves.items()):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in sorted(curve))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        legend_y = TOP + 14 + 18 * index
        parts.append(
            f'<line x1="{WIDTH - RIGHT + 12}" y1="{legend_y - 4}" x2="{WIDTH - RIGHT + 32}" '
            f'y2="{legend_y - 4}" stroke="{colour}" stroke-width="2"/>'
        )
        parts.append(f'<text x="{WIDTH - RIGHT + 38}" y="{legend_y}">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def nice_step(span: float) -> float:
    """A round grid spacing (1, 2 or 5 times a power of ten) giving 4 to 10 lines."""
    power = 10 ** math.floor(math.log10(span / 4))
    for factor in (1, 2, 5, 10):
        if span / (factor * power) <= 10:
            return factor * power
    return 10 * power
