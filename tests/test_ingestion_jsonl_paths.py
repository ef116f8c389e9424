"""The JSONL parse: every kind of line, good and bad, gets the verdict of the line-by-line rules.

``jsonl_values_sql`` takes a shortcut for lines that start with ``{`` (valid JSON there is an object, so
``json_type`` is not asked) and ``parsed_select_sql`` only builds messages for rows that break a rule.
``reference_verdict`` below states the rules once more in plain Python for one line; the test runs a file
mixing good lines with every kind of bad line through the SQL and compares each line's outcome with it.
"""

from __future__ import annotations

import json

import duckdb
import pytest
from ingestion_fixtures import conn_fixture  # noqa: F401

from cx_pipeline.contracts import CONTRACTS
from cx_pipeline.ingestion.parse import jsonl_values_sql, parsed_select_sql
from cx_pipeline.sql import Sql, compose

GOOD = {
    "type": "track",
    "messageId": "m-1",
    "anonymousId": "a-1",
    "userId": None,
    "timestamp": "2025-05-01T10:00:00Z",
    "event": "Product Viewed",
    "name": None,
    "properties": {"sku": "S1", "price": 1.5},
    "traits": None,
    "context": {"page": {"url": "https://x.example/p"}, "device": {"type": "mobile"}},
}


def _line(**changes) -> str:
    record = {**GOOD, **changes}
    return json.dumps({k: v for k, v in record.items() if v is not ...}, separators=(",", ":"))


# (line, expected error_type or None for a loaded row)
LINES: list[tuple[str | None, str | None]] = [
    (_line(), None),
    ("  " + _line(messageId="m-2"), None),  # leading spaces: not the '{' shortcut, still an object
    (_line(messageId="m-3").replace(",", ", "), None),  # spaces inside
    (_line(messageId="m-4", extra_field=1), None),  # kept in _extra
    (_line(messageId="m-5", userId=42), None),  # a number in a text field is kept as its JSON text
    (None, "blank_line"),
    ("   ", "blank_line"),
    ("{", "invalid_json"),
    ('{"type":"track"', "invalid_json"),
    (_line(messageId="m-6") + " trailing", "invalid_json"),
    ("{} {}", "invalid_json"),
    ("[1, 2]", "not_an_object"),
    ('"text"', "not_an_object"),
    ("42", "not_an_object"),
    ("null", "not_an_object"),
    ("true", "not_an_object"),
    ("{}", "missing_required"),
    (_line(messageId=...), "missing_required"),
    (_line(messageId="m-7", type="click"), "invalid_enum"),
    (_line(messageId="m-8", timestamp="31/12/2024"), "invalid_timestamp"),
    (_line(messageId="m-9", anonymousId=None), "no_identifier"),
    (_line(messageId="m-10", properties=[1]), "invalid_json_field"),
    (_line(messageId="m-11", context="page"), "invalid_json_field"),
    (_line(messageId=" ", type="click", timestamp="soon", anonymousId=None), "invalid_enum"),
]


def reference_verdict(line: str | None) -> tuple[str | None, str | None, str | None]:
    """(error_type, error_field, reason) of one web_events line, by the contract rules in Python."""
    if line is None or not line.strip():
        return "blank_line", None, "line is empty"
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return "invalid_json", None, "line is not valid JSON"
    if not isinstance(record, dict):
        kind = {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(record), "number")
        return "not_an_object", None, f"line is a JSON {kind}, expected an object"
    problems: list[tuple[str, str | None, str]] = []

    def blank(name: str) -> bool:
        value = record.get(name)
        return value is None or (isinstance(value, str) and not value.strip())

    for name in ("type", "messageId", "timestamp"):
        if blank(name):
            problems.append(("missing_required", name, f"{name} is missing"))
        if name == "timestamp" and not blank(name):
            value = record[name]
            if not (isinstance(value, str) and value[:4].isdigit() and "T" in value):
                problems.append(
                    ("invalid_timestamp", name, f"{name} is not an ISO-8601 timestamp ('{value}')")
                )
        if name == "type" and not blank(name) and record[name] not in ("page", "track", "identify"):
            problems.append(
                (
                    "invalid_enum",
                    name,
                    f"type has an unknown value '{record[name]}' (allowed: page, track, identify)",
                )
            )
    for name in ("properties", "traits", "context"):
        value = record.get(name)
        if value is not None and not isinstance(value, dict):
            kind = "array" if isinstance(value, list) else "string"
            problems.append(("invalid_json_field", name, f"{name} is not a JSON object ({kind})"))
    if blank("anonymousId") and blank("userId"):
        problems.append(("no_identifier", None, "no identifier: anonymousId and userId are both empty"))
    if not problems:
        return None, None, None
    # The SQL reports rules in contract field order; sort the Python findings the same way.
    order = [f.name for f in CONTRACTS["web_events"].fields]
    problems.sort(key=lambda p: order.index(p[1]) if p[1] else len(order))
    first = problems[0]
    return first[0], first[1], "; ".join(p[2] for p in problems)


def _parse(conn: duckdb.DuckDBPyConnection) -> dict[int, tuple]:
    conn.execute("CREATE OR REPLACE TEMP TABLE _t_lines (n BIGINT, line VARCHAR)")
    conn.executemany(
        "INSERT INTO _t_lines VALUES (?, ?)", [[i + 1, line] for i, (line, _) in enumerate(LINES)]
    )
    contract = CONTRACTS["web_events"]
    values, params = jsonl_values_sql(contract, Sql("SELECT * FROM _t_lines"))
    parsed = parsed_select_sql(contract, values)
    rows = conn.execute(
        compose(
            "SELECT _q_n, _q_error_type, _q_error_field, _q_reason, _q_raw_record, message_id, user_id, "
            "CAST(_extra AS VARCHAR), context_device_type FROM ({parsed}) ORDER BY _q_n",
            parsed=parsed,
        ),
        params,
    ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_expected_error_types_are_listed_right() -> None:
    for line, expected in LINES:
        assert reference_verdict(line)[0] == expected, line


@pytest.mark.parametrize("index", range(len(LINES)))
def test_sql_verdict_matches_the_reference(conn, index: int) -> None:
    parsed = _parse(conn)
    line, _ = LINES[index]
    error_type, error_field, reason, raw_record, *_ = parsed[index + 1]
    assert (error_type, error_field, reason) == reference_verdict(line)
    assert raw_record == (None if error_type is None else (line or ""))


def test_loaded_values(conn) -> None:
    parsed = _parse(conn)
    by_id = {row[4]: row for row in parsed.values() if row[0] is None}
    assert set(by_id) == {"m-1", "m-2", "m-3", "m-4", "m-5"}
    assert by_id["m-4"][6] == '{"extra_field":1}'
    assert all(by_id[m][6] is None for m in ("m-1", "m-2", "m-3", "m-5"))
    assert by_id["m-5"][5] == "42"
    assert all(row[7] == "mobile" for row in by_id.values())
