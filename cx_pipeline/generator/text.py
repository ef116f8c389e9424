"""Column-at-a-time string building: ids, timestamps, money, JSON and CSV lines.

Every helper takes whole numpy or Arrow columns. Fixed-layout strings (ids, timestamps) are written as
byte matrices and handed to Arrow without a copy per value; free-form strings are joined by Arrow kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

StrColumn = pa.Array | pa.ChunkedArray
Piece = StrColumn | str

_ZERO = ord("0")
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
# Multiplier for `scramble`: a prime that shares no factor with powers of ten.
_SCRAMBLE_MULTIPLIER = 7_368_787


def strings_from_chars(
    chars: np.ndarray, lengths: np.ndarray | None = None, valid: np.ndarray | None = None
) -> pa.StringArray:
    """Rows of an (n, width) uint8 matrix as strings, each cut to its length (default: full width)."""
    count, width = chars.shape
    if lengths is None:
        data = np.ascontiguousarray(chars).reshape(-1)
        offsets = np.arange(0, (count + 1) * width, width, dtype=np.int64)
    else:
        lengths = np.asarray(lengths, dtype=np.int64)
        data = chars[np.arange(width) < lengths[:, None]]
        offsets = np.zeros(count + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
    bitmap = None
    if valid is not None:
        bitmap = pa.py_buffer(np.packbits(np.asarray(valid, dtype=bool), bitorder="little"))
    if offsets[-1] >= 2**31:
        raise ValueError("string column too large for one Arrow array; use smaller chunks")
    return pa.StringArray.from_buffers(
        count, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data), bitmap
    )


_DIGIT_PAIRS = np.array([[_ZERO + i // 10, _ZERO + i % 10] for i in range(100)], dtype=np.uint8)


def two_digit_chars(values: np.ndarray) -> np.ndarray:
    """Zero-padded two-digit numbers (0..99) as an (n, 2) uint8 matrix, by table lookup."""
    return _DIGIT_PAIRS[values]


def digit_chars(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as an (n, width) uint8 matrix."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(values, dtype=np.int64)[:, None] // powers) % 10 + _ZERO).astype(np.uint8)


def prefixed_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.StringArray:
    """`prefix` + zero-padded number, e.g. ``prefixed_ids("P", [1], 7) -> ["P0000001"]``."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    chars = np.empty((len(numbers), len(head) + width), dtype=np.uint8)
    chars[:, : len(head)] = head
    chars[:, len(head) :] = digit_chars(numbers, width)
    return strings_from_chars(chars)


def hex_ids(rng: np.random.Generator, count: int, prefix: str = "", hex_digits: int = 16) -> pa.StringArray:
    """Random lower-case hex ids (collisions are negligible at 64 bits and more)."""
    raw = rng.integers(0, 256, size=(count, (hex_digits + 1) // 2), dtype=np.uint8)
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    chars = np.empty((count, len(head) + hex_digits), dtype=np.uint8)
    chars[:, : len(head)] = head
    hex_pairs = np.empty((count, raw.shape[1] * 2), dtype=np.uint8)
    hex_pairs[:, 0::2] = _HEX[raw >> 4]
    hex_pairs[:, 1::2] = _HEX[raw & 15]
    chars[:, len(head) :] = hex_pairs[:, :hex_digits]
    return strings_from_chars(chars)


def uuid4_strings(rng: np.random.Generator, count: int) -> pa.StringArray:
    """Random RFC 4122 version-4 UUIDs, as Segment and most backends mint them."""
    return strings_from_chars(uuid4_chars(rng, count))


def uuid4_chars(rng: np.random.Generator, count: int) -> np.ndarray:
    """Random version-4 UUIDs as an (n, 36) uint8 matrix (rows can be picked before making strings)."""
    raw = rng.integers(0, 256, size=(count, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hex_chars = np.empty((count, 32), dtype=np.uint8)
    hex_chars[:, 0::2] = _HEX[raw >> 4]
    hex_chars[:, 1::2] = _HEX[raw & 15]
    chars = np.full((count, 36), ord("-"), dtype=np.uint8)
    for start, stop, target in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        chars[:, target : target + stop - start] = hex_chars[:, start:stop]
    return chars


def scramble(counter: np.ndarray, modulus: int, salt: int) -> np.ndarray:
    """A bijection of [0, modulus): sequential counters become unique ids that do not look sequential."""
    if math.gcd(_SCRAMBLE_MULTIPLIER, modulus) != 1:
        raise ValueError(f"modulus {modulus} shares a factor with the scramble multiplier")
    # Mix the salt so that small seeds do not show up as small offsets (U00000042 for the first person).
    offset = (salt * 2_654_435_761 + 1_013_904_223) % modulus
    return (np.asarray(counter, dtype=np.int64) * _SCRAMBLE_MULTIPLIER + offset) % modulus


def integer_strings(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Integers as decimal text; rows where ``valid`` is false become null."""
    array = pa.array(np.asarray(values, dtype=np.int64), mask=None if valid is None else ~valid)
    return pc.cast(array, pa.string())


def money_strings(cents: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Amounts in cents as ``12.30`` (always two decimals, never binary-float noise)."""
    cents = np.asarray(cents, dtype=np.int64)
    units = integer_strings(np.abs(cents) // 100)
    hundredths = pc.utf8_lpad(integer_strings(np.abs(cents) % 100), 2, "0")
    sign = pa.array(np.where(cents < 0, "-", ""))
    text = pc.binary_join_element_wise(sign, units, ".", hundredths, "")
    if valid is not None:
        text = pc.if_else(pa.array(valid), text, pa.scalar(None, pa.string()))
    return text


def nulls(count: int) -> pa.Array:
    return pa.nulls(count, pa.string())


def constant(value: str, count: int) -> pa.Array:
    """The same string in every row (``pa.repeat`` would import pandas)."""
    return pa.array([value], pa.string()).take(pa.array(np.zeros(count, dtype=np.int64)))


def lookup(values: Sequence[str | None] | pa.Array, index: np.ndarray) -> pa.Array:
    """``values[index]`` per row; a negative index gives null."""
    index = np.asarray(index, dtype=np.int64)
    table = values if isinstance(values, pa.Array) else pa.array(list(values), pa.string())
    return pc.take(table, pa.array(np.maximum(index, 0), mask=index < 0))


def scatter(values: StrColumn, mask: np.ndarray) -> pa.Array:
    """A column as long as ``mask`` holding ``values`` (one per true row, in order) and null elsewhere."""
    mask = np.asarray(mask, dtype=bool)
    positions = np.cumsum(mask) - 1
    return pc.take(values, pa.array(np.where(mask, positions, 0), mask=~mask))


def where(mask: np.ndarray, when_true: Piece, when_false: Piece | None = None) -> pa.Array:
    """Row-wise choice; ``when_false=None`` gives null."""
    fallback = pa.scalar(None, pa.string()) if when_false is None else when_false
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), when_true, fallback)


def choose(selector: np.ndarray, options: Sequence[Piece]) -> pa.Array:
    """Row i takes ``options[selector[i]][i]`` (scalars broadcast)."""
    count = len(selector)
    columns = [constant(o, count) if isinstance(o, str) else o for o in options]
    return pc.choose(pa.array(np.asarray(selector, dtype=np.int8)), *columns)


def concat(*pieces: Piece) -> pa.Array:
    """Row-wise concatenation; a null piece makes the row null."""
    return pc.binary_join_element_wise(*pieces, "")


# --- timestamps -------------------------------------------------------------------------------------------


def civil_dates(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Year, month, day of days since 1970-01-01 (proleptic Gregorian).

    Generated instants span a few hundred days: the dates of that span are computed once and looked up.
    """
    days = np.asarray(days, dtype=np.int64)
    if len(days) < 1000:
        return _civil_dates(days)
    first = int(days.min())
    year, month, day = _civil_dates(np.arange(first, int(days.max()) + 1))
    offset = days - first
    return year[offset], month[offset], day[offset]


def _civil_dates(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """H. Hinnant's days-from-civil inverse, on whole columns."""
    shifted = days + 719_468
    era = np.floor_divide(shifted, 146_097)
    day_of_era = shifted - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    month_index = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * month_index + 2) // 5 + 1
    month = np.where(month_index < 10, month_index + 3, month_index - 9)
    year = year_of_era + era * 400 + (month <= 2)
    return year, month, day


def timestamp_strings(
    epoch_ms: np.ndarray, offset_minutes: np.ndarray, use_offset: np.ndarray, space_separator: np.ndarray
) -> pa.StringArray:
    """ISO-8601 text for instants, in the mixed forms real exports have.

    ``use_offset`` rows are written in local time with their ``+hh:mm`` offset, the others in UTC with
    ``Z``; ``space_separator`` rows use a space instead of ``T``. Milliseconds are written only when the
    instant has them, so no form ever changes the instant.
    """
    epoch_ms = np.asarray(epoch_ms, dtype=np.int64)
    count = len(epoch_ms)
    offsets = np.where(use_offset, offset_minutes, 0).astype(np.int64)
    local_ms = epoch_ms + offsets * 60_000
    days = np.floor_divide(local_ms, 86_400_000)
    ms_of_day = local_ms - days * 86_400_000
    year, month, day = civil_dates(days)
    chars = np.zeros((count, 29), dtype=np.uint8)
    chars[:, 0:2] = two_digit_chars(year // 100)
    chars[:, 2:4] = two_digit_chars(year % 100)
    chars[:, 4] = ord("-")
    chars[:, 5:7] = two_digit_chars(month)
    chars[:, 7] = ord("-")
    chars[:, 8:10] = two_digit_chars(day)
    chars[:, 10] = np.where(space_separator, ord(" "), ord("T"))
    seconds_of_day = ms_of_day // 1000
    chars[:, 11:13] = two_digit_chars(seconds_of_day // 3600)
    chars[:, 13] = ord(":")
    chars[:, 14:16] = two_digit_chars(seconds_of_day // 60 % 60)
    chars[:, 16] = ord(":")
    chars[:, 17:19] = two_digit_chars(seconds_of_day % 60)
    millis = ms_of_day % 1000
    has_millis = millis != 0
    chars[has_millis, 19] = ord(".")
    chars[has_millis, 20] = _ZERO + millis[has_millis] // 100
    chars[has_millis, 21:23] = two_digit_chars(millis[has_millis] % 100)
    zone_start = np.where(has_millis, 23, 19)
    lengths = zone_start + np.where(use_offset, 6, 1)
    zone = np.empty((count, 6), dtype=np.uint8)
    zone[:, 0] = np.where(offsets < 0, ord("-"), ord("+"))
    zone[:, 1:3] = two_digit_chars(np.abs(offsets) // 60)
    zone[:, 3] = ord(":")
    zone[:, 4:6] = two_digit_chars(np.abs(offsets) % 60)
    zone[~np.asarray(use_offset, dtype=bool), 0] = ord("Z")
    for start in (19, 23):
        rows = zone_start == start
        chars[rows, start : start + 6] = zone[rows]
    return strings_from_chars(chars, lengths)


def utc_timestamp_strings(epoch_ms: np.ndarray) -> pa.StringArray:
    """Canonical ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (the ground truth's form)."""
    epoch_ms = np.asarray(epoch_ms, dtype=np.int64)
    text = timestamp_strings(
        epoch_ms, np.zeros(len(epoch_ms)), np.zeros(len(epoch_ms), bool), np.zeros(len(epoch_ms), bool)
    )
    # Always three decimals in the truth, whatever the instant.
    whole = epoch_ms % 1000 == 0
    with_millis = pc.replace_substring_regex(text, "Z$", ".000Z")
    return pc.if_else(pa.array(whole), with_millis, text)


def period_names(days: np.ndarray, by_month: bool) -> pa.StringArray:
    """File period names of days since the epoch: ``YYYY-MM`` or ``YYYY-MM-DD``."""
    year, month, day = civil_dates(np.asarray(days, dtype=np.int64))
    width = 7 if by_month else 10
    chars = np.empty((len(days), width), dtype=np.uint8)
    chars[:, 0:4] = digit_chars(year, 4)
    chars[:, 4] = ord("-")
    chars[:, 5:7] = digit_chars(month, 2)
    if not by_month:
        chars[:, 7] = ord("-")
        chars[:, 8:10] = digit_chars(day, 2)
    return strings_from_chars(chars)


# --- JSON and CSV -----------------------------------------------------------------------------------------


def _needs(values: StrColumn, pattern: str) -> bool:
    return bool(pc.any(pc.match_substring_regex(values, pattern)).as_py())


def json_string(values: StrColumn, keep_null: bool = False) -> pa.Array:
    """JSON text of a string column: quoted and escaped; null as ``null`` (or kept null, to omit a member)."""
    if _needs(values, r'["\\]'):
        values = pc.replace_substring(values, "\\", "\\\\")
        values = pc.replace_substring(values, '"', '\\"')
    quoted = pc.binary_join_element_wise('"', values, '"', "")
    return quoted if keep_null else pc.fill_null(quoted, "null")


def json_raw(values: StrColumn) -> pa.Array:
    """JSON text of a column that already holds JSON values (numbers, objects); null as ``null``."""
    return pc.fill_null(values, "null")


def json_object(members: Sequence[tuple[str, Piece, bool]]) -> pa.Array:
    """JSON objects from ``(key, json_text, omit_when_null)`` members, in order.

    Values must already be JSON text (see ``json_string``); a Python string is a constant for every row. An
    omittable member whose value is null is left out of that row's object, as Segment leaves out an absent
    ``context.campaign``; the first member must not be omittable (it carries no leading comma).
    """
    pieces: list[Piece] = []
    for position, (key, value, omittable) in enumerate(members):
        head = f'"{key}":' if position == 0 else f',"{key}":'
        if isinstance(value, str):
            pieces.append(head + value)
        elif omittable:
            if position == 0:
                raise ValueError("the first member of a JSON object cannot be omittable")
            pieces.append(pc.fill_null(pc.binary_join_element_wise(head, value, ""), ""))
        else:
            pieces.extend([head, pc.fill_null(value, "null")])
    return pc.binary_join_element_wise("{", *pieces, "}", "")


def csv_field(values: StrColumn) -> pa.Array:
    """CSV text of a string column: quoted only when it holds a comma, quote or edge whitespace."""
    values = pc.fill_null(values, "")
    needs_quotes = pc.match_substring_regex(values, r'[,"\r\n]|^\s|\s$')
    if not pc.any(needs_quotes).as_py():
        return values
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(values, '"', '""'), '"', "")
    return pc.if_else(needs_quotes, quoted, values)


def csv_lines(columns: Sequence[StrColumn], plain: Sequence[bool] | None = None) -> pa.Array:
    """Newline-terminated CSV records from string columns (RFC 4180 quoting, nulls as empty fields).

    ``plain[i]`` says column i can never need quotes (numbers, timestamps): it is not scanned.
    """
    plain = plain or [False] * len(columns)
    fields = [pc.fill_null(c, "") if p else csv_field(c) for c, p in zip(columns, plain, strict=True)]
    return pc.binary_join_element_wise(*fields[:-1], pc.binary_join_element_wise(fields[-1], "\n", ""), ",")


def csv_header(names: Sequence[str]) -> bytes:
    return (",".join(names) + "\n").encode()
