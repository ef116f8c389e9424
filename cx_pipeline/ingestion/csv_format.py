"""CSV specifics: the header (which decides whether a file is readable at all) and records whose quoted
fields span several physical lines."""

from __future__ import annotations

import csv
import io

import duckdb

from cx_pipeline.contracts import SourceContract
from cx_pipeline.ingestion.lines import LINES_VIEW
from cx_pipeline.ingestion.parse import CsvLayout
from cx_pipeline.sql import compose, qualified_name, quote_identifier

# A quoted field may hold line breaks (RFC 4180); a record is merged over at most this many lines.
MAX_RECORD_LINES = 100
SPANS_TABLE = "_cx_spans"
RECORDS_VIEW = "_cx_records"
_SPANS, _RECORDS, _LINES = (
    quote_identifier(SPANS_TABLE),
    quote_identifier(RECORDS_VIEW),
    quote_identifier(LINES_VIEW),
)


class FileRejectedError(Exception):
    """The file cannot be read as this source at all; ``reason`` says why and how to fix it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse_one_record(text: str) -> list[str] | None:
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=",", quotechar='"', strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def parse_header(header_line: str | None, contract: SourceContract) -> CsvLayout:
    """Map the header to the contract, or raise ``FileRejectedError``.

    Rejected: no header, undecodable or badly quoted header, duplicate names, required contract
    columns missing (which is also what a wrong delimiter looks like). Optional columns may be missing
    (they load as NULL); columns beyond the contract are kept in ``_extra``.
    """
    expected = ",".join(contract.field_names)
    if header_line is None or not header_line.strip():
        raise FileRejectedError(f"the first line (the header) is empty; expected a header like '{expected}'")
    names = _parse_one_record(header_line)
    if names is None:
        raise FileRejectedError("the header (line 1) is not a valid CSV line: check its quotes")
    names = [name.strip() for name in names]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FileRejectedError(f"the header repeats column(s) {', '.join(duplicates)}")
    missing = [name for name in contract.required_fields if name not in names]
    if missing:
        hint = ""
        for delimiter, label in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if len(names) == 1 and delimiter in header_line:
                hint = f" The header looks {label}-separated: cx360 reads comma-separated files only."
                break
        # The header is not echoed: a file without one has a data line there, and the reason reaches the
        # run history and raw.loaded_files, which erasure does not rewrite. Contract names are safe to name.
        recognised = [name for name in names if name in contract.field_names]
        raise FileRejectedError(
            f"the header lacks required column(s) {', '.join(missing)} (it has {len(names)} column(s), "
            f"known ones: {', '.join(recognised) or 'none'}; expected '{expected}').{hint}"
        )
    positions = {name: names.index(name) + 1 for name in contract.field_names if name in names}
    known = set(contract.field_names)
    extra = tuple((name, i + 1) for i, name in enumerate(names) if name not in known)
    return CsvLayout(header=tuple(names), positions=positions, extra=extra)


def merge_multiline_records(conn: duckdb.DuckDBPyConnection, layout: CsvLayout) -> tuple[str, int]:
    """Create temp view ``_cx_records(n, line)``: data lines, with quoted line breaks merged.

    A line with an odd number of double quotes opens (or closes) a quoted field spanning lines. Each such
    line is paired with the next one; the pair and the lines between become one record, numbered by its
    first line, when the joined text is exactly one CSV record with the header's column count. Otherwise
    the opening line stays alone (and is quarantined as bad quoting) and pairing resumes at the next odd
    line. Only the odd lines (rare) are looked at in Python. Returns (view name, merged spans).
    """
    drop_csv_tables(conn)
    odd = [
        row[0]
        for row in conn.execute(
            compose(
                """
                SELECT n FROM {lines}
                WHERE n >= 2 AND strpos(line, '"') > 0
                  AND (length(line) - length(replace(line, '"', ''))) % 2 = 1
                ORDER BY n
                """,
                lines=_LINES,
            )
        ).fetchall()
    ]
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(odd) - 1:
        start, end = odd[i], odd[i + 1]
        merged = None
        if end - start < MAX_RECORD_LINES:
            rows = conn.execute(
                compose(
                    "SELECT count(*), string_agg(coalesce(line, ''), chr(10) ORDER BY n) "
                    "FROM {lines} WHERE n BETWEEN ? AND ?",
                    lines=_LINES,
                ),
                [start, end],
            ).fetchall()
            count, text = rows[0]
            if count == end - start + 1:
                record = _parse_one_record(text)
                if record is not None and len(record) == layout.column_count:
                    merged = text
        if merged is None:
            i += 1
        else:
            spans.append((start, end, merged))
            i += 2
    if not spans:
        conn.execute(
            compose(
                "CREATE TEMP VIEW {records} AS SELECT n, line FROM {lines} WHERE n >= 2",
                records=_RECORDS,
                lines=_LINES,
            )
        )
        return RECORDS_VIEW, 0
    conn.execute(compose("CREATE TEMP TABLE {spans} (s BIGINT, e BIGINT, text VARCHAR)", spans=_SPANS))
    conn.executemany(compose("INSERT INTO {spans} VALUES (?, ?, ?)", spans=_SPANS), spans)
    conn.execute(
        compose(
            """
            CREATE TEMP VIEW {records} AS
            SELECT n, line FROM {lines} AS l
            WHERE n >= 2 AND NOT EXISTS (SELECT 1 FROM {spans} AS s WHERE l.n BETWEEN s.s AND s.e)
            UNION ALL
            SELECT s AS n, text AS line FROM {spans}
            """,
            records=_RECORDS,
            lines=_LINES,
            spans=_SPANS,
        )
    )
    return RECORDS_VIEW, len(spans)


def drop_csv_tables(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(
        compose(
            "DROP VIEW IF EXISTS {records}; DROP TABLE IF EXISTS {spans};",
            records=qualified_name("temp", RECORDS_VIEW),
            spans=qualified_name("temp", SPANS_TABLE),
        )
    )
