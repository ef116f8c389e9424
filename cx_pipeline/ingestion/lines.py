"""Read a landing file as numbered physical lines with DuckDB's CSV reader.

The file is read with one VARCHAR column, no quoting and NUL as delimiter, so every physical line becomes
one row holding its exact text (blank lines become NULL). Lines DuckDB cannot take (invalid UTF-8, a NUL
byte, longer than ``MAX_LINE_BYTES``) land in its ``store_rejects`` table with their line number and byte
offset. DuckDB's CSV reader has no row-number column, but a table created from a scan keeps the file order
(``preserve_insertion_order``), so accepted row ``k`` (0-based rowid) is physical line
``k + 1 + #{rejected lines that precede it}``; that count comes from an ASOF join against the few rejected
line numbers, without a window over the whole file.

The bytes of a rejected line are read back from the file at DuckDB's byte offset so the quarantine keeps the
original text (undecodable bytes written as ``\\xNN``).

DuckDB's strict CSV state machine refuses a whole file whose line endings are mixed (a CRLF line in an LF
file, a bare CR inside a line). Such files are read by a fallback that splits the bytes on LF with Arrow
compute (vectorized, 64 MiB at a time), strips one trailing CR per line and decodes in DuckDB: slower, but
it keeps the same line semantics, so one stray CR does not reject a whole file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cx_pipeline.ingestion.sql import scalar
from cx_pipeline.sql import compose, join, qualified_name, quote_identifier, quote_literal

MAX_LINE_BYTES = 16 * 1024 * 1024
_FALLBACK_CHUNK_BYTES = 64 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"

READ_TABLE = "_cx_read"
_FALLBACK_TABLE = "_cx_read_bytes"
SHIFT_TABLE = "_cx_shift"
LINES_VIEW = "_cx_lines"
BAD_LINES_TABLE = "_cx_bad_lines"
_REJECTS_TABLE = "_cx_rejects"
_REJECT_SCANS_TABLE = "_cx_reject_scans"
_READ, _FALLBACK, _SHIFT = (
    quote_identifier(READ_TABLE),
    quote_identifier(_FALLBACK_TABLE),
    quote_identifier(SHIFT_TABLE),
)
_LINES, _BAD_LINES, _REJECTS = (
    quote_identifier(LINES_VIEW),
    quote_identifier(BAD_LINES_TABLE),
    quote_identifier(_REJECTS_TABLE),
)


@dataclass(frozen=True)
class BadLine:
    line: int
    raw_record: str
    error_type: str
    reason: str


@dataclass(frozen=True)
class PhysicalLines:
    """Result of ``read_physical_lines``: temp view ``_cx_lines(n, line)`` and table ``_cx_bad_lines``."""

    accepted: int  # rows in the view
    bad_lines: tuple[BadLine, ...]
    reader: str = "duckdb"  # 'duckdb' (read_csv) or 'fallback' (mixed line endings)

    @property
    def total(self) -> int:
        return self.accepted + len(self.bad_lines)


class UnreadableFileError(RuntimeError):
    """DuckDB could not read the file as lines at all."""


def drop_line_tables(conn: duckdb.DuckDBPyConnection) -> None:
    tables = (READ_TABLE, _FALLBACK_TABLE, SHIFT_TABLE, BAD_LINES_TABLE, _REJECTS_TABLE, _REJECT_SCANS_TABLE)
    conn.execute(
        compose(
            "DROP VIEW IF EXISTS {view}; {tables}",
            view=qualified_name("temp", LINES_VIEW),
            tables=join(
                (
                    compose("DROP TABLE IF EXISTS {table};", table=qualified_name("temp", name))
                    for name in tables
                ),
                " ",
            ),
        )
    )


def _line_bytes(handle, offset: int) -> bytes:
    """The line DuckDB reported at 1-based ``offset``. After blank lines DuckDB's offset points at their
    line breaks; a rejected line is never blank, so leading line breaks are skipped."""
    handle.seek(max(offset - 1, 0))
    data = handle.readline(MAX_LINE_BYTES + 2)
    while data in (b"\n", b"\r\n", b"\r"):
        data = handle.readline(MAX_LINE_BYTES + 2)
    return data.rstrip(b"\r\n")


def _describe_bad_line(data: bytes, duckdb_error: str) -> tuple[str, str]:
    """(error_type, reason) for a line DuckDB rejected while reading lines."""
    if b"\x00" in data:
        position = data.index(b"\x00") + 1
        return "nul_byte", f"line contains a NUL byte at position {position}"
    if "LINE SIZE" in duckdb_error:
        return "line_too_long", f"line is longer than {MAX_LINE_BYTES} bytes"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = data[error.start]
        return "invalid_encoding", (
            f"line is not valid UTF-8 (byte 0x{byte:02x} at position {error.start + 1}); "
            "landing files must be UTF-8"
        )
    return "unreadable_line", f"DuckDB could not read the line ({duckdb_error.lower()})"


def _store_bad_lines(conn: duckdb.DuckDBPyConnection, bad: list[BadLine]) -> None:
    conn.execute(
        compose(
            "CREATE TEMP TABLE {bad_lines} "
            "(n BIGINT, raw_record VARCHAR, error_type VARCHAR, reason VARCHAR)",
            bad_lines=_BAD_LINES,
        )
    )
    if not bad:
        return
    frame = pa.table(
        {
            "n": pa.array([b.line for b in bad], pa.int64()),
            "raw_record": [b.raw_record for b in bad],
            "error_type": [b.error_type for b in bad],
            "reason": [b.reason for b in bad],
        }
    )
    conn.register("_cx_bad_lines_frame", frame)
    try:
        conn.execute(
            compose("INSERT INTO {bad_lines} SELECT * FROM _cx_bad_lines_frame", bad_lines=_BAD_LINES)
        )
    finally:
        conn.unregister("_cx_bad_lines_frame")


def _bad_line(line_no: int, data: bytes, duckdb_error: str) -> BadLine:
    error_type, reason = _describe_bad_line(data, duckdb_error)
    text = data.decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")
    return BadLine(line_no, text, error_type, reason)


def glob_escape(path: str) -> str:
    """DuckDB's readers expand ``*``, ``?`` and ``[...]`` in file names: ``export[1].csv`` would read
    ``export1.csv``. Each special character is wrapped in brackets to stand for itself."""
    return "".join(f"[{char}]" if char in "[*?" else char for char in path)


def _read_with_duckdb(conn: duckdb.DuckDBPyConnection, path: Path) -> PhysicalLines:
    conn.execute(
        compose(
            """
            CREATE TEMP TABLE {read} AS
            SELECT line FROM read_csv(
                ?, columns = {{'line': 'VARCHAR'}}, header = false, auto_detect = false,
                delim = chr(0), quote = '', escape = '', encoding = 'utf-8',
                store_rejects = true, rejects_table = {rejects_table},
                rejects_scan = {reject_scans_table}, max_line_size = {max_line_size}
            )
            """,
            read=_READ,
            rejects_table=quote_literal(_REJECTS_TABLE),
            reject_scans_table=quote_literal(_REJECT_SCANS_TABLE),
            max_line_size=MAX_LINE_BYTES,
        ),
        [glob_escape(str(path))],
    )
    rejected = conn.execute(
        compose(
            """
            SELECT line, min(line_byte_position) AS offset_1_based, string_agg(DISTINCT error_type, ', ')
            FROM {rejects} GROUP BY line ORDER BY line
            """,
            rejects=_REJECTS,
        )
    ).fetchall()
    bad: list[BadLine] = []
    with path.open("rb") as handle:
        for line_no, offset, error in rejected:
            bad.append(_bad_line(int(line_no), _line_bytes(handle, int(offset)), error or ""))
    _store_bad_lines(conn, bad)
    if bad:
        # g = accepted lines before the j-th rejected line; accepted row k sits after every rejected
        # line with g <= k.
        conn.execute(
            compose(
                """
                CREATE TEMP TABLE {shift} AS
                SELECT g, max(j) AS shift FROM (
                    SELECT n - row_number() OVER (ORDER BY n) AS g, row_number() OVER (ORDER BY n) AS j
                    FROM {bad_lines}
                ) GROUP BY g
                """,
                shift=_SHIFT,
                bad_lines=_BAD_LINES,
            )
        )
        conn.execute(
            compose(
                """
                CREATE TEMP VIEW {lines} AS
                SELECT r.k + 1 + coalesce(s.shift, 0) AS n, r.line
                FROM (SELECT rowid AS k, line FROM {read}) AS r
                ASOF LEFT JOIN {shift} AS s ON r.k >= s.g
                """,
                lines=_LINES,
                read=_READ,
                shift=_SHIFT,
            )
        )
    else:
        conn.execute(
            compose(
                "CREATE TEMP VIEW {lines} AS SELECT rowid + 1 AS n, line FROM {read}",
                lines=_LINES,
                read=_READ,
            )
        )
    accepted = scalar(conn, compose("SELECT count(*) FROM {read}", read=_READ))
    return PhysicalLines(accepted=int(accepted), bad_lines=tuple(bad))


def _split_chunks(path: Path):
    """Yield (first line number, Arrow binary array of lines) for the file split on LF."""
    next_line = 1
    carry = b""
    first = True
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(_FALLBACK_CHUNK_BYTES)
            if first:
                chunk = chunk.removeprefix(_BOM)
                first = False
            if not chunk:
                break
            data = carry + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            body, carry = data[:cut], data[cut + 1 :]
            lines = pc.split_pattern(pa.array([body], pa.binary()), b"\n").flatten()
            yield next_line, lines
            next_line += len(lines)
    if carry:
        yield next_line, pa.array([carry], pa.binary())


def _read_with_arrow(conn: duckdb.DuckDBPyConnection, path: Path) -> PhysicalLines:
    """The fallback for files DuckDB's CSV reader refuses (mixed line endings)."""
    conn.execute(compose("CREATE TEMP TABLE {fallback} (n BIGINT, data BLOB)", fallback=_FALLBACK))
    for first_line, lines in _split_chunks(path):
        numbers = pa.array(np.arange(first_line, first_line + len(lines), dtype=np.int64))
        conn.register("_cx_chunk", pa.table({"n": numbers, "data": lines}))
        try:
            conn.execute(compose("INSERT INTO {fallback} SELECT n, data FROM _cx_chunk", fallback=_FALLBACK))
        finally:
            conn.unregister("_cx_chunk")
    # One trailing CR per line is the CRLF line ending; a NUL byte is refused as by the fast path.
    conn.execute(
        compose(
            """
            CREATE TEMP TABLE {read} AS
            SELECT n, data, CASE WHEN octet_length(data) = 0 THEN '' ELSE try(decode(data)) END AS text
            FROM {fallback}
            """,
            read=_READ,
            fallback=_FALLBACK,
        )
    )
    conn.execute(compose("DROP TABLE {fallback}", fallback=qualified_name("temp", _FALLBACK_TABLE)))
    bad_rows = conn.execute(
        compose(
            "SELECT n, data FROM {read} WHERE text IS NULL OR strpos(text, chr(0)) > 0 ORDER BY n", read=_READ
        )
    ).fetchall()
    bad = [_bad_line(int(n), bytes(data).removesuffix(b"\r"), "") for n, data in bad_rows]
    _store_bad_lines(conn, bad)
    conn.execute(
        compose(
            """
            CREATE TEMP VIEW {lines} AS
            SELECT n, CASE WHEN text = '' OR text = chr(13) THEN NULL
                           WHEN suffix(text, chr(13)) THEN text[:-2] ELSE text END AS line
            FROM {read} WHERE text IS NOT NULL AND strpos(text, chr(0)) = 0
            """,
            lines=_LINES,
            read=_READ,
        )
    )
    accepted = scalar(conn, compose("SELECT count(*) FROM {lines}", lines=_LINES))
    return PhysicalLines(accepted=int(accepted), bad_lines=tuple(bad), reader="fallback")


def read_physical_lines(conn: duckdb.DuckDBPyConnection, path: Path) -> PhysicalLines:
    """Read ``path`` into temp view ``_cx_lines(n BIGINT, line VARCHAR)`` and temp table ``_cx_bad_lines``.

    ``n`` is the 1-based physical line number. Every physical line of the file is in exactly one of the
    two. Raises ``UnreadableFileError`` if neither DuckDB's reader nor the fallback can scan the file.
    """
    drop_line_tables(conn)
    try:
        return _read_with_duckdb(conn, path)
    except duckdb.Error as duckdb_error:
        drop_line_tables(conn)
        try:
            return _read_with_arrow(conn, path)
        except (duckdb.Error, OSError, pa.ArrowException) as error:
            drop_line_tables(conn)
            raise UnreadableFileError(
                "the file could not be read as text lines "
                f"({_first_line(duckdb_error)}; fallback: {_first_line(error)})"
            ) from error


def _first_line(error: BaseException) -> str:
    """An error's first line: DuckDB's CSV errors quote the offending line on the lines after it, and a
    file's reason must not carry its content (it reaches the run history and raw.loaded_files)."""
    return str(error).strip().split("\n", 1)[0]
