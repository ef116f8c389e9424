"""The CSV side of an audience export: what a marketer opens in a spreadsheet or loads into a messaging tool.

The Parquet file keeps every value as it is; the CSV is made safe and plain:

- **No formulas** (CSV formula injection, OWASP): a text cell starting with ``=``, ``+``, ``-``, ``@``, tab or
  carriage return is prefixed with ``'`` so spreadsheets show it as text instead of running it
  (``=HYPERLINK(...)``, ``+cmd|...``). Plain numbers and E.164 phones (``+14155550134``, ``-12.5``) are data,
  not formulas, and stay as they are, so destination tools still match on them.
- **No control characters**: NUL and the other C0 controls (an escaped ``\\u0000`` in a JSON delivery) are
  removed; tab, newline and carriage return inside a value are kept (the CSV quotes them).
- **One timestamp format**: ISO 8601 in UTC with a ``Z`` (``2026-10-01T09:30:00Z``), whatever the session's
  time zone; dates as ``YYYY-MM-DD``.
- **Lists as rows**: a column holding a JSON list of objects (an abandoned cart's items) is written to its
  own file ``<audience>__<column>.csv``, one row per item with the row's key (``customer_id``) and the
  item's position, instead of a JSON blob in a cell. A list of plain values (web user ids, device ids) is
  one cell, the values separated by ``; ``.
- UTF-8, with a byte-order mark when asked (``CX360_EXPORTS_CSV_BOM``: Excel on Windows needs it to read
  UTF-8 names correctly; tools that load CSV programmatically usually do not want it).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from cx_pipeline.sql import Sql, compose, quote_identifier

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Removed from text: the C0 controls but tab, newline and carriage return, and DEL.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A value that is a number or an E.164 phone: no spreadsheet runs it, and destinations match on it.
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
# The row key repeated on every item row of a list column (the first of these the export has).
_ROW_KEYS = ("customer_id", "customer_key")
BOM = "\ufeff"


def csv_text(value: str) -> str:
    """``value`` without control characters, and with a leading ``'`` if a spreadsheet would run it."""
    cleaned = _CONTROL_CHARACTERS.sub("", value)
    if cleaned.startswith(_FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(cleaned):
        return "'" + cleaned
    return cleaned


def csv_cell(value: Any) -> str:
    """One CSV cell: empty for null, ISO 8601 UTC for timestamps, safe text for everything else."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        text = moment.strftime("%Y-%m-%dT%H:%M:%S")
        if moment.microsecond:
            text += f".{moment.microsecond:06d}".rstrip("0")
        return text + "Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, str | int | float | Decimal) for item in value):
        # A list of ids or names: one cell, values separated by "; " (what spreadsheets and tools split on).
        return csv_text("; ".join(str(item) for item in value))
    if isinstance(value, list | dict):
        return csv_text(json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":")))
    return csv_text(str(value))


def _item_list(value: Any) -> list[dict[str, Any]] | None:
    """The items of a JSON list of objects (as text or parsed), else None."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return value
    return None


@dataclass(frozen=True)
class CsvFiles:
    """What :func:`write_csv_files` wrote: the main file, and one file per list column."""

    main: Path
    item_files: dict[str, Path]


def write_csv_files(
    connection: duckdb.DuckDBPyConnection,
    relation: Sql,
    folder: Path,
    name: str,
    *,
    bom: bool = False,
    batch_rows: int = 50_000,
) -> CsvFiles:
    """Write ``relation`` (the caller's temp table, quoted) as ``<folder>/<name>.csv``, plus item files."""
    described = connection.execute(compose("describe {relation}", relation=relation)).fetchall()
    columns = [row[0] for row in described]
    json_columns = [row[0] for row in described if row[1].upper() == "JSON"]
    list_columns = _list_columns(connection, relation, json_columns)
    key = next((column for column in _ROW_KEYS if column in columns), None)
    if list_columns and key is None:
        list_columns = []  # items without a key could not be joined back: keep them as JSON in the cell
    main_columns = [column for column in columns if column not in list_columns]
    rows = _rows(connection, relation, batch_rows)
    main_path = folder / f"{name}.csv"
    item_rows: dict[str, list[tuple[Any, int, dict[str, Any]]]] = {column: [] for column in list_columns}
    with main_path.open("w", encoding="utf-8", newline="") as handle:
        if bom:
            handle.write(BOM)
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([csv_text(column) for column in main_columns])
        for row in rows:
            record = dict(zip(columns, row, strict=True))
            writer.writerow([csv_cell(record[column]) for column in main_columns])
            for column in list_columns:
                for position, item in enumerate(_item_list(record[column]) or [], start=1):
                    item_rows[column].append((record[key], position, item))
    item_files = {
        column: _write_items(folder / f"{name}__{column}.csv", key or "", items, bom=bom)
        for column, items in item_rows.items()
    }
    return CsvFiles(main=main_path, item_files=item_files)


def _list_columns(
    connection: duckdb.DuckDBPyConnection, relation: Sql, json_columns: Sequence[str]
) -> list[str]:
    """JSON columns whose values are lists of objects (or null) in every row."""
    found = []
    for column in json_columns:
        other = connection.execute(
            compose(
                "select count(*) from {relation} "
                "where {column} is not null and coalesce(json_type({column}), '') <> 'ARRAY'",
                relation=relation,
                column=quote_identifier(column),
            )
        ).fetchall()[0][0]
        if not other:
            found.append(column)
    return found


def _rows(connection: duckdb.DuckDBPyConnection, relation: Sql, batch_rows: int) -> Iterator[tuple]:
    result = connection.execute(compose("select * from {relation}", relation=relation))
    while batch := result.fetchmany(batch_rows):
        yield from batch


def _write_items(
    path: Path, key: str, items: Iterable[tuple[Any, int, dict[str, Any]]], *, bom: bool
) -> Path:
    items = list(items)
    fields: list[str] = []
    for _, _, item in items:
        fields.extend(field for field in item if field not in fields)
    with path.open("w", encoding="utf-8", newline="") as handle:
        if bom:
            handle.write(BOM)
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow([csv_text(column) for column in (key, "item_position", *fields)])
        for row_key, position, item in items:
            writer.writerow([csv_cell(row_key), str(position), *(csv_cell(item.get(f)) for f in fields)])
    return path
