"""SVG chart primitives: bar, line, heatmap, histogram and stage-flow charts, the palette they draw with and
the number formats they label with.

Each chart is a pure function of plain data returning one self-contained ``<svg>`` string (inline styles, no
scripts), so tests call them directly. The CX report that lays them out lives in ``cx_pipeline.cx.report``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d")
STAGE_ORDER = ("discovery", "consideration", "decision", "loyalty", "lapsed")
STAGE_COLORS = {
    "discovery": "#9ecae1",
    "consideration": "#4c78a8",
    "decision": "#f58518",
    "loyalty": "#54a24b",
    "lapsed": "#e45756",
    "(new)": "#bdbdbd",
}
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"

Number = float | int


# --------------------------------------------------------------------------------------------------------
# Formats and helpers
# --------------------------------------------------------------------------------------------------------


def fmt_number(value: Number | None, digits: int = 0, suffix: str = "") -> str:
    """Thousands-separated number, or an en dash for None / NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "\u2013"
    return f"{value:,.{digits}f}{suffix}"


def fmt_pct(rate: float | None, digits: int = 1) -> str:
    """A 0-1 rate as a percentage."""
    return "\u2013" if rate is None or math.isnan(rate) else f"{100 * rate:.{digits}f}%"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not math.isfinite(low) or not math.isfinite(high):
        return [0.0, 1.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def histogram(
    values: Sequence[float], bins: int = 20, upper_quantile: float = 0.99
) -> tuple[list[float], list[int]]:
    """Equal-width bins from the minimum to the ``upper_quantile`` (the last bin takes everything above),
    so one extreme customer does not squash the chart. Returns (edges, counts), len(edges) = bins + 1."""
    data = sorted(v for v in values if v is not None and math.isfinite(v))
    if not data:
        return [0.0, 1.0], [0]
    low = data[0]
    index = min(len(data) - 1, max(0, math.ceil(upper_quantile * len(data)) - 1))
    high = data[index]
    if high <= low:
        high = low + 1.0
    width = (high - low) / bins
    edges = [low + i * width for i in range(bins + 1)]
    counts = [0] * bins
    for value in data:
        position = int((value - low) / width)
        counts[min(max(position, 0), bins - 1)] += 1
    return edges, counts


def _interpolate_color(start: str, end: str, share: float) -> str:
    share = min(max(share, 0.0), 1.0)
    a = [int(start[i : i + 2], 16) for i in (1, 3, 5)]
    b = [int(end[i : i + 2], 16) for i in (1, 3, 5)]
    mixed = [round(x + (y - x) * share) for x, y in zip(a, b, strict=True)]
    return "#" + "".join(f"{c:02x}" for c in mixed)


def heat_color(share: float) -> str:
    """White-to-blue scale for 0..1."""
    return _interpolate_color("#f4f8fb", "#08519c", share)


def _text_color(share: float) -> str:
    return "#ffffff" if share > 0.55 else "#1f2933"


def _svg_open(width: int, height: int, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" style="{FONT}">'
        f"<title>{escape(label)}</title>"
    )


def _empty_chart(label: str, width: int = 640, height: int = 120) -> str:
    return (
        _svg_open(width, height, label)
        + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="13" fill="#6b7280">'
        f"No data for {escape(label.lower())}</text></svg>"
    )


# --------------------------------------------------------------------------------------------------------
# Charts
# --------------------------------------------------------------------------------------------------------


def bar_chart(
    items: Sequence[tuple[str, Number]],
    *,
    label: str,
    value_format: Callable[[Number], str] = fmt_number,
    colors: dict[str, str] | None = None,
    width: int = 640,
    notes: Sequence[str] | None = None,
) -> str:
    """Horizontal bars, one per (label, value), longest scaled to the plot width."""
    if not items:
        return _empty_chart(label, width)
    row, left, top = 30, 150, 10
    right = 170 if notes else 90
    height = top * 2 + row * len(items)
    peak = max((float(v) for _, v in items), default=0.0) or 1.0
    plot = width - left - right
    parts = [_svg_open(width, height, label)]
    for i, (name, value) in enumerate(items):
        y = top + i * row
        length = max(float(value), 0.0) / peak * plot
        color = (colors or {}).get(name, PALETTE[i % len(PALETTE)])
        note = f" {notes[i]}" if notes and i < len(notes) and notes[i] else ""
        parts.append(
            f'<text x="{left - 8}" y="{y + row / 2 + 4}" text-anchor="end" font-size="12" fill="#1f2933">'
            f"{escape(name)}</text>"
            f'<rect class="bar" x="{left}" y="{y + 4}" width="{max(length, 1):.1f}" height="{row - 8}" '
            f'fill="{color}" rx="2"><title>{escape(name)}: {escape(value_format(value))}</title></rect>'
            f'<text x="{left + length + 6:.1f}" y="{y + row / 2 + 4}" font-size="12" fill="#374151">'
            f"{escape(value_format(value) + note)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class LineSeries:
    name: str
    values: Sequence[float | None]
    color: str = PALETTE[0]
    # True where the point rests on too few answers: drawn hollow
    low_sample: Sequence[bool] = ()


def line_chart(
    x_labels: Sequence[str],
    series: Sequence[LineSeries],
    *,
    label: str,
    counts: Sequence[int] | None = None,
    y_domain: tuple[float, float] | None = None,
    y_format: Callable[[float], str] = lambda v: fmt_number(v, 0),
    width: int = 640,
    height: int = 260,
) -> str:
    """Lines over months; optional grey bars of answer counts under the plot; hollow low-sample points."""
    points = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    if not x_labels or not points:
        return _empty_chart(label, width)
    left, right, top = 48, 30, 14
    count_band = 46 if counts else 0
    bottom = 28 + count_band
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high = y_domain if y_domain else (min(points), max(points))
    ticks = nice_ticks(low, high, 4)
    low, high = ticks[0], ticks[-1]
    n = len(x_labels)
    step = plot_w / max(n - 1, 1)

    def x_at(i: int) -> float:
        return left + (i * step if n > 1 else plot_w / 2)

    def y_at(v: float) -> float:
        return top + plot_h - (v - low) / ((high - low) or 1) * plot_h

    parts = [_svg_open(width, height, label)]
    for tick in ticks:
        y = y_at(tick)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#6b7280">'
            f"{escape(y_format(tick))}</text>"
        )
    label_every = max(1, math.ceil(n / 10))
    for i, name in enumerate(x_labels):
        if (n - 1 - i) % label_every == 0:
            parts.append(
                f'<text x="{x_at(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="10" '
                f'fill="#6b7280">{escape(name)}</text>'
            )
    if counts:
        peak = max(counts) or 1
        base = height - 6
        bar_w = max(min(step * 0.6, 24), 2)
        parts.append(
            f'<text x="{left - 6}" y="{base - count_band / 2 + 4:.1f}" text-anchor="end" font-size="10" '
            f'fill="#6b7280">n</text>'
        )
        for i, count in enumerate(counts):
            h = count / peak * (count_band - 12)
            parts.append(
                f'<rect class="count-bar" x="{x_at(i) - bar_w / 2:.1f}" y="{base - h:.1f}" '
                f'width="{bar_w:.1f}" '
                f'height="{max(h, 0.5):.1f}" fill="#cbd5e1"><title>{escape(x_labels[i])}: {count} answers'
                f"</title></rect>"
            )
    for s in series:
        segments: list[list[tuple[float, float]]] = [[]]
        for i, v in enumerate(s.values):
            if v is None or not math.isfinite(v):
                segments.append([])
            else:
                segments[-1].append((x_at(i), y_at(v)))
        for segment in segments:
            if len(segment) > 1:
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in segment)
                parts.append(
                    f'<polyline class="line" points="{path}" fill="none" stroke="{s.color}" '
                    'stroke-width="2"/>'
                )
        for i, v in enumerate(s.values):
            if v is None or not math.isfinite(v):
                continue
            hollow = bool(s.low_sample) and i < len(s.low_sample) and s.low_sample[i]
            fill = "#ffffff" if hollow else s.color
            note = " (low sample)" if hollow else ""
            parts.append(
                f'<circle class="point" cx="{x_at(i):.1f}" cy="{y_at(v):.1f}" r="3.5" fill="{fill}" '
                f'stroke="{s.color}" stroke-width="1.5"><title>{escape(s.name)} {escape(x_labels[i])}: '
                f"{escape(y_format(v))}{note}</title></circle>"
            )
    if len(series) > 1:
        x = left + 4
        for s in series:
            parts.append(
                f'<rect x="{x}" y="2" width="10" height="10" fill="{s.color}"/>'
                f'<text x="{x + 14}" y="11" font-size="11" fill="#374151">{escape(s.name)}</text>'
            )
            x += 24 + 7 * len(s.name)
    parts.append("</svg>")
    return "".join(parts)


def heatmap(
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    label: str,
    value_format: Callable[[float], str] = fmt_pct,
    row_notes: Sequence[str] | None = None,
    scale_max: float | None = None,
    cell: int = 34,
) -> str:
    """A grid of cells shaded by value (None = blank), labelled with the formatted value."""
    if not row_labels or not col_labels:
        return _empty_chart(label)
    left, top = 150, 30
    width = left + cell * len(col_labels) + 10
    height = top + cell * len(row_labels) + 10
    finite = [v for row in values for v in row if v is not None and math.isfinite(v)]
    peak = scale_max if scale_max is not None else (max(finite) if finite else 1.0) or 1.0
    parts = [_svg_open(width, height, label)]
    for j, name in enumerate(col_labels):
        parts.append(
            f'<text x="{left + j * cell + cell / 2}" y="{top - 10}" text-anchor="middle" font-size="10" '
            f'fill="#6b7280">{escape(name)}</text>'
        )
    for i, name in enumerate(row_labels):
        y = top + i * cell
        note = f" ({row_notes[i]})" if row_notes and i < len(row_notes) else ""
        parts.append(
            f'<text x="{left - 6}" y="{y + cell / 2 + 4}" text-anchor="end" font-size="11" fill="#1f2933">'
            f"{escape(name + note)}</text>"
        )
        for j in range(len(col_labels)):
            value = values[i][j] if j < len(values[i]) else None
            if value is None or not math.isfinite(value):
                continue
            share = value / peak
            parts.append(
                f'<rect class="cell" x="{left + j * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="{heat_color(share)}"><title>{escape(name)} / {escape(col_labels[j])}: '
                f"{escape(value_format(value))}</title></rect>"
                f'<text x="{left + j * cell + cell / 2 - 1}" y="{y + cell / 2 + 3}" text-anchor="middle" '
                f'font-size="9" fill="{_text_color(share)}">{escape(value_format(value))}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def histogram_chart(
    values: Sequence[float],
    *,
    label: str,
    bins: int = 20,
    x_format: Callable[[float], str] = lambda v: fmt_number(v, 0),
    color: str = PALETTE[0],
    upper_quantile: float = 0.99,
    width: int = 640,
    height: int = 240,
) -> str:
    """Column histogram of ``values`` (see ``histogram`` for the binning)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return _empty_chart(label, width)
    edges, counts = histogram(finite, bins, upper_quantile)
    left, right, top, bottom = 52, 16, 12, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    peak_ticks = nice_ticks(0, max(counts), 4)
    peak = peak_ticks[-1] or 1
    bar_w = plot_w / len(counts)
    parts = [_svg_open(width, height, label)]
    for tick in peak_ticks:
        y = top + plot_h - tick / peak * plot_h
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#6b7280">'
            f"{fmt_number(tick)}</text>"
        )
    for i, count in enumerate(counts):
        h = count / peak * plot_h
        last = " and above" if i == len(counts) - 1 else ""
        parts.append(
            f'<rect class="bar" x="{left + i * bar_w + 1:.1f}" y="{top + plot_h - h:.1f}" '
            f'width="{max(bar_w - 2, 1):.1f}" height="{max(h, 0.5):.1f}" fill="{color}">'
            f"<title>{escape(x_format(edges[i]))} \u2013 {escape(x_format(edges[i + 1]))}{last}: {count}"
            "</title></rect>"
        )
    for i in range(0, len(edges), max(1, len(edges) // 5)):
        parts.append(
            f'<text x="{left + i * bar_w:.1f}" y="{height - 14}" text-anchor="middle" font-size="10" '
            f'fill="#6b7280">{escape(x_format(edges[i]))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def flow_chart(
    flows: Sequence[tuple[str, str, int]],
    *,
    label: str,
    stages: Sequence[str] = ("(new)", *STAGE_ORDER),
    width: int = 980,
    height: int = 320,
) -> str:
    """Stage transitions as a two-column flow: "from" stages on the left, "to" stages on the right, each
    band as wide as its number of transitions (bands leave and arrive in stage order, so few cross)."""
    flows = [(a, b, n) for a, b, n in flows if n > 0]
    if not flows:
        return _empty_chart(label, width)
    order = {name: i for i, name in enumerate(stages)}

    def rank(name: str) -> int:
        return order.get(name, len(order))

    sources = sorted({a for a, _, _ in flows}, key=rank)
    targets = sorted({b for _, b, _ in flows}, key=rank)
    total = sum(n for _, _, n in flows)
    node_w, gap, top, label_w = 14, 10, 10, 170
    usable = height - 2 * top - gap * (max(len(sources), len(targets)) - 1)
    scale = usable / total
    x_left, x_right = label_w, width - label_w - node_w

    def totals(side: int) -> dict[str, int]:
        sums: dict[str, int] = {}
        for flow in flows:
            sums[flow[side]] = sums.get(flow[side], 0) + flow[2]
        return sums

    source_totals, target_totals = totals(0), totals(1)

    def layout(names: list[str], sizes: dict[str, int]) -> dict[str, float]:
        positions, y = {}, float(top)
        for name in names:
            positions[name] = y
            y += sizes[name] * scale + gap
        return positions

    left_y, right_y = layout(sources, source_totals), layout(targets, target_totals)
    # Where each band starts (within its source, in target order) and ends (within its target, in
    # source order).
    starts: dict[tuple[str, str], float] = {}
    offset = dict.fromkeys(sources, 0.0)
    for a, b, n in sorted(flows, key=lambda f: (rank(f[0]), rank(f[1]))):
        starts[(a, b)] = left_y[a] + offset[a] + n * scale / 2
        offset[a] += n * scale
    ends: dict[tuple[str, str], float] = {}
    offset = dict.fromkeys(targets, 0.0)
    for a, b, n in sorted(flows, key=lambda f: (rank(f[1]), rank(f[0]))):
        ends[(a, b)] = right_y[b] + offset[b] + n * scale / 2
        offset[b] += n * scale
    parts = [_svg_open(width, height, label)]
    x0, x1 = x_left + node_w, x_right
    mid = (x0 + x1) / 2
    for a, b, n in sorted(flows, key=lambda f: -f[2]):
        y0, y1 = starts[(a, b)], ends[(a, b)]
        color = STAGE_COLORS.get(b, PALETTE[rank(b) % len(PALETTE)])
        parts.append(
            f'<path class="flow" d="M{x0:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} '
            f'{x1:.1f},{y1:.1f}" '
            f'fill="none" stroke="{color}" stroke-opacity="0.45" stroke-width="{max(n * scale, 1):.1f}">'
            f"<title>{escape(a)} → {escape(b)}: {n:,}</title></path>"
        )
    for names, positions, sizes, x, anchor in (
        (sources, left_y, source_totals, x_left, "end"),
        (targets, right_y, target_totals, x_right, "start"),
    ):
        for name in names:
            h = sizes[name] * scale
            color = STAGE_COLORS.get(name, "#9ca3af")
            text_x = x - 6 if anchor == "end" else x + node_w + 6
            parts.append(
                f'<rect class="node" x="{x}" y="{positions[name]:.1f}" width="{node_w}" '
                f'height="{max(h, 1):.1f}" '
                f'fill="{color}"><title>{escape(name)}: {sizes[name]:,}</title></rect>'
                f'<text x="{text_x}" y="{positions[name] + h / 2 + 4:.1f}" text-anchor="{anchor}" '
                f'font-size="11" '
                f'fill="#1f2933">{escape(name)} · {sizes[name]:,}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
