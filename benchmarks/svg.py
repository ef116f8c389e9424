"""A small log-log line chart written as SVG by hand (no plotting dependency)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@dataclass
class Series:
    name: str
    # (x, y, y_low, y_high); y_low/y_high draw a whisker (min..max over repeats)
    points: list[tuple[float, float, float, float]] = field(default_factory=list)
    failed: list[tuple[float, str]] = field(default_factory=list)  # x where it could not finish, and why
    dashed: bool = False


def _log_ticks(low: float, high: float) -> list[float]:
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if low <= value <= high:
                ticks.append(value)
    return ticks


def _label(value: float, unit: str = "") -> str:
    if value >= 1_000_000:
        text = f"{value / 1_000_000:g}M"
    elif value >= 1000:
        text = f"{value / 1000:g}k"
    else:
        text = f"{value:g}"
    return text + unit


def line_chart(
    series: list[Series],
    title: str,
    x_label: str,
    y_label: str,
    y_unit: str = "",
    width: int = 760,
    height: int = 460,
) -> str:
    xs = [p[0] for s in series for p in s.points] + [x for s in series for x, _ in s.failed]
    ys = [v for s in series for p in s.points for v in p[1:] if v and v > 0]
    if not xs or not ys:
        xs, ys = [1, 10], [1, 10]
    x_low, x_high = min(xs) / 1.6, max(xs) * 1.6
    y_low, y_high = min(ys) / 1.8, max(ys) * 2.2
    left, right, top, bottom = 80, 200, 50, 60
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (math.log10(x) - math.log10(x_low)) / (math.log10(x_high) - math.log10(x_low)) * plot_w

    def py(y: float) -> float:
        y = max(y, y_low)
        return (
            top
            + plot_h
            - (math.log10(y) - math.log10(y_low)) / (math.log10(y_high) - math.log10(y_low)) * plot_h
        )

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="24" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    for tick in _log_ticks(y_low, y_high):
        y = py(tick)
        out.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(tick, y_unit)}</text>')
    for tick in _log_ticks(x_low, x_high):
        x = px(tick)
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}" stroke="#f0f0f0"/>')
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 18}" text-anchor="middle">{_label(tick)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>')
    out.append(
        f'<text x="{left + plot_w / 2}" y="{height - 18}" text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text transform="translate(18,{top + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    for index, one in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        points = sorted(one.points)
        dash = ' stroke-dasharray="6,4"' if one.dashed else ""
        if len(points) > 1:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y, _, _ in points)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for x, y, low, high in points:
            if low and high and high > low:
                out.append(
                    f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{py(low):.1f}" y2="{py(high):.1f}" '
                    f'stroke="{color}" stroke-width="1.5"/>'
                )
            if not one.dashed:
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}"/>')
        for x, why in one.failed:
            cx, cy = px(x), top + 14
            out.append(
                f'<text x="{cx:.1f}" y="{cy:.1f}" fill="{color}" text-anchor="middle" font-size="14">'
                f"✗<title>{escape(one.name)}: {escape(why)}</title></text>"
            )
            out.append(
                f'<text x="{cx:.1f}" y="{cy + 14:.1f}" fill="{color}" text-anchor="middle" '
                f'font-size="10">{escape(why)}</text>'
            )
        legend_y = top + 10 + index * 20
        legend_x = left + plot_w + 14
        out.append(
            f'<line x1="{legend_x}" x2="{legend_x + 22}" y1="{legend_y}" y2="{legend_y}" stroke="{color}" '
            f'stroke-width="2"{dash}/>'
        )
        out.append(f'<text x="{legend_x + 28}" y="{legend_y + 4}">{escape(one.name)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
