"""Audience exports: CSV + Parquet + manifest.json per audience, each folder replaced atomically.

Pure functions (no Dagster): the ``exports/marketing_audiences`` asset calls :func:`export_audience` for every
marketing audience; erasure calls :func:`scrub_export_dir` to take erased people out of exports already
written. Layout::

    <exports dir>/<audience>/<audience>.csv
    <exports dir>/<audience>/<audience>.parquet
    <exports dir>/<audience>/manifest.json

A new version is written to a hidden temp folder beside the old one, fsynced, then swapped in
(:func:`cx_pipeline.publish.staged_dir`): on Linux with
``renameat2(RENAME_EXCHANGE)`` (one atomic step: readers see the old or the new folder, never a missing or
half-written one), elsewhere with two renames. The old version is then deleted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from cx_pipeline.privacy.csv_export import write_csv_files
from cx_pipeline.privacy.file_scan import file_text, text_hits
from cx_pipeline.publish import is_temp_of_publish, staged_dir
from cx_pipeline.settings import exports_csv_bom
from cx_pipeline.sql import Sql, compose, plain_identifier, qualified_name, quote_literal

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
# The temp table an export's rows are copied into before they are written out.
_EXPORT_TABLE = plain_identifier("_cx360_export")


@dataclass(frozen=True)
class ExportResult:
    audience: str
    path: Path
    row_count: int
    manifest: dict[str, Any]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_stale_temp_dirs(exports_dir: Path) -> list[Path]:
    """Temp folders left by an interrupted export (they may hold personal data: delete them)."""
    removed = []
    if exports_dir.exists():
        for path in exports_dir.iterdir():
            if path.is_dir() and is_temp_of_publish(path):
                shutil.rmtree(path)
                removed.append(path)
    return removed


def _copy_query(connection: duckdb.DuckDBPyConnection, query: Sql, folder: Path, name: str) -> int:
    parquet_path = folder / f"{name}.parquet"
    connection.execute(
        compose("create or replace temp table {export} as {query}", export=_EXPORT_TABLE, query=query)
    )
    # The CSV is written for spreadsheets and messaging tools (no formulas, ISO 8601 UTC, lists as rows:
    # csv_export); the Parquet file keeps every value as it is.
    write_csv_files(connection, _EXPORT_TABLE, folder, name, bom=exports_csv_bom())
    # COPY cannot bind its target path: it is quoted as a literal.
    connection.execute(
        compose(
            "copy {export} to {path} (format parquet)",
            export=_EXPORT_TABLE,
            path=quote_literal(str(parquet_path)),
        )
    )
    rows = connection.execute(compose("select count(*) from {export}", export=_EXPORT_TABLE)).fetchall()[0][0]
    connection.execute(compose("drop table {export}", export=_EXPORT_TABLE))
    return rows


def _columns(connection: duckdb.DuckDBPyConnection, query: Sql) -> list[dict[str, str]]:
    described = connection.execute(compose("describe {query}", query=query)).fetchall()
    return [{"name": row[0], "type": row[1]} for row in described]


def write_export(
    connection: duckdb.DuckDBPyConnection,
    query: Sql,
    target: Path,
    manifest: Mapping[str, Any],
    *,
    generated_at: datetime | None = None,
) -> ExportResult:
    """Write ``query``'s rows as ``<target>/<name>.csv|.parquet`` plus ``manifest.json``, then swap in."""
    name = target.name
    with staged_dir(target) as temp:
        rows = _copy_query(connection, query, temp, name)
        full_manifest = {
            "manifest_version": MANIFEST_VERSION,
            "audience": name,
            **manifest,
            "row_count": rows,
            "columns": _columns(connection, query),
            "generated_at": (generated_at or datetime.now(UTC)).isoformat(),
            "files": {
                path.name: {"bytes": path.stat().st_size, "sha256": _sha256(path)}
                for path in sorted(temp.iterdir())
            },
        }
        (temp / MANIFEST_NAME).write_text(json.dumps(full_manifest, indent=2, default=str) + "\n")
    return ExportResult(audience=name, path=target, row_count=rows, manifest=full_manifest)


def export_audience(
    connection: duckdb.DuckDBPyConnection,
    exports_dir: Path,
    audience: str,
    *,
    relation: str,
    manifest: Mapping[str, Any],
    generated_at: datetime | None = None,
) -> ExportResult:
    """Export ``relation`` (an allowlisted ``schema.table``) to ``<exports_dir>/<audience>/``."""
    parts = relation.split(".")
    if len(parts) != 2 or not all(part.replace("_", "").isalnum() for part in parts):
        raise ValueError(f"not a plain schema.table name: {relation!r}")
    return write_export(
        connection,
        compose("select * from {relation}", relation=qualified_name(*parts)),
        exports_dir / audience,
        manifest,
        generated_at=generated_at,
    )


def read_manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / MANIFEST_NAME).read_text())


def scrub_export_dir(folder: Path, needles: Mapping[str, str | None]) -> Counter:
    """Rewrite ``folder``'s export without the rows holding a needle; request id -> rows removed.

    Rows are matched like warehouse rows (personal columns as text, candidate tokens, keyed hashes). Files
    that are not a known export (no manifest or no Parquet file) are deleted whole if any text matches.
    """
    from cx_pipeline.privacy.scan import (
        TableRef,
        load_needles,
        register_scan_functions,
        scan_table,
    )

    removed: Counter = Counter()
    parquet = folder / f"{folder.name}.parquet"
    manifest_path = folder / MANIFEST_NAME
    if not parquet.exists() or not manifest_path.exists():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            hits = text_hits(file_text(path), needles)
            if hits:
                path.unlink()
                removed[sorted(v or "" for v in hits.values())[0]] += 1
        return removed
    connection = duckdb.connect()
    try:
        register_scan_functions(connection)
        load_needles(connection, needles)
        connection.execute("create schema scrub")
        connection.execute("create table scrub.export as select * from read_parquet(?)", [str(parquet)])
        table = TableRef("scrub", "export")
        matches = scan_table(connection, table)
        csv_path = folder / f"{folder.name}.csv"
        csv_hits = text_hits(file_text(csv_path), needles) if csv_path.exists() else {}
        if not matches and not csv_hits:
            return removed
        for request_id in matches.values():
            removed[request_id or ""] += 1
        if matches:
            connection.execute(
                "create temp table _ids as select unnest($ids) as rid", {"ids": sorted(matches)}
            )
            connection.execute("delete from scrub.export where rowid in (select rid from _ids)")
        manifest = read_manifest(folder)
        kept = {
            k: v
            for k, v in manifest.items()
            if k not in {"manifest_version", "audience", "row_count", "columns", "generated_at", "files"}
        }
        kept["scrubbed_at"] = datetime.now(UTC).isoformat()
        kept["scrubbed_rows"] = int(manifest.get("scrubbed_rows", 0)) + len(matches)
        write_export(
            connection,
            Sql("select * from scrub.export"),
            folder,
            kept,
            generated_at=datetime.fromisoformat(manifest["generated_at"])
            if "generated_at" in manifest
            else None,
        )
    finally:
        connection.close()
    return removed
