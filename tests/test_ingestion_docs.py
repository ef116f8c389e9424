"""docs/sources.md is generated from the contracts, and its example rows are valid records."""

from __future__ import annotations

from ingestion_fixtures import conn_fixture, landing_fixture, quarantine_dir_fixture, write_file  # noqa: F401

from cx_pipeline.contracts import CONTRACTS, SOURCE_NAMES
from cx_pipeline.ingestion.docs import (
    EXAMPLES,
    MEANINGS,
    SOURCES_DOC,
    example_file,
    render_sources_markdown,
)
from cx_pipeline.ingestion.loader import load_source


def test_sources_doc_is_up_to_date() -> None:
    assert SOURCES_DOC.read_text(encoding="utf-8") == render_sources_markdown(), (
        "docs/sources.md is stale: run `python -m cx_pipeline.ingestion.docs`"
    )


def test_every_field_is_explained_and_exemplified() -> None:
    for source, contract in CONTRACTS.items():
        assert set(EXAMPLES[source]) == set(contract.field_names), source
        for field in contract.fields:
            assert field.description or MEANINGS[source].get(field.name), f"{source}.{field.name}"


def test_example_rows_load_cleanly(conn, landing, quarantine_dir) -> None:
    for source in SOURCE_NAMES:
        suffix = CONTRACTS[source].format
        write_file(landing, f"{source}/example.{suffix}", example_file(source))
        result = load_source(conn, source, landing, quarantine_dir)
        (loaded,) = result.files
        assert (loaded.status, loaded.rows_loaded, loaded.rows_quarantined) == ("loaded", 1, 0), source
    row = conn.execute("SELECT context_campaign_name, context_device_type FROM raw.web_events").fetchall()
    assert row == [("spring_launch", "mobile")]
