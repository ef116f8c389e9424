"""The generator's planted malformed rows all end up in raw.quarantine at the right file and line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest
from ingestion_fixtures import connect, manifest

from cx_pipeline.contracts import SOURCE_NAMES
from cx_pipeline.ingestion.loader import SourceLoadResult, load_source
from cx_pipeline.sql import compose, identifiers, qualified_name

# Generator kind -> the error_type ingestion gives it.
KIND_TO_ERROR = {
    "broken_json": "invalid_json",
    "json_array": "not_an_object",
    "negative_quantity": "out_of_range",
    "out_of_range": "out_of_range",
    "unknown_enum": "invalid_enum",
    "bad_timestamp": "invalid_timestamp",
    "missing_required_id": "missing_required",
    "missing_identifier": "no_identifier",
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[duckdb.DuckDBPyConnection, Path, dict]:
    generator = pytest.importorskip("cx_pipeline.generator")
    root = tmp_path_factory.mktemp("generated")
    config = generator.GeneratorConfig(customers=300, landing_dir=root / "landing", truth_dir=root / "truth")
    generator.generate(config, progress=False)
    conn = connect()
    results: dict[str, SourceLoadResult] = {
        source: load_source(conn, source, root / "landing", root / "quarantine") for source in SOURCE_NAMES
    }
    return conn, root, results


def test_every_malformed_row_is_quarantined_at_its_file_and_line(generated) -> None:
    conn, root, _ = generated
    with (root / "truth" / "malformed_rows.csv").open(newline="") as handle:
        truth = {(r["source"], r["file"], int(r["line"])): r["kind"] for r in csv.DictReader(handle)}
    assert truth, "the generator planted no malformed rows"
    quarantined = {
        (source, file, line): error_type
        for source, file, line, error_type in conn.execute(
            "SELECT source, source_file, source_line, error_type FROM raw.quarantine"
        ).fetchall()
    }
    missing = sorted(set(truth) - set(quarantined))
    assert not missing, f"malformed rows not quarantined: {missing[:10]}"
    unexpected = sorted(set(quarantined) - set(truth))
    assert not unexpected, f"good rows quarantined: {unexpected[:10]}"
    wrong = {k: (truth[k], quarantined[k]) for k in truth if KIND_TO_ERROR[truth[k]] != quarantined[k]}
    assert not wrong


def test_accounting_matches_the_generator_summary(generated) -> None:
    conn, root, results = generated
    summary = json.loads((root / "truth" / "summary.json").read_text())["sources"]
    for source in SOURCE_NAMES:
        expected = summary[source]
        result = results[source]
        assert result.rejected == []
        assert result.rows_quarantined == expected["malformed"], source
        assert result.rows_duplicate == expected["duplicates"], source
        assert result.rows_loaded == expected["clean"] + expected["duplicates"], source
        per_file = {m["file_path"]: m for m in manifest(conn, source)}
        assert set(per_file) == set(expected["files"])
        for path, file_summary in expected["files"].items():
            entry = per_file[path]
            assert (
                entry["rows_read"] == file_summary["rows"] == entry["rows_loaded"] + entry["rows_quarantined"]
            )
            assert entry["size_bytes"] == file_summary["bytes"]


def test_each_record_key_has_exactly_one_first_delivery(generated) -> None:
    conn, _, _ = generated
    from cx_pipeline.contracts import CONTRACTS

    for source in SOURCE_NAMES:
        keys = identifiers(CONTRACTS[source].field(n).column for n in CONTRACTS[source].record_key)
        rows = conn.execute(
            compose(
                "SELECT count(*) FILTER (WHERE NOT _is_duplicate), count(DISTINCT ({keys})) FROM {table}",
                keys=keys,
                table=qualified_name("raw", source),
            )
        ).fetchall()
        assert rows[0][0] == rows[0][1], source
