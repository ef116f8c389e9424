"""Shared helpers for the ingestion, checks and automation tests.

Import what you need; fixtures are imported by their ``*_fixture`` names (with ``# noqa: F401``) and used
under their short names (``conn``, ``landing``, ``quarantine_dir``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.contracts import CONTRACTS
from cx_pipeline.ingestion.loader import SourceLoadResult, load_source
from cx_pipeline.ingestion.sql import configure_connection
from cx_pipeline.sql import Sql, compose

FIXTURES = Path(__file__).parent / "fixtures"
GOOD_LANDING = FIXTURES / "ingestion" / "landing_good"
BAD_LANDING = FIXTURES / "landing_bad"


def connect(path: Path | str = ":memory:") -> duckdb.DuckDBPyConnection:
    return configure_connection(duckdb.connect(str(path)))


def copy_landing(source_root: Path, target_root: Path, sources: list[str] | None = None) -> Path:
    """Copy a fixture landing tree (or some of its source folders) to ``target_root``."""
    target_root.mkdir(parents=True, exist_ok=True)
    for folder in sorted(source_root.iterdir()):
        if folder.is_dir() and (sources is None or folder.name in sources):
            shutil.copytree(folder, target_root / folder.name, dirs_exist_ok=True)
    return target_root


def write_file(landing: Path, relative: str, content: str | bytes) -> Path:
    """Write a landing file; a new mtime is forced so the manifest's size+mtime shortcut never hides it."""
    path = landing / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    old_ns = path.stat().st_mtime_ns if existed else 0
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    if existed:
        stat = path.stat()
        if stat.st_mtime_ns <= old_ns:
            os.utime(path, ns=(stat.st_atime_ns, old_ns + 1_000_000))
    return path


def csv_text(source: str, rows: list[dict[str, str]], header: list[str] | None = None) -> str:
    """A CSV file of ``rows`` (dicts by field name) with the contract's columns as header."""
    import csv
    import io

    columns = header or list(CONTRACTS[source].field_names)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


def load(conn: duckdb.DuckDBPyConnection, source: str, landing: Path, quarantine: Path) -> SourceLoadResult:
    return load_source(conn, source, landing, quarantine)


def manifest(conn: duckdb.DuckDBPyConnection, source: str | None = None) -> list[dict]:
    where = Sql("WHERE source = ?") if source else Sql("")
    relation = conn.execute(
        compose("SELECT * FROM raw.loaded_files {where} ORDER BY loaded_at, file_path", where=where),
        [source] if source else [],
    )
    names = [d[0] for d in relation.description]
    return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]


def quarantine_rows(conn: duckdb.DuckDBPyConnection, source_file: str | None = None) -> list[dict]:
    where = Sql("WHERE source_file = ?") if source_file else Sql("")
    relation = conn.execute(
        compose("SELECT * FROM raw.quarantine {where} ORDER BY source_file, source_line", where=where),
        [source_file] if source_file else [],
    )
    names = [d[0] for d in relation.description]
    return [dict(zip(names, row, strict=True)) for row in relation.fetchall()]


# Fixtures are registered under their short names; tests import the *_fixture functions (noqa: F401).
@pytest.fixture(name="conn")
def conn_fixture() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = connect()
    yield connection
    connection.close()


@pytest.fixture(name="landing")
def landing_fixture(tmp_path: Path) -> Path:
    path = tmp_path / "landing"
    path.mkdir()
    return path


@pytest.fixture(name="quarantine_dir")
def quarantine_dir_fixture(tmp_path: Path) -> Path:
    return tmp_path / "quarantine"
