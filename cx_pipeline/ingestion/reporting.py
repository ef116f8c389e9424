"""What a load run reports: table counts, a row preview, per-file summaries and the failure message."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from cx_pipeline.contracts import CONTRACTS, personal_columns, raw_table_columns
from cx_pipeline.ingestion.loader import FIX_HINT, SourceLoadResult
from cx_pipeline.ingestion.sql import raw_table
from cx_pipeline.sql import Sql, compose, join, plain_identifier, quote_literal

PREVIEW_ROWS = 5
# What a preview shows instead of a personal value.
MASK = "***"
_CELL_CHARS = 48


@dataclass(frozen=True)
class TableCounts:
    rows: int
    duplicates: int
    files: int


def table_counts(conn: duckdb.DuckDBPyConnection, source: str) -> TableCounts:
    rows = conn.execute(
        compose(
            "SELECT count(*), count(*) FILTER (WHERE _is_duplicate), count(DISTINCT _source_file) "
            "FROM {table}",
            table=raw_table(source),
        )
    ).fetchall()[0]
    return TableCounts(rows=int(rows[0]), duplicates=int(rows[1]), files=int(rows[2]))


def preview_rows(
    conn: duckdb.DuckDBPyConnection, source: str, file_path: str | None = None, limit: int = PREVIEW_ROWS
) -> tuple[list[str], list[tuple]]:
    """A few rows of ``raw.<source>`` (of ``file_path`` if given), in line order, personal columns masked.

    The preview goes into Dagster's run history, which erasure cannot reach: a personal column
    (``contracts.personal_columns``) shows ``MASK`` where it holds a value and stays empty where it is
    empty, so the preview still tells which fields a file fills. The values are masked in SQL and never
    reach Python.
    """
    columns = list(raw_table_columns(source))
    personal = personal_columns(source)
    selected = join(
        compose(
            "CASE WHEN {column} IS NULL THEN NULL ELSE {mask} END",
            column=plain_identifier(column),
            mask=quote_literal(MASK),
        )
        if column in personal
        else plain_identifier(column)
        for column in columns
    )
    where = Sql("WHERE _source_file = ?") if file_path else Sql("")
    params: list[Any] = [file_path] if file_path else []
    rows = conn.execute(
        compose(
            "SELECT {selected} FROM {table} {where} ORDER BY _source_line LIMIT ?",
            selected=selected,
            table=raw_table(source),
            where=where,
        ),
        [*params, int(limit)],
    ).fetchall()
    return columns, rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 1] + "…"


def markdown_table(columns: list[str], rows: list[tuple] | list[list]) -> str:
    """A GitHub-flavoured markdown table; cells are escaped and shortened."""
    head = "| " + " | ".join(_cell(c) for c in columns) + " |"
    rule = "|" + "|".join(" --- " for _ in columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def files_markdown(result: SourceLoadResult) -> str:
    """Per-file outcome of a run (skipped files are summarised, not listed)."""
    columns = ["file", "action", "status", "read", "loaded", "quarantined", "duplicates", "note"]
    rows = [
        (
            f.file_path,
            f.action,
            f.status,
            f.rows_read,
            f.rows_loaded,
            f.rows_quarantined,
            f.rows_duplicate,
            f.reason or "",
        )
        for f in result.files
        if f.action != "skipped" or f.status == "rejected"
    ]
    if not rows:
        return f"No new or changed files ({len(result.skipped)} already loaded)."
    text = markdown_table(columns, rows)
    if result.skipped:
        text += f"\n\n{len(result.skipped)} unchanged file(s) skipped."
    return text


def failure_message(result: SourceLoadResult) -> str:
    """Why the asset fails: the files rejected in this run, the reason and how to fix it."""
    lines = [
        f"{len(result.rejected)} landing file(s) of {result.source} could not be read and were rejected "
        "(their content is in raw.quarantine; see raw.loaded_files):"
    ]
    lines += [f"- {f.file_path}: {f.reason}" for f in result.rejected]
    lines.append(FIX_HINT)
    lines.append(
        f"The other {result.source} files were loaded ({result.rows_loaded} rows this run); "
        "other sources are not affected."
    )
    return "\n".join(lines)


def source_description(source: str) -> str:
    contract = CONTRACTS[source]
    return (
        f"{contract.description} Loaded from landing/{source}/*.{contract.format} into raw.{source}; "
        f"record key {', '.join(contract.record_key)}. Invalid records go to raw.quarantine, every file "
        "version to raw.loaded_files. See docs/ingestion.md and docs/sources.md."
    )
