"""Reading the CX report's data from the warehouse marts into plain ``ReportData`` (no rendering here)."""

from __future__ import annotations

import math
from typing import Any

import duckdb

from cx_pipeline.cx.charts import fmt_number, fmt_pct
from cx_pipeline.cx.report import KeyNumber, ReportData, SurveyMonth

STAGES = ("discovery", "consideration", "decision", "loyalty", "lapsed")
FORWARD_STAGES = STAGES[:4]
RFM_SEGMENTS = ("champions", "loyal", "potential_loyalist", "new", "at_risk", "hibernating", "lost")
RISK_BANDS = ("low", "medium", "high")

# The report reads these relations; the Dagster asset declares them as dependencies.
REPORT_RELATIONS = (
    ("marts", "fct_cx_metrics_monthly"),
    ("marts", "fct_touchpoint_cx"),
    ("marts", "fct_retention_cohorts"),
    ("marts", "fct_churn_monthly"),
    ("marts", "fct_customer_churn_risk"),
    ("marts", "fct_customer_rfm"),
    ("marts", "fct_journey_stage_history"),
    ("marts", "customer_clv"),
)


# The survey formulas of macros/cx_measures.sql, for roll-ups of the monthly counts (same rounding).
def nps_from_counts(promoters: float, detractors: float, responses: float) -> float | None:
    return None if not responses else round(100.0 * (promoters - detractors) / responses, 2)


def csat_from_counts(satisfied: float, responses: float) -> float | None:
    return None if not responses else round(100.0 * satisfied / responses, 2)


def ces_from_sum(score_sum: float, responses: float) -> float | None:
    return None if not responses else round(score_sum / responses, 3)


SURVEY_COUNTS = (
    "nps_responses",
    "promoters",
    "detractors",
    "csat_responses",
    "satisfied",
    "ces_responses",
    "ces_sum",
)


def _months_before(moment: Any, months: int) -> str:
    """ISO date of the first day of the month ``months`` before ``moment``'s month."""
    index = moment.year * 12 + moment.month - 1 - months
    return f"{index // 12:04d}-{index % 12 + 1:02d}-01"


def _rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _exists(conn: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        conn.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


def _float(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def load_report_data(conn: duckdb.DuckDBPyConnection, *, low_sample_threshold: int = 30) -> ReportData:
    """Query every mart the report shows. A missing ``marts.customer_clv`` leaves the CLV charts empty."""
    as_of = conn.execute(
        "select coalesce((select max(as_of_at) from marts.fct_customer_rfm), "
        "(select max(valid_from) from marts.fct_journey_stage_history))"
    ).fetchall()[0][0]
    as_of_text = "unknown" if as_of is None else str(as_of)[:19] + " UTC"

    monthly = _rows(
        conn,
        """
        select
            cast(month as varchar) as month,
            sum(nps_responses) as nps_responses,
            sum(nps_promoters) as promoters,
            sum(nps_detractors) as detractors,
            sum(csat_responses) as csat_responses,
            sum(csat_satisfied) as satisfied,
            sum(ces_responses) as ces_responses,
            sum(ces_score_sum) as ces_sum
        from marts.fct_cx_metrics_monthly
        group by month
        order by month
        """,
    )
    trend = [
        SurveyMonth(
            month=row["month"],
            nps=nps_from_counts(row["promoters"], row["detractors"], row["nps_responses"]),
            nps_responses=int(row["nps_responses"]),
            csat=csat_from_counts(row["satisfied"], row["csat_responses"]),
            csat_responses=int(row["csat_responses"]),
            ces=ces_from_sum(row["ces_sum"], row["ces_responses"]),
            ces_responses=int(row["ces_responses"]),
        )
        for row in monthly
    ]
    # Key numbers: the 12 calendar months up to the as_of month.
    cutoff = _months_before(as_of, 11) if as_of is not None else ""
    last_12 = [row for row in monthly if row["month"] >= cutoff]
    totals = {k: sum(float(r[k]) for r in last_12) for k in SURVEY_COUNTS}
    nps = nps_from_counts(
        totals.get("promoters", 0), totals.get("detractors", 0), totals.get("nps_responses", 0)
    )
    csat = csat_from_counts(totals.get("satisfied", 0), totals.get("csat_responses", 0))
    ces = ces_from_sum(totals.get("ces_sum", 0), totals.get("ces_responses", 0))

    stage_rows = _rows(
        conn,
        "select journey_stage, count(*) as customers from marts.fct_journey_stage_history "
        "where is_current group by journey_stage",
    )
    stage_counts = {r["journey_stage"]: int(r["customers"]) for r in stage_rows}
    stage_customers = [(s, stage_counts.get(s, 0)) for s in STAGES]
    reached = _rows(
        conn,
        """
        with per_customer as (
            select
                customer_id,
                max(stage_order) filter (where journey_stage <> 'lapsed') as furthest,
                bool_or(journey_stage = 'lapsed') as ever_lapsed
            from marts.fct_journey_stage_history
            group by customer_id
        )
        select
            count(*) filter (where furthest >= 1) as discovery,
            count(*) filter (where furthest >= 2) as consideration,
            count(*) filter (where furthest >= 3) as decision,
            count(*) filter (where furthest >= 4) as loyalty,
            count(*) filter (where ever_lapsed) as lapsed
        from per_customer
        """,
    )[0]
    funnel = [(s, int(reached[s] or 0)) for s in STAGES]
    flows = [
        (r["from_stage"], r["to_stage"], int(r["transitions"]))
        for r in _rows(
            conn,
            "select coalesce(previous_stage, '(new)') as from_stage, journey_stage as to_stage, "
            "count(*) as transitions from marts.fct_journey_stage_history group by all",
        )
    ]

    retention = [
        (r["cohort"], int(r["m"]), float(r["rate"]), int(r["size"]))
        for r in _rows(
            conn,
            "select cast(cohort_month as varchar) as cohort, months_since_first_order as m, "
            "retention_rate as rate, cohort_customers as size from marts.fct_retention_cohorts",
        )
    ]
    touchpoints = _rows(conn, "select * from marts.fct_touchpoint_cx")
    churn = [
        (r["month"], _float(r["churn_rate"]), int(r["active"]), int(r["churned"]))
        for r in _rows(
            conn,
            "select cast(month as varchar) as month, churn_rate, active_customers_at_start as active, "
            "churned_customers as churned, is_partial_month from marts.fct_churn_monthly order by month",
        )
    ]
    complete = _rows(
        conn,
        "select cast(month as varchar) as month, churn_rate from marts.fct_churn_monthly "
        "where not is_partial_month and churn_rate is not null order by month desc limit 1",
    )
    risk_scores = [
        float(v)
        for (v,) in conn.execute("select churn_risk_score from marts.fct_customer_churn_risk").fetchall()
    ]
    band_counts = dict(
        conn.execute(
            "select churn_risk_band, count(*) from marts.fct_customer_churn_risk group by 1"
        ).fetchall()
    )
    rfm = {
        r["rfm_segment"]: r
        for r in _rows(
            conn,
            "select rfm_segment, count(*) as customers, avg(historical_clv) as clv "
            "from marts.fct_customer_rfm "
            "group by rfm_segment",
        )
    }

    clv_predicted: list[float] = []
    clv_historical: list[float] = []
    backtest: dict[str, Any] | None = None
    median_clv: float | None = None
    if _exists(conn, "marts", "customer_clv"):
        pairs = conn.execute("select predicted_clv_12m, historical_clv from marts.customer_clv").fetchall()
        clv_predicted = [float(p) for p, _ in pairs if p is not None]
        clv_historical = [float(h) for _, h in pairs if h is not None]
        median_clv = _float(
            conn.execute("select median(predicted_clv_12m) from marts.customer_clv").fetchall()[0][0]
        )
    if _exists(conn, "marts", "customer_clv_backtest"):
        found = _rows(conn, "select * from marts.customer_clv_backtest")
        backtest = found[0] if found else None

    churn_rate = _float(complete[0]["churn_rate"]) if complete else None
    first_month = last_12[0]["month"][:7] if last_12 else ""
    last_month = last_12[-1]["month"][:7] if last_12 else ""
    window = f"{first_month} to {last_month}" if last_12 else "no answers"
    key_numbers = [
        KeyNumber("NPS", fmt_number(nps, 1), f"{int(totals.get('nps_responses', 0)):,} answers, {window}"),
        KeyNumber(
            "CSAT", fmt_number(csat, 1, "%"), f"{int(totals.get('csat_responses', 0)):,} answers, {window}"
        ),
        KeyNumber(
            "CES (1-7)", fmt_number(ces, 2), f"{int(totals.get('ces_responses', 0)):,} answers, {window}"
        ),
        KeyNumber(
            "Churn rate", fmt_pct(churn_rate), f"month of {complete[0]['month'][:7]}" if complete else ""
        ),
        KeyNumber("Median predicted CLV", fmt_number(median_clv, 2), "next 12 months, per buyer"),
        KeyNumber("Customers with a stage", fmt_number(sum(stage_counts.values())), "current journey stage"),
        *[
            KeyNumber(stage.capitalize(), fmt_number(stage_counts.get(stage, 0)), "customers now")
            for stage in STAGES
        ],
    ]
    return ReportData(
        as_of=as_of_text,
        key_numbers=key_numbers,
        stage_customers=stage_customers,
        funnel=funnel,
        stage_flows=flows,
        survey_trend=trend,
        low_sample_threshold=low_sample_threshold,
        retention=retention,
        touchpoints=touchpoints,
        churn=churn,
        churn_risk_scores=risk_scores,
        churn_risk_bands=[(b, int(band_counts.get(b, 0))) for b in RISK_BANDS],
        clv_predicted=clv_predicted,
        clv_historical=clv_historical,
        backtest=backtest,
        rfm_segments=[
            (s, int(rfm[s]["customers"]), float(rfm[s]["clv"] or 0)) for s in RFM_SEGMENTS if s in rfm
        ],
        metrics={
            "nps_last_12_months": nps,
            "csat_last_12_months": csat,
            "ces_last_12_months": ces,
            "nps_answers_last_12_months": int(totals.get("nps_responses", 0)),
            "churn_rate_last_complete_month": churn_rate,
            "median_predicted_clv_12m": median_clv,
            "customers_per_stage": {stage: stage_counts.get(stage, 0) for stage in STAGES},
        },
    )
