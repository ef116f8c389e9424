"""CX assets (group ``cx``): predicted CLV written back to the warehouse, and the self-contained CX report.

Both read dbt marts (declared as ``deps``), hold the warehouse pool while they use DuckDB, and keep their
logic in pure functions (``cx_pipeline.cx.clv``, ``cx_pipeline.cx.report``). Definitions: docs/cx_measures.md,
docs/clv.md.
"""

from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource

from cx_pipeline.cx import clv
from cx_pipeline.cx.clv_table import CLV_SCHEMA, CLV_TABLE, CLV_TABLE_COLUMNS, clv_table, clv_table_select
from cx_pipeline.cx.report import render_report
from cx_pipeline.cx.report_data import REPORT_RELATIONS, load_report_data
from cx_pipeline.defs.dbt.translator import dbt_asset_key
from cx_pipeline.defs.resources import WAREHOUSE_POOL
from cx_pipeline.publish import write_file_atomically
from cx_pipeline.settings import DBT_PROJECT_DIR, Paths
from cx_pipeline.sql import compose

# The CLV is a mart and the report a published file, so they sit in those groups of the flow; the tag `cx`
# (the dbt CX models carry it too) selects the whole CX part in the UI (`tag:cx`).
CLV_GROUP = "marts"
REPORT_GROUP = "exports"
CX_TAGS = {"cx": ""}
# customer_clv is written by the asset below, not by dbt: its key is its relation, like a dbt model's.
CLV_RELATION = (CLV_SCHEMA, CLV_TABLE)
CLV_KEY = dg.AssetKey(list(CLV_RELATION))
REPORT_KEY = dg.AssetKey(["reports", "cx_report"])
ORDERS_KEY = dbt_asset_key("marts", "fct_cx_orders")
RFM_KEY = dbt_asset_key("marts", "fct_customer_rfm")

# The columns of marts.customer_clv, in table order (their types: cx_pipeline/cx/clv_table.py).
CLV_COLUMNS = tuple(CLV_TABLE_COLUMNS)


def dbt_var(name: str, default: Any) -> Any:
    """A var from the ``vars:`` block of dbt_project.yml (the report follows the models' thresholds)."""
    import yaml

    try:
        project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return default
    value = (project.get("vars") or {}).get(name)
    return default if value is None else value


class ClvConfig(dg.Config):
    """Prediction horizon, backtest holdout and optional L2 penalty of the CLV fit."""

    horizon_days: int = clv.DAYS_PER_YEAR
    holdout_months: int = 6
    penalizer: float = 0.0


def _observation_end(conn: Any) -> Any:
    """The dbt models' `as_of`, as recorded on fct_customer_rfm (the latest order if the table is empty)."""
    as_of = conn.execute("select max(as_of_at) from marts.fct_customer_rfm").fetchall()[0][0]
    if as_of is None:
        as_of = conn.execute("select max(ordered_at) from marts.fct_cx_orders").fetchall()[0][0]
    return as_of


@dg.asset(
    key=CLV_KEY,
    group_name=CLV_GROUP,
    tags=CX_TAGS,
    deps=[ORDERS_KEY, RFM_KEY],
    pool=WAREHOUSE_POOL,
    kinds={"python", "duckdb"},
    description=(
        "Predicted 12-month CLV per buyer: BG/NBD (purchases, p_alive) x Gamma-Gamma (order value) fitted by "
        "maximum likelihood on marts.fct_cx_orders, plus historical CLV; the backtest goes to "
        "marts.customer_clv_backtest and the metadata (docs/clv.md)."
    ),
)
def customer_clv(
    context: dg.AssetExecutionContext, config: ClvConfig, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    with duckdb.get_connection() as conn:
        orders = conn.execute("select customer_id, ordered_at, net_revenue from marts.fct_cx_orders").df()
        observation_end = _observation_end(conn)

    metadata: dict[str, Any] = {"customers": 0}
    summary = clv.summarise_orders(orders, observation_end) if observation_end is not None else None
    predictions: pd.DataFrame
    backtest_row: dict[str, Any] | None = None
    if summary is None or summary.empty:
        predictions = pd.DataFrame({column: pd.Series(dtype=float) for column in CLV_COLUMNS})
        predictions["customer_id"] = predictions["customer_id"].astype(object)
        metadata["model"] = "not fitted: no orders"
    else:
        try:
            model = clv.fit_clv_model(summary, penalizer=config.penalizer)
        except ValueError as error:
            context.log.warning(f"CLV model not fitted: {error}")
            model = None
            metadata["model"] = f"not fitted: {error}"
        predictions = _predictions(summary, model, config.horizon_days)
        metadata["customers"] = len(predictions)
        if model is not None:
            metadata.update({f"bgnbd_{k}": v for k, v in model.purchases.as_metadata().items()})
            metadata.update({f"gamma_gamma_{k}": v for k, v in model.spend.as_metadata().items()})
            metadata["median_predicted_clv_12m"] = float(np.nanmedian(predictions["predicted_clv_12m"]))
            metadata["total_predicted_clv_12m"] = float(np.nansum(predictions["predicted_clv_12m"]))
        try:
            result = clv.backtest(
                orders, observation_end, holdout_months=config.holdout_months, penalizer=config.penalizer
            )
            backtest_row = {k: v for k, v in result.as_metadata().items() if k != "model"}
            metadata.update({f"backtest_{k}": v for k, v in backtest_row.items()})
            metadata["backtest"] = dg.MetadataValue.md(_backtest_markdown(result))
        except ValueError as error:
            context.log.warning(f"CLV backtest skipped: {error}")
            metadata["backtest"] = f"skipped: {error}"
    metadata["observation_end"] = str(observation_end)
    metadata["historical_clv_total"] = float(predictions["historical_clv"].sum()) if len(predictions) else 0.0

    with duckdb.get_connection() as conn:
        conn.register("clv_frame", predictions.loc[:, list(CLV_COLUMNS)])
        conn.execute(
            compose(
                "create or replace table {table} as {select}",
                table=clv_table(),
                select=clv_table_select("clv_frame"),
            )
        )
        conn.unregister("clv_frame")
        conn.execute("drop table if exists marts.customer_clv_backtest")
        if backtest_row is not None:
            frame = pd.DataFrame([backtest_row])
            conn.register("backtest_frame", frame)
            conn.execute("create table marts.customer_clv_backtest as select * from backtest_frame")
            conn.unregister("backtest_frame")
    metadata["dagster/row_count"] = len(predictions)
    return dg.MaterializeResult(metadata=metadata)


def _predictions(summary: pd.DataFrame, model: clv.ClvModel | None, horizon_days: int) -> pd.DataFrame:
    if model is None:
        frame = summary.copy()
        for column in ("p_alive", "expected_purchases", "expected_avg_order_value", "predicted_clv"):
            frame[column] = np.nan
    else:
        frame = clv.predict_clv(summary, model, horizon_days=horizon_days)
    return frame.rename(
        columns={"expected_purchases": "expected_purchases_12m", "predicted_clv": "predicted_clv_12m"}
    ).loc[:, list(CLV_COLUMNS)]


def _backtest_markdown(result: clv.Backtest) -> str:
    return (
        f"Fit on orders up to **{result.calibration_end}**, predict the {result.holdout_days} days to "
        f"**{result.observation_end}** for {result.n_customers:,} customers.\n\n"
        "| | purchases | net revenue |\n|---|---:|---:|\n"
        f"| predicted | {result.predicted_purchases:,.0f} | {result.predicted_revenue:,.0f} |\n"
        f"| actual | {result.actual_purchases:,.0f} | {result.actual_revenue:,.0f} |\n"
        f"| aggregate error | {result.purchases_pct_error:+.1f}% | {result.revenue_pct_error:+.1f}% |\n"
        f"| MAE per customer | {result.purchases_mae:.3f} | {result.revenue_mae:.2f} |\n"
        f"| correlation | {result.purchases_correlation:.3f} | {result.revenue_correlation:.3f} |\n"
    )


class CxReportConfig(dg.Config):
    """Low-sample threshold of the report; null = the dbt var cx_low_sample_threshold (default 30)."""

    low_sample_threshold: int | None = None


@dg.asset(
    key=REPORT_KEY,
    group_name=REPORT_GROUP,
    tags=CX_TAGS,
    deps=[CLV_KEY if relation == CLV_RELATION else dbt_asset_key(*relation) for relation in REPORT_RELATIONS],
    pool=WAREHOUSE_POOL,
    kinds={"python", "html"},
    description=(
        "Self-contained HTML CX report (inline SVG, opens offline): journey funnel and stage flow, "
        "NPS/CSAT/CES trends with answer counts, retention cohorts, CX per touchpoint, churn and CLV "
        "distributions."
    ),
)
def cx_report(config: CxReportConfig, duckdb: DuckDBResource) -> dg.MaterializeResult:
    threshold = config.low_sample_threshold
    if threshold is None:
        threshold = int(dbt_var("cx_low_sample_threshold", 30))
    with duckdb.get_connection() as conn:
        data = load_report_data(conn, low_sample_threshold=threshold)
    html = render_report(data)
    target = Paths.from_env().reports / "cx_report.html"
    write_file_atomically(target, html)

    metrics = data.metrics
    metadata: dict[str, Any] = {
        "report_path": dg.MetadataValue.path(str(target)),
        "report_url": dg.MetadataValue.url(target.resolve().as_uri()),
        "as_of": data.as_of,
        "size_bytes": len(html.encode("utf-8")),
        "customers_per_stage": dg.MetadataValue.json(metrics.get("customers_per_stage", {})),
        "nps_answers_last_12_months": metrics.get("nps_answers_last_12_months", 0),
        "low_sample_threshold": threshold,
    }
    for key in (
        "nps_last_12_months",
        "csat_last_12_months",
        "ces_last_12_months",
        "churn_rate_last_complete_month",
        "median_predicted_clv_12m",
    ):
        value = metrics.get(key)
        metadata[key] = (
            dg.MetadataValue.float(float(value)) if value is not None else dg.MetadataValue.text("n/a")
        )
    for stage, customers in metrics.get("customers_per_stage", {}).items():
        metadata[f"customers_{stage}"] = customers
    return dg.MaterializeResult(metadata=metadata)
