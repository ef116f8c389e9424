"""The Dagster and dbt conventions users expect (issue #22.6): owners and code references on every asset,
freshness checks on the profile marts, dbt exposures that match what the code reads, row counts and column
lineage on dbt materializations, `dbt source freshness` on the raw sources and `dbt docs generate`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource
from sample_warehouse import generate_and_ingest, query, run_dbt

from cx_pipeline.settings import DBT_PROJECT_DIR, PROJECT_ROOT
from cx_pipeline.sql import compose, qualified_name


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    from cx_pipeline.defs.dbt.project import prepare_dbt_manifest

    prepare_dbt_manifest()
    from cx_pipeline.definitions import defs

    return defs()


@pytest.fixture(scope="module")
def manifest() -> dict:
    from cx_pipeline.defs.dbt.project import cx360_dbt_project

    return json.loads(Path(cx360_dbt_project().manifest_path).read_text())


# --- owners and code references ------------------------------------------------------------------------


def test_every_asset_has_the_owners_of_its_area_or_group(definitions: dg.Definitions) -> None:
    from cx_pipeline.defs.ownership import owners_of

    specs = list(definitions.resolve_all_asset_specs())
    assert len(specs) > 50
    without = sorted(spec.key.to_user_string() for spec in specs if not spec.owners)
    assert without == [], f"assets without owners (add their group to OWNERS_BY_GROUP): {without}"
    for spec in specs:
        assert list(spec.owners) == list(owners_of(spec.key, spec.group_name)), spec.key
    owners = {spec.key.to_user_string(): spec.owners for spec in specs}
    assert owners["marts/dim_customers"] == ["team:analytics-engineering"]
    assert owners["raw/cart_events"] == ["team:data-platform"]
    assert owners["serving/cx360_bi"] == ["team:data-platform"]
    assert owners["privacy/suppressed_identifiers"] == ["team:privacy"]
    assert owners["privacy/erasure_verification"] == ["team:privacy"]
    assert owners["reports/cx_report"] == ["team:cx-analytics"]


def test_dbt_models_link_to_their_sql_and_python_assets_to_their_function(
    definitions: dg.Definitions, manifest: dict
) -> None:
    from cx_pipeline.defs.dbt.translator import dbt_node_asset_key
    from cx_pipeline.defs.ownership import code_references

    sql_by_key = {
        key: (DBT_PROJECT_DIR / node["original_file_path"]).resolve()
        for node in manifest["nodes"].values()
        if (key := dbt_node_asset_key(node)) is not None
    }
    python_assets = 0
    for spec in definitions.resolve_all_asset_specs():
        references = code_references(spec)
        assert references, f"{spec.key.to_user_string()} has no code reference"
        paths = [Path(reference.file_path).resolve() for reference in references]
        assert all(path.is_file() for path in paths), (spec.key, paths)
        if spec.key in sql_by_key:
            assert paths == [sql_by_key[spec.key]], spec.key  # the model's .sql, not the @dbt_assets function
        else:
            python_assets += 1
            (reference,) = references
            path = Path(reference.file_path).resolve()
            assert path.is_relative_to(PROJECT_ROOT / "cx_pipeline" / "defs") and path.suffix == ".py"
            line = path.read_text().splitlines()[reference.line_number - 1]
            assert "def " in line or "@dg." in line, (spec.key, line)
    assert python_assets >= 10  # raw tables, landing folder, privacy, CLV, report, exports, serving


# --- freshness checks on the profile marts ---------------------------------------------------------


def test_the_profile_marts_have_freshness_checks_and_a_sensor(definitions: dg.Definitions) -> None:
    from cx_pipeline.defs.freshness import PROFILE_MART_KEYS

    graph = definitions.resolve_asset_graph()
    for key in PROFILE_MART_KEYS:
        assert graph.has(key), f"{key.to_user_string()} is not an asset"
        assert dg.AssetCheckKey(key, "freshness_check") in graph.asset_check_keys
    assert dg.AssetKey(["marts", "dim_customers"]) in PROFILE_MART_KEYS
    sensor = definitions.resolve_sensor_def("freshness_checks_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED  # switched on with the daily schedule
    # The full run evaluates them too, after the marts it rebuilt.
    full_run_checks = definitions.resolve_job_def("full_pipeline").asset_layer.asset_graph.asset_check_keys
    assert {dg.AssetCheckKey(key, "freshness_check") for key in PROFILE_MART_KEYS} <= set(full_run_checks)


def _evaluate_freshness(instance: dg.DagsterInstance) -> dict[str, dg.AssetCheckEvaluation]:
    from cx_pipeline.defs.freshness import PROFILE_FRESHNESS_CHECKS, PROFILE_MART_KEYS

    job = dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*PROFILE_FRESHNESS_CHECKS))
    definitions = dg.Definitions(
        assets=[dg.AssetSpec(key) for key in PROFILE_MART_KEYS],
        asset_checks=PROFILE_FRESHNESS_CHECKS,
        jobs=[job],
    )
    result = definitions.resolve_job_def("freshness").execute_in_process(instance=instance)
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_freshness_checks_pass_within_26_hours_of_a_materialization_and_fail_after() -> None:
    from dagster._core.test_utils import freeze_time
    from dagster._time import get_current_datetime

    from cx_pipeline.defs.freshness import PROFILE_MART_KEYS

    fresh, stale = PROFILE_MART_KEYS[0], PROFILE_MART_KEYS[1]
    with dg.instance_for_test() as instance:
        now = get_current_datetime()
        # The daily run is at 04:00 UTC: 26 hours leave 2 for the run itself.
        with freeze_time(now - timedelta(hours=25)):
            instance.report_runless_asset_event(dg.AssetMaterialization(fresh))
        with freeze_time(now - timedelta(hours=27)):
            instance.report_runless_asset_event(dg.AssetMaterialization(stale))
        evaluations = _evaluate_freshness(instance)

    assert evaluations[fresh.to_user_string()].passed
    assert not evaluations[stale.to_user_string()].passed
    assert evaluations[stale.to_user_string()].severity == dg.AssetCheckSeverity.ERROR
    never_built = PROFILE_MART_KEYS[2].to_user_string()
    assert not evaluations[never_built].passed


# --- dbt exposures --------------------------------------------------------------------------------


def test_exposures_list_exactly_the_models_the_serving_exports_and_report_assets_read(
    manifest: dict, definitions: dg.Definitions
) -> None:
    """Each exposure's depends_on is the set of dbt models its Dagster asset depends on (the report's
    customer_clv is written by a Dagster asset, not dbt, so no exposure can ref it)."""
    from cx_pipeline.defs.cx import REPORT_KEY
    from cx_pipeline.defs.dbt.translator import dbt_node_asset_key
    from cx_pipeline.defs.exports import EXPORTS_KEY
    from cx_pipeline.defs.serving import SERVING_KEY

    read_by = {
        "bi_serving_copy": SERVING_KEY,
        "marketing_audience_exports": EXPORTS_KEY,
        "cx_report": REPORT_KEY,
    }
    model_by_key = {
        key: unique_id for unique_id, node in manifest["nodes"].items() if (key := dbt_node_asset_key(node))
    }
    graph = definitions.resolve_asset_graph()
    specs = {spec.key: spec for spec in definitions.resolve_all_asset_specs()}
    exposures = {exposure["name"]: exposure for exposure in manifest["exposures"].values()}
    assert set(exposures) == set(read_by)
    for name, asset_key in read_by.items():
        read = {model_by_key[key] for key in graph.get(asset_key).parent_keys if key in model_by_key}
        exposure = exposures[name]
        assert len(read) >= 5, (name, read)
        assert set(exposure["depends_on"]["nodes"]) == read, (
            f"{name}: update _exposures.yml to {sorted(read)}"
        )
        assert exposure["type"] in {"dashboard", "application", "analysis"}
        assert exposure["description"].strip()
        assert f"team:{exposure['owner']['name']}" in specs[asset_key].owners, name


# --- dbt on a tiny warehouse: row counts and lineage, source freshness, docs ----------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """30 generated people, ingested: enough rows for every raw table, seconds to build."""
    return generate_and_ingest(tmp_path_factory.mktemp("conventions"), persons=30, seed=42)


@pytest.mark.slow
def test_dbt_materializations_carry_row_counts_and_column_lineage_without_holding_the_warehouse(
    tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cx_pipeline.defs.dbt.assets import cx360_dbt_assets
    from cx_pipeline.defs.dbt.project import dbt_cli_resource
    from cx_pipeline.defs.dbt.translator import dbt_asset_key
    from cx_pipeline.warehouse import warehouse_connection_config

    monkeypatch.setenv("CX360_WAREHOUSE", str(tiny.warehouse))
    cart_events = dbt_asset_key("staging", "stg_shop__cart_events")  # a table
    consent_events = dbt_asset_key("staging", "stg_privacy__consent_events")  # a table
    rejections = dbt_asset_key("staging", "stg_shop__product_rejections")  # a view

    @dg.asset(deps=[cart_events])
    def writes_after_dbt(duckdb: DuckDBResource) -> None:
        """The next step of the same run writes the warehouse: no read-only handle is left in the process."""
        with duckdb.get_connection() as connection:
            connection.execute("create or replace table main.after_dbt as select 1 as written")

    result = dg.materialize(
        [cx360_dbt_assets(), writes_after_dbt],
        selection=[cart_events, consent_events, rejections, writes_after_dbt.key],
        resources={
            "dbt": dbt_cli_resource(),
            "duckdb": DuckDBResource(
                database=str(tiny.warehouse), connection_config=warehouse_connection_config()
            ),
        },
    )
    assert result.success
    metadata = {
        event.asset_key: event.materialization.metadata for event in result.get_asset_materialization_events()
    }
    tables = (
        (cart_events, qualified_name("staging", "stg_shop__cart_events")),
        (consent_events, qualified_name("staging", "stg_privacy__consent_events")),
    )
    for key, relation in tables:
        ((rows,),) = query(tiny.warehouse, compose("select count(*) from {relation}", relation=relation))
        assert rows > 0
        assert metadata[key]["dagster/row_count"].value == rows, key
        columns = [column.name for column in metadata[key]["dagster/column_schema"].schema.columns]
        assert "cart_id" in columns or key != cart_events
    assert "dagster/row_count" not in metadata[rejections]  # views are not counted (each count runs the view)
    lineage = metadata[cart_events]["dagster/column_lineage"].column_lineage
    upstream = {dep.asset_key for deps in lineage.deps_by_column.values() for dep in deps}
    assert upstream == {dg.AssetKey(["raw", "cart_events"])}
    assert query(tiny.warehouse, "select written from main.after_dbt") == [(1,)]

    # Column lineage (CPU-heavy on the whole project) can be switched off per run: schema and counts remain.
    without_lineage = dg.materialize(
        [cx360_dbt_assets()],
        selection=[cart_events],
        resources={"dbt": dbt_cli_resource()},
        run_config={"ops": {"cx360_dbt_models": {"config": {"column_lineage": False}}}},
    )
    (event,) = without_lineage.get_asset_materialization_events()
    assert "dagster/column_lineage" not in event.materialization.metadata
    assert event.materialization.metadata["dagster/row_count"] == metadata[cart_events]["dagster/row_count"]
    assert "dagster/column_schema" in event.materialization.metadata
    # ...and no handle in this process either: another process can open the file for writing.
    probe = f"import duckdb; duckdb.connect({str(tiny.warehouse)!r}).close()"
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


def _freshness(root: Path, warehouse: Path) -> tuple[int, dict[str, str]]:
    result = run_dbt(root, warehouse, "source", "freshness", check=False)
    sources = json.loads((root / "dbt_target" / "sources.json").read_text())
    return result.returncode, {r["unique_id"].split(".", 2)[2]: r["status"] for r in sources["results"]}


@pytest.mark.slow
def test_dbt_source_freshness_warns_after_26_hours_and_errors_after_50(tiny) -> None:
    from cx_pipeline.warehouse import connect

    root = tiny.root / "freshness"
    returncode, statuses = _freshness(root, tiny.warehouse)
    assert returncode == 0
    assert statuses == {
        "crm.crm_contacts": "pass",
        "privacy.gdpr_consents": "pass",
        "segment.web_events": "pass",
        "shop.cart_events": "pass",
        "shop.product_rejections": "pass",
        "support.support_interactions": "pass",
        "surveys.nps_responses": "pass",
    }  # erasure requests come when people ask: no freshness; the privacy tables are not deliveries

    with connect(tiny.warehouse) as connection:
        connection.execute("update raw.nps_responses set _loaded_at = _loaded_at - interval 30 hour")
        connection.execute("update raw.cart_events set _loaded_at = _loaded_at - interval 51 hour")
    returncode, statuses = _freshness(root, tiny.warehouse)
    assert statuses["surveys.nps_responses"] == "warn"
    assert statuses["shop.cart_events"] == "error"
    assert statuses["crm.crm_contacts"] == "pass"
    assert returncode == 1  # an error fails the command (and a scheduler step running it)


@pytest.mark.slow
def test_dbt_docs_generate_writes_a_site_with_the_catalog(tiny) -> None:
    root = tiny.root / "docs"
    run_dbt(root, tiny.warehouse, "docs", "generate", "--static")
    target = root / "dbt_target"
    assert (target / "index.html").is_file() and (target / "static_index.html").is_file()
    catalog = json.loads((target / "catalog.json").read_text())
    assert "source.cx360.crm.crm_contacts" in catalog["sources"]  # columns read from the warehouse
    manifest = json.loads((target / "manifest.json").read_text())
    assert "exposure.cx360.bi_serving_copy" in manifest["exposures"]


@pytest.mark.slow
def test_the_manifest_is_parsed_again_for_a_warehouse_file_of_another_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dbt-duckdb names the database after the warehouse file, and the manifest's relation names (which
    dagster-dbt counts rows by) start with it: a warehouse of another name needs its own parse."""
    from cx_pipeline.defs.dbt.project import cx360_dbt_project, prepare_dbt_manifest

    def dim_customers_relation() -> str:
        nodes = json.loads(Path(cx360_dbt_project().manifest_path).read_text())["nodes"]
        return nodes["model.cx360.dim_customers"]["relation_name"]

    prepare_dbt_manifest()
    assert dim_customers_relation() == '"cx360"."marts"."dim_customers"'
    monkeypatch.setenv("CX360_WAREHOUSE", str(tmp_path / "other.duckdb"))
    try:
        assert prepare_dbt_manifest()  # parsed again
        assert dim_customers_relation() == '"other"."marts"."dim_customers"'
        assert not prepare_dbt_manifest()  # and then cached
    finally:
        monkeypatch.undo()
        prepare_dbt_manifest()
    assert dim_customers_relation() == '"cx360"."marts"."dim_customers"'
