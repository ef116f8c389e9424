"""The Dagster assets and checks, run for real with dg.materialize on a temporary warehouse."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource
from ingestion_fixtures import BAD_LANDING, GOOD_LANDING, copy_landing

from cx_pipeline.contracts import SOURCE_NAMES
from cx_pipeline.defs.checks import RAW_CHECKS
from cx_pipeline.defs.ingestion import RAW_ASSETS, raw_asset_key


@pytest.fixture
def environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    landing = copy_landing(GOOD_LANDING, tmp_path / "landing")
    monkeypatch.setenv("CX360_LANDING_DIR", str(landing))
    monkeypatch.setenv("CX360_QUARANTINE_DIR", str(tmp_path / "quarantine"))
    return tmp_path


def _materialize(
    tmp_path: Path, instance: dg.DagsterInstance, selection: list[dg.AssetKey] | None = None
) -> dg.ExecuteInJobResult:
    return dg.materialize(
        [*RAW_ASSETS, *RAW_CHECKS],
        resources={"duckdb": DuckDBResource(database=str(tmp_path / "warehouse.duckdb"))},
        instance=instance,
        selection=selection,
        raise_on_error=False,
    )


def test_an_unreadable_file_is_quarantined_named_by_a_warning_and_the_run_goes_on(environment: Path) -> None:
    """Issue #21.2: one bad file used to fail its asset and hold back dbt, erasure, exports and serving."""
    shutil.copy(BAD_LANDING / "cart_events" / "05_binary.csv", environment / "landing" / "cart_events")
    with dg.instance_for_test() as instance:
        result = _materialize(environment, instance)
        assert result.success

        materialized = {e.asset_key for e in result.get_asset_materialization_events()}
        assert materialized == {raw_asset_key(s) for s in SOURCE_NAMES}

        evaluations = result.get_asset_check_evaluations()
        failed = {(e.asset_key, e.check_name): e for e in evaluations if not e.passed}
        cart = raw_asset_key("cart_events")
        # The rejected file, and the share of quarantined lines it makes: warnings, not failures.
        assert set(failed) == {(cart, "no_rejected_files"), (cart, "quarantine_share_below_threshold")}
        assert all(e.severity == dg.AssetCheckSeverity.WARN for e in failed.values())
        rejected = failed[(cart, "no_rejected_files")].description
        assert "cart_events/05_binary.csv" in rejected
        assert "binary" in rejected and "land it again" in rejected
        assert {e.asset_key for e in evaluations} == materialized

        with duckdb.connect(str(environment / "warehouse.duckdb")) as conn:
            # The good cart file was committed beside the rejected one.
            assert conn.execute("SELECT count(*) FROM raw.cart_events").fetchall() == [(6,)]
            statuses = conn.execute(
                "SELECT file_path, status FROM raw.loaded_files WHERE source = 'cart_events' ORDER BY 1"
            ).fetchall()
        assert statuses == [("cart_events/05_binary.csv", "rejected"), ("cart_events/2025-01.csv", "loaded")]

        _assert_web_events_metadata(result.asset_materializations_for_node("raw__web_events")[0].metadata)

        # Re-running skips the unchanged rejected file: it is reported, not read again.
        again = _materialize(environment, instance, [raw_asset_key("cart_events")])
        assert again.success
        cart = again.asset_materializations_for_node("raw__cart_events")[0].metadata
        assert cart["files_still_rejected"].value == 1 and cart["files_skipped"].value == 2
        assert cart["rows_loaded"].value == 0


def _assert_web_events_metadata(metadata) -> None:
    assert metadata["rows_loaded"].value == 6
    assert metadata["rows_duplicate"].value == 1
    assert metadata["rows_quarantined"].value == 0
    assert metadata["files_loaded"].value == 2 and metadata["files_rejected"].value == 0
    assert metadata["dagster/row_count"].value == 6
    schema = metadata["dagster/column_schema"].value
    assert [c.name for c in schema.columns][:2] == ["type", "message_id"]
    assert "context_page_url" in {c.name for c in schema.columns}
    preview = metadata["preview"].value
    assert preview.startswith("Rows of web_events/2025-02.jsonl") and "| msg-0005 |" in preview
    assert "web_events/2025-01.jsonl" in metadata["files"].value


def test_definitions_expose_the_raw_assets_with_their_checks() -> None:
    from cx_pipeline.defs.dbt.project import prepare_dbt_manifest

    prepare_dbt_manifest()  # the dbt assets need a manifest (parsed once, if missing)
    from cx_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    check_keys = graph.asset_check_keys
    for source in SOURCE_NAMES:
        key = raw_asset_key(source)
        node = graph.get(key)
        assert node.group_name == "ingestion" and "duckdb" in node.kinds
        names = {c.name for c in check_keys if c.asset_key == key}
        assert {"required_fields_not_null", "record_key_unique", "quarantine_share_below_threshold"} <= names
    spec = graph.get_check_spec(dg.AssetCheckKey(raw_asset_key("cart_events"), "record_key_unique"))
    assert spec.blocking
