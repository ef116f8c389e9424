"""What the pipeline writes into Dagster's run history carries no personal value (docs/privacy.md).

Erasure cannot reach the Dagster instance's storage, so the raw previews mask personal columns, the GX
checks drop the unexpected values of personal columns, and a rejected file's reason never quotes its lines.
The whole-run proof (a Dagster run with an erasure, then every byte of DAGSTER_HOME searched) is
tests/test_privacy_dagster_history.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ingestion_fixtures import connect, csv_text, write_file

from cx_pipeline.contracts import CONTRACTS, PERSONAL_FIELDS, personal_columns, raw_table_columns
from cx_pipeline.ingestion.loader import load_source
from cx_pipeline.ingestion.quality import evaluate_checks
from cx_pipeline.ingestion.reporting import (
    MASK,
    failure_message,
    files_markdown,
    markdown_table,
    preview_rows,
)

EMAIL = "Ada.Lovelace@Example.org"
PHONE = "+44 20 7946 0958"
NAMES = ("Augusta", "Lovelace")
COMMENT = "Ada here, call me back on 020 7946 0958"
PAGE_URL = "https://shop.example/?utm_source=newsletter&email=ada.lovelace%40example.org"


def test_every_source_classifies_its_personal_fields() -> None:
    assert set(PERSONAL_FIELDS) == set(CONTRACTS)
    for source, contract in CONTRACTS.items():
        assert PERSONAL_FIELDS[source] <= set(contract.field_names), source
        # Whatever ties a record to a person is personal; record keys and enums are not (except a CRM contact
        # id, which names a person).
        assert set(contract.identifier_fields) <= PERSONAL_FIELDS[source], source
        for name in PERSONAL_FIELDS[source] - {"contact_id"}:
            assert name not in contract.record_key and contract.field(name).allowed is None, (source, name)
    # Free text counts as personal.
    assert {"comment"} <= PERSONAL_FIELDS["nps_responses"]
    assert {"subject"} <= PERSONAL_FIELDS["support_interactions"]
    assert {"context_page_url", "context_campaign_name", "_extra"} <= personal_columns("web_events")


def _load(tmp_path: Path, source: str, relative: str, content: str):
    tmp_path.mkdir(parents=True, exist_ok=True)
    conn = connect(tmp_path / "warehouse.duckdb")
    write_file(tmp_path / "landing", relative, content)
    return conn, load_source(conn, source, tmp_path / "landing", tmp_path / "quarantine")


def _assert_masked(source: str, columns: list[str], rows: list[tuple], text: str, secrets: list[str]) -> None:
    personal = personal_columns(source)
    assert rows
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            if column in personal:
                assert value in (None, MASK), (column, value)
    lowered = text.lower()
    assert not [secret for secret in secrets if secret.lower() in lowered]


def test_crm_preview_masks_names_emails_and_phones_but_keeps_the_rest(tmp_path: Path) -> None:
    row = {
        "contact_id": "C0000777",
        "email": EMAIL,
        "phone": PHONE,
        "first_name": NAMES[0],
        "last_name": NAMES[1],
        "company": "Analytical Engines Ltd",
        "city": "Marylebone",
        "country": "GB",
        "crm_lifecycle_stage": "customer",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-02T00:00:00Z",
    }
    conn, _ = _load(tmp_path, "crm_contacts", "crm_contacts/2026-01.csv", csv_text("crm_contacts", [row]))
    columns, rows = preview_rows(conn, "crm_contacts", "crm_contacts/2026-01.csv")
    text = markdown_table(columns, rows)
    _assert_masked(
        "crm_contacts", columns, rows, text, [EMAIL, PHONE, *NAMES, "C0000777", "Analytical", "Marylebone"]
    )
    values = dict(zip(columns, rows[0], strict=True))
    assert values["email"] == values["first_name"] == MASK
    # Non-personal columns stay readable: the preview still shows what the file delivers.
    assert values["country"] == "GB" and values["crm_lifecycle_stage"] == "customer"
    assert values["_source_file"] == "crm_contacts/2026-01.csv" and values["_source_line"] == 2
    assert "| customer |" in text


def test_previews_of_free_text_and_request_sources_are_masked(tmp_path: Path) -> None:
    nps = {
        "response_id": "R1",
        "email": EMAIL,
        "user_id": "u-ada",
        "score": "3",
        "comment": COMMENT,
        "touchpoint": "post_support",
        "channel": "email",
        "responded_at": "2026-01-01T00:00:00Z",
    }
    request = {"request_id": "ER-9", "email": EMAIL, "phone": PHONE, "user_id": "u-ada"}
    event = {
        "type": "identify",
        "messageId": "msg-1",
        "userId": "u-ada",
        "timestamp": "2026-01-01T00:00:00Z",
        "traits": {"email": EMAIL, "firstName": NAMES[0]},
        "context": {"page": {"url": PAGE_URL}, "campaign": {"name": "ada-lovelace-winback"}},
        "referrerEmail": EMAIL,  # beyond the contract: kept in _extra
    }
    conn = connect(tmp_path / "warehouse.duckdb")
    landing = tmp_path / "landing"
    write_file(landing, "nps_responses/2026-01.csv", csv_text("nps_responses", [nps]))
    write_file(
        landing,
        "erasure_requests/2026-01.csv",
        csv_text("erasure_requests", [{**request, "requested_at": "2026-01-01T00:00:00Z"}]),
    )
    write_file(landing, "web_events/2026-01.jsonl", json.dumps(event) + "\n")
    secrets = [EMAIL, "ada.lovelace", PHONE, "7946", "u-ada", NAMES[0], COMMENT[:10], "newsletter", "winback"]
    for source, relative in (
        ("nps_responses", "nps_responses/2026-01.csv"),
        ("erasure_requests", "erasure_requests/2026-01.csv"),
        ("web_events", "web_events/2026-01.jsonl"),
    ):
        result = load_source(conn, source, landing, tmp_path / "quarantine")
        assert result.rows_loaded == 1, source
        columns, rows = preview_rows(conn, source, relative)
        _assert_masked(source, columns, rows, markdown_table(columns, rows), secrets)
        assert len(columns) == len(raw_table_columns(source))
    columns, rows = preview_rows(conn, "erasure_requests")
    assert dict(zip(columns, rows[0], strict=True))["request_id"] == "ER-9"  # request ids may be logged


def test_gx_checks_never_report_values_of_personal_columns(tmp_path: Path) -> None:
    """A repeated CRM record key (contact id + updated_at) and an unknown channel: GX lists the unexpected
    values; the contact id is personal and must not reach the check's metadata or description."""
    base = {
        "contact_id": "C0000777",
        "email": EMAIL,
        "crm_lifecycle_stage": "customer",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-02T00:00:00Z",
    }
    conn, _ = _load(
        tmp_path, "crm_contacts", "crm_contacts/2026-01.csv", csv_text("crm_contacts", [base, base])
    )
    # The loader flags a repeated key within a file as duplicate; make both rows count as deliveries.
    conn.execute("UPDATE raw.crm_contacts SET _is_duplicate = false")
    verdicts = {v.name: v for v in evaluate_checks(conn, "crm_contacts", {"record_key_unique"})}
    verdict = verdicts["record_key_unique"]
    assert not verdict.passed
    text = json.dumps(verdict.metadata, default=str) + verdict.description
    assert "C0000777" not in text
    (expectation,) = verdict.metadata["expectations"]
    assert expectation["unexpected_count"] == 2 and expectation["unexpected_values"] == []
    assert "unexpected_values_hidden" in expectation
    assert "personal column" in verdict.description

    # A non-personal enum keeps its values: they are what an operator needs to fix the feed.
    row = {
        "ticket_id": "T1",
        "requester_email": EMAIL,
        "channel": "email",
        "status": "open",
        "created_at": "2026-01-01T00:00:00Z",
    }
    conn, _ = _load(
        tmp_path / "tickets",
        "support_interactions",
        "support_interactions/2026-01.jsonl",
        json.dumps(row) + "\n",
    )
    conn.execute("UPDATE raw.support_interactions SET channel = 'pigeon'")
    (enums,) = evaluate_checks(conn, "support_interactions", {"enum_values_allowed"})
    assert not enums.passed and "pigeon" in enums.description


@pytest.mark.parametrize(
    "first_line",
    [
        f"C0000777,{EMAIL},{PHONE},{NAMES[0]},{NAMES[1]},,,GB,customer,2026-01-01T00:00:00Z,2026-01-01T00:00:00Z",
        f'C0000777,"{EMAIL},{NAMES[0]}',  # a data line with a stray quote where the header should be
    ],
)
def test_a_rejected_file_s_reason_names_file_and_line_but_not_its_content(
    tmp_path: Path, first_line: str
) -> None:
    """A file without its header line has a person's record where the header belongs: the reason (Dagster's
    failure description, the files table, raw.loaded_files) must not quote it."""
    conn, result = _load(tmp_path, "crm_contacts", "crm_contacts/2026-01.csv", first_line + "\n")
    assert result.rejected
    texts = [failure_message(result), files_markdown(result)]
    texts += [row[0] for row in conn.execute("SELECT status_reason FROM raw.loaded_files").fetchall()]
    joined = "\n".join(texts)
    assert "crm_contacts/2026-01.csv" in joined and "header" in joined
    assert not [secret for secret in (EMAIL, NAMES[0], NAMES[1], "C0000777", "7946") if secret in joined]
