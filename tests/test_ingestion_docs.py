"""docs/sources.md and the dbt sources YAML are generated from the contracts, the YAML declares the raw
tables ingestion really creates, and the example rows in the docs are valid records."""

from __future__ import annotations

import yaml
from ingestion_fixtures import conn_fixture, landing_fixture, quarantine_dir_fixture, write_file  # noqa: F401

from cx_pipeline.contracts import CONTRACTS, SOURCE_NAMES, raw_column_descriptions, raw_table_columns
from cx_pipeline.dbt_sources import DBT_SOURCES, render_source_yaml
from cx_pipeline.ingestion.docs import (
    EXAMPLES,
    SOURCES_DOC,
    example_file,
    render_sources_markdown,
)
from cx_pipeline.ingestion.loader import load_source
from cx_pipeline.sql import compose, data_type


def test_sources_doc_is_up_to_date() -> None:
    assert SOURCES_DOC.read_text(encoding="utf-8") == render_sources_markdown(), (
        "docs/sources.md is stale: run `python -m cx_pipeline.ingestion.docs`"
    )


def test_every_field_is_explained_and_exemplified() -> None:
    for source, contract in CONTRACTS.items():
        assert set(EXAMPLES[source]) == set(contract.field_names), source
        for field in contract.fields:
            assert field.description, f"{source}.{field.name}"


def test_example_rows_load_cleanly(conn, landing, quarantine_dir) -> None:
    for source in SOURCE_NAMES:
        suffix = CONTRACTS[source].format
        write_file(landing, f"{source}/example.{suffix}", example_file(source))
        result = load_source(conn, source, landing, quarantine_dir)
        (loaded,) = result.files
        assert (loaded.status, loaded.rows_loaded, loaded.rows_quarantined) == ("loaded", 1, 0), source
    row = conn.execute("SELECT context_campaign_name, context_device_type FROM raw.web_events").fetchall()
    assert row == [("spring_launch", "mobile")]


def test_dbt_sources_yaml_is_up_to_date() -> None:
    for dbt_source in DBT_SOURCES:
        assert dbt_source.path.read_text(encoding="utf-8") == render_source_yaml(dbt_source), (
            f"{dbt_source.path} is stale: run `make contracts` (python -m cx_pipeline.dbt_sources)"
        )


def test_every_raw_table_is_declared_once_as_a_dbt_source() -> None:
    declared = [table for dbt_source in DBT_SOURCES for table in dbt_source.tables]
    assert sorted(declared) == sorted(SOURCE_NAMES)


def test_every_raw_column_has_a_description_beyond_its_name() -> None:
    for source in SOURCE_NAMES:
        descriptions = raw_column_descriptions(source)
        assert list(descriptions) == list(raw_table_columns(source)), source
        names = {field.column: field.name for field in CONTRACTS[source].fields}
        for column, text in descriptions.items():
            words = text.strip().rstrip(".").lower()
            assert words not in {column.lower(), names.get(column, column).lower(), ""}, f"{source}.{column}"


def test_dbt_sources_yaml_declares_the_loaded_raw_tables(conn, landing, quarantine_dir) -> None:
    """Columns, their order and types in the committed YAML are those of the tables ingestion creates."""
    for source in SOURCE_NAMES:
        write_file(landing, f"{source}/example.{CONTRACTS[source].format}", example_file(source))
        load_source(conn, source, landing, quarantine_dir)
    for dbt_source in DBT_SOURCES:
        declared = yaml.safe_load(dbt_source.path.read_text(encoding="utf-8"))
        (source_yaml,) = declared["sources"]
        assert source_yaml["schema"] == "raw"
        for table in source_yaml["tables"]:
            loaded = conn.execute(
                "select column_name, data_type from duckdb_columns() "
                "where schema_name = 'raw' and table_name = ? order by column_index",
                [table["name"]],
            ).fetchall()
            yaml_columns = [
                (
                    column["name"],
                    conn.execute(
                        compose("select typeof(null::{type})", type=data_type(column["data_type"]))
                    ).fetchone()[0],
                )
                for column in table["columns"]
            ]
            assert yaml_columns == loaded, table["name"]
