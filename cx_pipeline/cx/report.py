"""The CX report: one self-contained HTML file with inline SVG charts (no scripts, no CDN, opens offline).

Everything here is a pure function of plain data: ``render_report(ReportData)`` returns the HTML, and each
chart function returns one ``<svg>`` string, so tests call them directly. Loading the data from the
warehouse lives in ``cx_pipeline.cx.report_data``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

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
# Plain data the report is rendered from
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyNumber:
    label: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class SurveyMonth:
    """One month of survey measures with the answer counts they rest on (scores None without answers)."""

    month: str
    nps: float | None
    nps_responses: int
    csat: float | None
    csat_responses: int
    ces: float | None
    ces_responses: int


@dataclass(frozen=True)
class ReportData:
    as_of: str
    key_numbers: Sequence[KeyNumber] = ()
    # (stage, customers currently in it) and (stage, customers who ever reached it), in stage order
    stage_customers: Sequence[tuple[str, int]] = ()
    funnel: Sequence[tuple[str, int]] = ()
    # (from stage or "(new)", to stage, transitions)
    stage_flows: Sequence[tuple[str, str, int]] = ()
    survey_trend: Sequence[SurveyMonth] = ()
    low_sample_threshold: int = 30
    # (cohort month, months since first order, retention rate 0-1, cohort size)
    retention: Sequence[tuple[str, int, float, int]] = ()
    # rows of marts.fct_touchpoint_cx (dicts keyed by column name)
    touchpoints: Sequence[dict[str, Any]] = ()
    # (month, churn rate 0-1 or None, active at start, churned)
    churn: Sequence[tuple[str, float | None, int, int]] = ()
    churn_risk_scores: Sequence[float] = ()
    churn_risk_bands: Sequence[tuple[str, int]] = ()
    clv_predicted: Sequence[float] = ()
    clv_historical: Sequence[float] = ()
    backtest: dict[str, Any] | None = None
    # (segment, customers, historical CLV of the segment)
    rfm_segments: Sequence[tuple[str, int, float]] = ()
    notes: Sequence[str] = field(default_factory=tuple)
    # the key numbers as plain values (asset metadata)
    metrics: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------
# Helpers
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


def html_table(
    columns: Sequence[tuple[str, str]], rows: Sequence[dict[str, Any]], *, caption: str = ""
) -> str:
    """A plain HTML table; ``columns`` are (key, header); cell values are escaped and pre-formatted."""
    head = "".join(f"<th>{escape(header)}</th>" for _, header in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(row.get(key, '')))}</td>" for key, _ in columns) + "</tr>"
        for row in rows
    )
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f'<table class="data">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# --------------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------------

_CSS = """
body{margin:0;background:#f6f7f9;color:#1f2933;
  font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
header{background:#1f2a44;color:#fff;padding:20px 32px}
header h1{margin:0 0 4px;font-size:22px}
header p{margin:0;color:#c7d2e5}
main{padding:20px 32px;max-width:1400px}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px;margin-bottom:20px}
.kpi{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.kpi .value{font-size:24px;font-weight:600}
.kpi .label{color:#52606d;font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.kpi .note{color:#7b8794;font-size:11px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(620px,1fr));gap:16px}
section.card{background:#fff;border-radius:8px;padding:14px 16px;overflow-x:auto;
  box-shadow:0 1px 2px rgba(0,0,0,.06)}
section.card h2{font-size:16px;margin:0 0 4px}
section.card p.help{margin:0 0 10px;color:#52606d;font-size:12px}
table.data{border-collapse:collapse;font-size:12px;width:100%}
table.data th,table.data td{padding:4px 8px;border-bottom:1px solid #e5e7eb;text-align:right;
  white-space:nowrap}
table.data th:nth-child(-n+2),table.data td:nth-child(-n+2){text-align:left}
table.data th{background:#f3f4f6;position:sticky;top:0}
footer{padding:16px 32px;color:#7b8794;font-size:12px}
"""


def _card(title: str, body: str, help_text: str = "", wide: bool = False) -> str:
    style = ' style="grid-column:1/-1"' if wide else ""
    help_html = f'<p class="help">{escape(help_text)}</p>' if help_text else ""
    return f'<section class="card"{style}><h2>{escape(title)}</h2>{help_html}{body}</section>'


def survey_trend_charts(trend: Sequence[SurveyMonth], threshold: int) -> tuple[str, str, str]:
    """NPS, CSAT and CES trend charts (hollow points: fewer answers than ``threshold``)."""
    months = [m.month[:7] for m in trend]
    nps = line_chart(
        months,
        [LineSeries("NPS", [m.nps for m in trend], PALETTE[0], [m.nps_responses < threshold for m in trend])],
        label="NPS by month",
        counts=[m.nps_responses for m in trend],
        y_domain=(-100, 100),
    )
    csat = line_chart(
        months,
        [
            LineSeries(
                "CSAT", [m.csat for m in trend], PALETTE[2], [m.csat_responses < threshold for m in trend]
            )
        ],
        label="CSAT by month",
        counts=[m.csat_responses for m in trend],
        y_domain=(0, 100),
        y_format=lambda v: f"{v:.0f}%",
    )
    ces = line_chart(
        months,
        [LineSeries("CES", [m.ces for m in trend], PALETTE[1], [m.ces_responses < threshold for m in trend])],
        label="CES by month",
        counts=[m.ces_responses for m in trend],
        y_domain=(1, 7),
        y_format=lambda v: f"{v:.1f}",
    )
    return nps, csat, ces


def retention_heatmap(retention: Sequence[tuple[str, int, float, int]], max_months: int = 24) -> str:
    cohorts = sorted({c for c, _, _, _ in retention})
    sizes = {c: n for c, _, _, n in retention}
    horizon = min(max((m for _, m, _, _ in retention), default=0), max_months)
    grid = {(c, m): rate for c, m, rate, _ in retention}
    values = [[grid.get((c, m)) for m in range(horizon + 1)] for c in cohorts]
    return heatmap(
        [c[:7] for c in cohorts],
        [str(m) for m in range(horizon + 1)],
        values,
        label="Retention by first-order cohort",
        row_notes=[f"{sizes[c]:,}" for c in cohorts],
        scale_max=1.0,
        value_format=lambda v: f"{100 * v:.0f}%",
    )


TOUCHPOINT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("touchpoint_type", "Touchpoint"),
    ("channel", "Channel"),
    ("touchpoints", "Volume"),
    ("customers_reached", "Customers"),
    ("conversion_rate", "Conversion"),
    ("friction_rate", "Friction"),
    ("support_contact_rate", "→ Support"),
    ("rejection_rate", "→ Rejection"),
    ("abandoned_cart_rate", "→ Abandoned cart"),
    ("tied_nps", "Tied NPS (n)"),
    ("tied_csat", "Tied CSAT (n)"),
    ("tied_ces", "Tied CES (n)"),
    ("follow_up_nps", "Follow-up NPS (n)"),
)


def touchpoint_table(rows: Sequence[dict[str, Any]], threshold: int) -> str:
    """fct_touchpoint_cx rows formatted for reading; scores on fewer than ``threshold`` answers get '*'."""

    def score(row: dict[str, Any], key: str, count_key: str, digits: int = 0) -> str:
        value, count = row.get(key), row.get(count_key) or 0
        if value is None or count == 0:
            return "\u2013"
        mark = "*" if count < threshold else ""
        return f"{value:.{digits}f}{mark} ({count:,})"

    formatted = []
    for row in sorted(rows, key=lambda r: -(r.get("touchpoints") or 0)):
        formatted.append(
            {
                "touchpoint_type": row.get("touchpoint_type"),
                "channel": row.get("channel"),
                "touchpoints": fmt_number(row.get("touchpoints")),
                "customers_reached": fmt_number(row.get("customers_reached")),
                "conversion_rate": fmt_pct(row.get("conversion_rate")),
                "friction_rate": fmt_pct(row.get("friction_rate")),
                "support_contact_rate": fmt_pct(row.get("support_contact_rate")),
                "rejection_rate": fmt_pct(row.get("rejection_rate")),
                "abandoned_cart_rate": fmt_pct(row.get("abandoned_cart_rate")),
                "tied_nps": score(row, "tied_nps", "tied_nps_responses"),
                "tied_csat": score(row, "tied_csat", "tied_csat_responses"),
                "tied_ces": score(row, "tied_ces", "tied_ces_responses", 2),
                "follow_up_nps": score(row, "follow_up_nps", "follow_up_nps_responses"),
            }
        )
    return html_table(TOUCHPOINT_COLUMNS, formatted)


def backtest_table(backtest: dict[str, Any]) -> str:
    rows = [
        {"m": "Customers in the backtest", "p": fmt_number(backtest.get("n_customers")), "r": ""},
        {
            "m": "Total (predicted / actual)",
            "p": f"{fmt_number(backtest.get('predicted_purchases'), 0)} / "
            f"{fmt_number(backtest.get('actual_purchases'), 0)}",
            "r": f"{fmt_number(backtest.get('predicted_revenue'), 0)} / "
            f"{fmt_number(backtest.get('actual_revenue'), 0)}",
        },
        {
            "m": "Aggregate error",
            "p": fmt_number(backtest.get("purchases_pct_error"), 1, "%"),
            "r": fmt_number(backtest.get("revenue_pct_error"), 1, "%"),
        },
        {
            "m": "MAE per customer",
            "p": fmt_number(backtest.get("purchases_mae"), 3),
            "r": fmt_number(backtest.get("revenue_mae"), 2),
        },
        {
            "m": "Correlation (Pearson r)",
            "p": fmt_number(backtest.get("purchases_correlation"), 3),
            "r": fmt_number(backtest.get("revenue_correlation"), 3),
        },
    ]
    caption = (
        f"Fitted on orders up to {backtest.get('calibration_end')}, predicting the "
        f"{backtest.get('holdout_days')} days to {backtest.get('observation_end')}"
    )
    return html_table((("m", "Measure"), ("p", "Purchases"), ("r", "Net revenue")), rows, caption=caption)


def render_report(data: ReportData) -> str:
    """The whole report as one HTML document (inline CSS and SVG only)."""
    threshold = data.low_sample_threshold
    kpis = "".join(
        f'<div class="kpi"><div class="label">{escape(k.label)}</div>'
        f'<div class="value">{escape(k.value)}</div>'
        f'<div class="note">{escape(k.note)}</div></div>'
        for k in data.key_numbers
    )
    nps_chart, csat_chart, ces_chart = survey_trend_charts(data.survey_trend, threshold)
    churn_chart = line_chart(
        [m[:7] for m, _, _, _ in data.churn],
        [LineSeries("Churn rate", [None if r is None else 100 * r for _, r, _, _ in data.churn], PALETTE[3])],
        label="Monthly churn rate",
        y_format=lambda v: f"{v:.1f}%",
        counts=[active for _, _, active, _ in data.churn],
    )
    cards = [
        _card(
            "Journey funnel",
            bar_chart(data.funnel, label="Customers who reached each stage", colors=STAGE_COLORS),
            "Customers who ever reached each stage (stages only move forward; lapsed = bought, then silent).",
        ),
        _card(
            "Customers per current stage",
            bar_chart(data.stage_customers, label="Customers per current journey stage", colors=STAGE_COLORS),
            "Where every customer is now.",
        ),
        _card(
            "Stage flow",
            flow_chart(data.stage_flows, label="Journey stage transitions"),
            "Every stage change in the history: from (left) to (right); (new) = first stage entered.",
            wide=True,
        ),
        _card(
            "NPS by month",
            nps_chart,
            f"% promoters (9-10) - % detractors (0-6). Grey bars: answers. Hollow points: fewer than "
            f"{threshold} answers - do not read them as truth.",
        ),
        _card("CSAT by month", csat_chart, "% of 4-5 answers on the 1-5 scale of ticket surveys."),
        _card(
            "CES by month",
            ces_chart,
            "Mean Customer Effort Score, 1-7 (1 = very easy, 7 = very difficult: lower is better).",
        ),
        _card(
            "Monthly churn rate",
            churn_chart,
            "Customers who lapsed in the month / customers active at its start. Grey bars: active customers.",
        ),
        _card(
            "Retention cohorts",
            retention_heatmap(data.retention),
            "Share of each first-order cohort (size in brackets) ordering again N months later.",
            wide=True,
        ),
        _card(
            "CX per touchpoint",
            touchpoint_table(data.touchpoints, threshold),
            f"Conversion and friction within the window after each touchpoint; tied / follow-up scores with "
            f"their answer counts; * = fewer than {threshold} answers.",
            wide=True,
        ),
        _card(
            "Churn-risk distribution",
            histogram_chart(
                data.churn_risk_scores,
                label="Churn-risk score",
                bins=20,
                x_format=lambda v: f"{v:.2f}",
                color=PALETTE[3],
                upper_quantile=1.0,
            )
            + bar_chart(
                data.churn_risk_bands,
                label="Customers per churn-risk band",
                colors={"low": PALETTE[2], "medium": PALETTE[1], "high": PALETTE[3]},
            ),
            "Score 0-1 per buyer (weighted recency, frequency decline, detractor NPS, support friction, "
            "returns).",
        ),
        _card(
            "Predicted 12-month CLV",
            histogram_chart(data.clv_predicted, label="Predicted 12-month CLV", color=PALETTE[2]),
            "BG/NBD x Gamma-Gamma per customer (99th percentile and above in the last bar).",
        ),
        _card(
            "Historical CLV",
            histogram_chart(data.clv_historical, label="Historical CLV", color=PALETTE[0]),
            "Net revenue after returns so far (99th percentile and above in the last bar).",
        ),
        _card(
            "RFM segments",
            bar_chart(
                [(s, n) for s, n, _ in data.rfm_segments],
                label="Customers per RFM segment",
                notes=[f"· avg CLV {fmt_number(v)}" for _, _, v in data.rfm_segments],
            ),
            "Recency / frequency quintile segments (docs/cx_measures.md).",
        ),
    ]
    if data.backtest:
        cards.append(
            _card(
                "CLV backtest", backtest_table(data.backtest), "How well the model predicted held-out months."
            )
        )
    notes = "".join(f"<li>{escape(n)}</li>" for n in data.notes)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>cx360 CX report \u2013 {escape(data.as_of)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>Customer experience report</h1><p>Data as of {escape(data.as_of)} · cx360</p></header>"
        f'<main><div class="kpis">{kpis}</div><div class="grid">{"".join(cards)}</div>'
        f"{f'<ul>{notes}</ul>' if notes else ''}</main>"
        "<footer>Definitions: docs/cx_measures.md and docs/clv.md. Generated by the Dagster asset "
        "reports/cx_report.</footer></body></html>"
    )
