"""The loaded-file manifest: idempotent re-runs, appended files, changed files, atomic per-file loads."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest
from ingestion_fixtures import (  # noqa: F401
    GOOD_LANDING,
    conn_fixture,
    connect,
    copy_landing,
    landing_fixture,
    manifest,
    quarantine_dir_fixture,
    quarantine_rows,
    write_file,
)

from cx_pipeline.contracts import SOURCE_NAMES
from cx_pipeline.ingestion import loader
from cx_pipeline.ingestion.loader import AccountingError, load_source
from cx_pipeline.ingestion.schema import SchemaMismatchError, ensure_raw_schema
from cx_pipeline.sql import compose, qualified_name

HEADER = "request_id,email,phone,user_id,requested_at\n"


def _snapshot(conn: duckdb.DuckDBPyConnection) -> dict[str, list]:
    tables = [*SOURCE_NAMES, "loaded_files", "quarantine"]
    existing = {
        r[0]
        for r in conn.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw'").fetchall()
    }
    return {
        table: sorted(
            map(
                repr,
                conn.execute(compose("SELECT * FROM {table}", table=qualified_name("raw", table))).fetchall(),
            )
        )
        for table in tables
        if table in existing
    }


def _erasure(conn) -> list[tuple]:
    return conn.execute(
        "SELECT request_id, email, _source_file, _source_line, _is_duplicate FROM raw.erasure_requests "
        "ORDER BY _loaded_at, _source_line"
    ).fetchall()


def test_rerun_on_the_same_landing_changes_nothing(conn, tmp_path: Path, quarantine_dir) -> None:
    landing = copy_landing(GOOD_LANDING, tmp_path / "good")
    for source in SOURCE_NAMES:
        load_source(conn, source, landing, quarantine_dir)
    before = _snapshot(conn)
    # Touch every file: mtimes change, content does not, so the hash decides and nothing is reloaded.
    for path in landing.rglob("*.*"):
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))
    for source in SOURCE_NAMES:
        result = load_source(conn, source, landing, quarantine_dir)
        assert {f.action for f in result.files} == {"skipped"}
    assert _snapshot(conn) == before
    rows = manifest(conn)
    assert len(rows) == 10 and all(r["superseded_at"] is None for r in rows)
    for row in rows:
        assert row["rows_read"] == row["rows_loaded"] + row["rows_quarantined"]


def test_new_file_is_appended_and_duplicates_are_flagged(conn, landing, quarantine_dir) -> None:
    write_file(landing, "erasure_requests/2025-01.csv", HEADER + "R1,a@example.com,,,2025-01-01T00:00:00Z\n")
    load_source(conn, "erasure_requests", landing, quarantine_dir)
    write_file(
        landing,
        "erasure_requests/2025-02.csv",
        HEADER
        + "R2,b@example.com,,,2025-02-01T00:00:00Z\n"
        + "R1,a@example.com,,,2025-01-01T00:00:00Z\n"
        + "R2,b@example.com,,,2025-02-01T00:00:00Z\n",
    )
    result = load_source(conn, "erasure_requests", landing, quarantine_dir)
    assert [(f.file_path, f.action) for f in result.files] == [
        ("erasure_requests/2025-01.csv", "skipped"),
        ("erasure_requests/2025-02.csv", "new"),
    ]
    assert result.files[1].rows_duplicate == 2
    assert _erasure(conn) == [
        ("R1", "a@example.com", "erasure_requests/2025-01.csv", 2, False),
        ("R2", "b@example.com", "erasure_requests/2025-02.csv", 2, False),
        ("R1", "a@example.com", "erasure_requests/2025-02.csv", 3, True),
        ("R2", "b@example.com", "erasure_requests/2025-02.csv", 4, True),
    ]
    assert [r["file_path"] for r in manifest(conn)] == [
        "erasure_requests/2025-01.csv",
        "erasure_requests/2025-02.csv",
    ]


def test_changed_file_replaces_its_earlier_rows_and_quarantine(conn, landing, quarantine_dir) -> None:
    write_file(
        landing,
        "erasure_requests/a.csv",
        HEADER + "R1,a@example.com,,,2025-01-01T00:00:00Z\nR2,,,,2025-01-01T00:00:00Z\n",
    )
    write_file(landing, "erasure_requests/b.csv", HEADER + "R1,a@example.com,,,2025-01-03T00:00:00Z\n")
    load_source(conn, "erasure_requests", landing, quarantine_dir)
    assert [(r[0], r[2], r[4]) for r in _erasure(conn)] == [
        ("R1", "erasure_requests/a.csv", False),
        ("R1", "erasure_requests/b.csv", True),
    ]
    assert [(q["source_line"], q["error_type"]) for q in quarantine_rows(conn)] == [(3, "no_identifier")]

    # a.csv is corrected upstream: R1 is gone from it, R2 gets an email, R3 is new.
    write_file(
        landing,
        "erasure_requests/a.csv",
        HEADER + "R2,r2@example.com,,,2025-01-01T00:00:00Z\nR3,r3@example.com,,,2025-01-02T00:00:00Z\n",
    )
    result = load_source(conn, "erasure_requests", landing, quarantine_dir)
    assert [(f.file_path, f.action) for f in result.files] == [
        ("erasure_requests/a.csv", "replaced"),
        ("erasure_requests/b.csv", "skipped"),
    ]
    # b.csv's R1, flagged as a re-delivery before, is now the first delivery of R1.
    assert sorted((r[0], r[2], r[4]) for r in _erasure(conn)) == [
        ("R1", "erasure_requests/b.csv", False),
        ("R2", "erasure_requests/a.csv", False),
        ("R3", "erasure_requests/a.csv", False),
    ]
    assert quarantine_rows(conn) == []
    history = [(r["file_path"], r["rows_loaded"], r["superseded_at"] is not None) for r in manifest(conn)]
    assert history == [
        ("erasure_requests/a.csv", 1, True),
        ("erasure_requests/b.csv", 1, False),
        ("erasure_requests/a.csv", 2, False),
    ]
    # And loading again is a no-op.
    assert {f.action for f in load_source(conn, "erasure_requests", landing, quarantine_dir).files} == {
        "skipped"
    }


def test_a_failing_file_commits_nothing_of_itself(conn, landing, quarantine_dir, monkeypatch) -> None:
    write_file(landing, "erasure_requests/a.csv", HEADER + "R1,a@example.com,,,2025-01-01T00:00:00Z\n")
    load_source(conn, "erasure_requests", landing, quarantine_dir)
    before = _snapshot(conn)
    write_file(
        landing,
        "erasure_requests/a.csv",
        HEADER + "R9,a@example.com,,,2025-01-01T00:00:00Z\nR8,,,,2025-01-01T00:00:00Z\n",
    )
    original = loader._FileLoad._quarantine_rows

    def crash_after_quarantine(self, select_sql, params):
        original(self, select_sql, params)
        raise KeyboardInterrupt("killed mid-file")

    monkeypatch.setattr(loader._FileLoad, "_quarantine_rows", crash_after_quarantine)
    with pytest.raises(KeyboardInterrupt):
        load_source(conn, "erasure_requests", landing, quarantine_dir)
    assert _snapshot(conn) == before
    monkeypatch.undo()
    result = load_source(conn, "erasure_requests", landing, quarantine_dir)
    assert [f.action for f in result.files] == ["replaced"]
    assert [r[0] for r in _erasure(conn)] == ["R9"]


def test_accounting_mismatch_rolls_the_file_back(conn, landing, quarantine_dir, monkeypatch) -> None:
    write_file(landing, "erasure_requests/a.csv", HEADER + "R1,a@example.com,,,2025-01-01T00:00:00Z\n")
    original = loader._FileLoad.commit

    def miscount(self, **counts):
        counts["rows_read"] += 1
        return original(self, **counts)

    monkeypatch.setattr(loader._FileLoad, "commit", miscount)
    with pytest.raises(AccountingError, match="rows_read 2 != rows_loaded 1"):
        load_source(conn, "erasure_requests", landing, quarantine_dir)
    assert conn.execute("SELECT count(*) FROM raw.erasure_requests").fetchall() == [(0,)]
    assert manifest(conn) == []


def test_killed_process_leaves_no_half_loaded_file(tmp_path: Path, landing, quarantine_dir) -> None:
    """A real process killed inside the file's transaction: the warehouse file has nothing of it."""
    import subprocess
    import sys
    import textwrap

    database = tmp_path / "w.duckdb"
    write_file(landing, "erasure_requests/a.csv", HEADER + "R1,a@example.com,,,2025-01-01T00:00:00Z\n")
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        import duckdb
        from cx_pipeline.ingestion import loader
        original = loader._FileLoad.commit
        def die(self, **counts):
            os._exit(9)  # like SIGKILL: no rollback, no cleanup
        loader._FileLoad.commit = die
        conn = duckdb.connect({str(database)!r})
        loader.load_source(conn, "erasure_requests", Path({str(landing)!r}), Path({str(quarantine_dir)!r}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    completed = subprocess.run([sys.executable, "-c", script], env=env, check=False)
    assert completed.returncode == 9
    with duckdb.connect(str(database)) as reopened:
        assert reopened.execute("SELECT count(*) FROM raw.erasure_requests").fetchall() == [(0,)]
        assert reopened.execute("SELECT count(*) FROM raw.loaded_files").fetchall() == [(0,)]
    with connect(database) as again:
        result = load_source(again, "erasure_requests", landing, quarantine_dir)
        assert [f.action for f in result.files] == ["new"]


def test_schema_mismatch_is_reported(conn) -> None:
    conn.execute("CREATE SCHEMA raw")
    conn.execute("CREATE TABLE raw.erasure_requests (request_id VARCHAR)")
    with pytest.raises(SchemaMismatchError, match=r"raw\.erasure_requests has columns"):
        ensure_raw_schema(conn, ["erasure_requests"])


def test_raw_tables_have_exactly_the_contract_columns(conn) -> None:
    from cx_pipeline.contracts import raw_table_columns

    ensure_raw_schema(conn)
    for source in SOURCE_NAMES:
        found = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw' AND table_name = ? ORDER BY ordinal_position",
            [source],
        ).fetchall()
        expected = [
            (name, {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}.get(type_, type_))
            for name, type_ in raw_table_columns(source).items()
        ]
        assert found == expected
