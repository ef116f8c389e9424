"""The CX report: one self-contained HTML file with inline SVG charts (no scripts, no CDN, opens offline).

Everything here is a pure function of plain data: ``render_report(ReportData)`` returns the HTML, laid out
from the chart functions of ``cx_pipeline.cx.charts``, so tests call them directly. Loading the data from
the warehouse lives in ``cx_pipeline.cx.report_data``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

from cx_pipeline.cx.charts import (
    PALETTE,
    STAGE_COLORS,
    LineSeries,
    bar_chart,
    flow_chart,
    fmt_number,
    fmt_pct,
    heatmap,
    histogram_chart,
    line_chart,
)

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
# The report
# --------------------------------------------------------------------------------------------------------


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
