"""CX measures end to end (docs/cx_measures.md, docs/clv.md): on a copy of the session's shared default sample
the CX dbt models are built and tested (their unit tests included), then the CLV and report assets run through
Dagster; the measures must agree with each other and with the profile."""

import json
import os
import shutil

import dagster as dg
import pytest
from sample_warehouse import DEFAULT_SELECTION, private_copy, query, run_dbt, shared_default_sample

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cx_pipeline")]


@pytest.fixture(scope="module")
def cx_warehouse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from dagster_duckdb import DuckDBResource

    from cx_pipeline.defs.cx import customer_clv, cx_report
    from cx_pipeline.warehouse import warehouse_connection_config

    sample = private_copy(shared_default_sample(tmp_path_factory), tmp_path_factory.mktemp("cx"))
    root, warehouse = sample.root, sample.warehouse
    # The CX models the shared sample does not hold yet, without tests (other areas test their own), then
    # every CX test: the data tests and the hand-worked unit tests.
    already_built = [arg for selector in DEFAULT_SELECTION for arg in ("--exclude", selector)]
    run_dbt(root, warehouse, "build", "--select", "+tag:cx", *already_built, "--indirect-selection", "empty")
    run_dbt(root, warehouse, "test", "--select", "tag:cx")

    reports = root / "reports"
    previous = os.environ.get("CX360_REPORTS_DIR")
    os.environ["CX360_REPORTS_DIR"] = str(reports)
    try:
        result = dg.materialize(
            [customer_clv, cx_report],
            resources={
                "duckdb": DuckDBResource(
                    database=str(warehouse), connection_config=warehouse_connection_config()
                )
            },
        )
    finally:
        if previous is None:
            os.environ.pop("CX360_REPORTS_DIR", None)
        else:
            os.environ["CX360_REPORTS_DIR"] = previous
    assert result.success
    metadata = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    return {"warehouse": warehouse, "reports": reports, "metadata": metadata, "root": root}


def test_clv_table_agrees_with_orders_and_profile(cx_warehouse: dict[str, object]) -> None:
    warehouse = cx_warehouse["warehouse"]
    ((mismatches, customers, buyers),) = query(
        warehouse,
        """
        select
            count(*) filter (where clv.historical_clv is distinct from rfm.historical_clv),
            count(clv.customer_id),
            count(rfm.customer_id)
        from marts.customer_clv as clv
        full outer join marts.fct_customer_rfm as rfm on clv.customer_id = rfm.customer_id
        """,
    )
    assert customers == buyers > 100 and mismatches == 0
    # Historical CLV adds up to the profile's net revenue.
    ((clv_total, profile_total),) = query(
        warehouse,
        "select (select sum(historical_clv) from marts.customer_clv), "
        "(select sum(net_revenue) from marts.dim_customers)",
    )
    assert clv_total == profile_total
    ((bad,),) = query(
        warehouse,
        "select count(*) from marts.customer_clv "
        "where p_alive not between 0 and 1 or expected_purchases_12m < 0 "
        'or predicted_clv_12m < 0 or predicted_clv_12m is null or frequency < 0 or recency > "T"',
    )
    assert bad == 0
    metadata = cx_warehouse["metadata"]["marts/customer_clv"]
    assert metadata["bgnbd_converged"].value is True
    for key in ("backtest_purchases_pct_error", "backtest_revenue_mae", "backtest_purchases_correlation"):
        assert key in metadata


def test_survey_measures_roll_up_consistently(cx_warehouse: dict[str, object]) -> None:
    ((monthly_nps, customer_nps, monthly_csat, customer_csat),) = query(
        cx_warehouse["warehouse"],
        """
        select
            (select sum(nps_responses) from marts.fct_cx_metrics_monthly),
            (select sum(nps_response_count) from intermediate.int_customer_cx_measures),
            (select sum(csat_responses) from marts.fct_cx_metrics_monthly),
            (select sum(csat_response_count) from intermediate.int_customer_cx_measures)
        """,
    )
    assert monthly_nps == customer_nps > 0
    assert monthly_csat == customer_csat > 0


def test_touchpoint_volumes_and_rates(cx_warehouse: dict[str, object]) -> None:
    warehouse = cx_warehouse["warehouse"]
    ((volume, touchpoints),) = query(
        warehouse,
        """
        select
            (select sum(touchpoints) from marts.fct_touchpoint_cx),
            (select count(*) from marts.fct_touchpoints
             where occurred_at <= (select max(as_of_at) from marts.fct_customer_rfm))
        """,
    )
    assert volume == touchpoints
    ((bad_rates, checkouts_convert),) = query(
        warehouse,
        """
        select
            count(*) filter (where conversion_rate not between 0 and 1 or friction_rate not between 0 and 1),
            max(conversion_rate) filter (where touchpoint_type = 'checkout_start')
        from marts.fct_touchpoint_cx
        """,
    )
    assert bad_rates == 0
    assert checkouts_convert > 0.5  # most checkouts end in an order within the window


def test_churn_and_retention_agree_with_the_journey(cx_warehouse: dict[str, object]) -> None:
    warehouse = cx_warehouse["warehouse"]
    # Active at the end of the as_of month = buyers whose current stage is not lapsed.
    ((active_end, buyers_not_lapsed),) = query(
        warehouse,
        """
        select
            (select active_customers_at_end from marts.fct_churn_monthly where is_partial_month),
            (select count(distinct orders.customer_id)
             from marts.fct_cx_orders as orders
             inner join marts.fct_journey_stage_history as stages
                on orders.customer_id = stages.customer_id and stages.is_current
             where stages.journey_stage <> 'lapsed')
        """,
    )
    assert active_end == buyers_not_lapsed
    ((first_months, other_rates_ok),) = query(
        warehouse,
        """
        select
            bool_and(retention_rate = 1.0) filter (where months_since_first_order = 0),
            bool_and(retention_rate between 0 and 1)
        from marts.fct_retention_cohorts
        """,
    )
    assert first_months and other_rates_ok


def test_report_file_and_metadata(cx_warehouse: dict[str, object]) -> None:
    report = cx_warehouse["reports"] / "cx_report.html"
    html = report.read_text(encoding="utf-8")
    assert html.count("<svg ") >= 12 and "<script" not in html
    metadata = cx_warehouse["metadata"]["reports/cx_report"]
    assert metadata["report_path"].value == str(report)
    for key in (
        "nps_last_12_months",
        "csat_last_12_months",
        "ces_last_12_months",
        "median_predicted_clv_12m",
    ):
        assert key in metadata
    assert sum(metadata["customers_per_stage"].value.values()) > 0


def test_cx_assets_sit_in_the_lineage_graph() -> None:
    from cx_pipeline.defs.cx import CLV_KEY, REPORT_KEY
    from cx_pipeline.defs.dbt.project import prepare_dbt_manifest

    prepare_dbt_manifest()
    from cx_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    for key in (CLV_KEY, REPORT_KEY):
        node = graph.get(key)
        assert "cx" in node.tags  # UI selection `tag:cx`, with the dbt CX models
        assert all(graph.has(parent) for parent in node.parent_keys), key
    assert dg.AssetKey(["marts", "fct_cx_orders"]) in graph.get(CLV_KEY).parent_keys
    assert CLV_KEY in graph.get(REPORT_KEY).parent_keys


CLV_SOURCE = "source:cx360_python.customer_clv"


def _clv_source_test_results(root, warehouse) -> dict[str, str]:
    """dbt's data tests on the CLV source (models/marts/cx/_cx__sources.yml): test name -> status."""
    run_dbt(root, warehouse, "test", "--select", CLV_SOURCE, check=False)
    results = json.loads((root / "dbt_target" / "run_results.json").read_text())["results"]
    return {result["unique_id"].split(".")[2]: result["status"] for result in results}


def test_clv_source_tests_pass_on_the_written_table_and_catch_a_duplicate(cx_warehouse, tmp_path) -> None:
    root, warehouse = cx_warehouse["root"], cx_warehouse["warehouse"]
    assert query(warehouse, "select count(*) from marts.customer_clv")[0][0] > 0
    statuses = _clv_source_test_results(root, warehouse)
    assert "source_unique_cx360_python_customer_clv_customer_id" in statuses
    assert set(statuses.values()) == {"pass"}, statuses

    broken = tmp_path / "broken.duckdb"
    shutil.copy(warehouse, broken)
    from cx_pipeline.warehouse import connect

    with connect(broken) as conn:
        conn.execute("insert into marts.customer_clv select * from marts.customer_clv limit 1")
    statuses = _clv_source_test_results(tmp_path, broken)
    assert statuses.pop("source_unique_cx360_python_customer_clv_customer_id") == "fail"
    assert set(statuses.values()) == {"pass"}, statuses
