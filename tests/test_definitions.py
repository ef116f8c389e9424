"""The Dagster code location loads and exposes the whole pipeline as one lineage graph."""

from __future__ import annotations

import dagster as dg
import pytest

from cx_pipeline.contracts import SOURCE_NAMES


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    from cx_pipeline.defs.dbt.project import prepare_dbt_manifest

    prepare_dbt_manifest()
    from cx_pipeline.definitions import defs

    return defs()


def test_every_source_has_a_raw_asset_in_the_ingestion_group(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    for source in SOURCE_NAMES:
        key = dg.AssetKey(["raw", source])
        assert graph.has(key), f"missing raw asset for {source}"
        assert graph.get(key).group_name == "ingestion"


def test_dbt_sources_map_onto_the_raw_assets(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    staging_keys = [key for key in graph.get_all_asset_keys() if key.path[0] == "staging"]
    assert staging_keys, "no staging models loaded"
    upstream_of_staging = {parent for key in staging_keys for parent in graph.get(key).parent_keys}
    assert {dg.AssetKey(["raw", source]) for source in SOURCE_NAMES} <= upstream_of_staging


def test_profile_is_downstream_of_every_source(definitions: dg.Definitions) -> None:
    graph = definitions.resolve_asset_graph()
    profile = dg.AssetKey(["marts", "dim_customers"])
    assert graph.has(profile)
    ancestors = set(graph.upstream_key_iterator(profile))
    for source in SOURCE_NAMES:
        if source == "erasure_requests":
            continue
        assert dg.AssetKey(["raw", source]) in ancestors, f"dim_customers does not depend on raw.{source}"


def test_jobs_schedules_and_sensors_are_defined(definitions: dg.Definitions) -> None:
    assert definitions.resolve_job_def("full_pipeline") is not None
    assert list(definitions.schedules or []), "no schedule defined"
    assert list(definitions.sensors or []), "no sensor defined"


def test_raw_assets_and_models_carry_checks(definitions: dg.Definitions) -> None:
    check_keys = definitions.resolve_asset_graph().asset_check_keys
    checked_assets = {key.asset_key for key in check_keys}
    for source in SOURCE_NAMES:
        assert dg.AssetKey(["raw", source]) in checked_assets, f"raw.{source} has no asset check"
    assert dg.AssetKey(["marts", "dim_customers"]) in checked_assets


def test_the_warehouse_folder_is_created_when_missing(tmp_path, monkeypatch) -> None:
    """DuckDB creates the file but not its folder; without one the resource would retry connecting forever."""
    from cx_pipeline.defs.resources import resources

    warehouse = tmp_path / "not" / "there" / "cx360.duckdb"
    monkeypatch.setenv("CX360_WAREHOUSE", str(warehouse))
    definitions = resources()
    assert warehouse.parent.is_dir()
    assert definitions.resources["duckdb"].database == str(warehouse)
