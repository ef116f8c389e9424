"""Render docs/sources.md from the contracts: ``python -m cx_pipeline.ingestion.docs`` rewrites it.

Every meaning comes from ``contracts.py``; one realistic example record per source lives here. A test loads
the examples through the real ingestion (they must load without quarantine) and checks that docs/sources.md
is up to date.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from cx_pipeline.contracts import (
    CONTRACTS,
    DUCKDB_TYPES,
    RAW_METADATA_COLUMNS,
    RAW_METADATA_DESCRIPTIONS,
    SEGMENT_ECOMMERCE_EVENTS,
    WEB_EVENT_CONTEXT_COLUMNS,
    ContractField,
    SourceContract,
)
from cx_pipeline.settings import PROJECT_ROOT

SOURCES_DOC = PROJECT_ROOT / "docs" / "sources.md"

# One realistic record per source, by contract field name (JSON sources: nested objects as dicts).
EXAMPLES: dict[str, dict[str, object]] = {
    "crm_contacts": {
        "contact_id": "C0004711",
        "email": "Maria.Keller@example.com",
        "phone": "+49 89 2345 6789",
        "first_name": "Maria",
        "last_name": "Keller",
        "company": "Keller & Söhne GmbH",
        "city": "München",
        "country": "DE",
        "crm_lifecycle_stage": "customer",
        "created_at": "2025-06-03T08:14:27Z",
        "updated_at": "2026-02-11T16:40:02.318Z",
    },
    "web_events": {
        "type": "track",
        "messageId": "9f6c3c1e-2b7a-4d0e-9a51-0c3f5f1e8b42",
        "anonymousId": "5cfedad0-f495-4f9e-8dbe-7d9d97c3a5ad",
        "userId": "U0004711",
        "timestamp": "2026-02-11T17:02:45.120+01:00",
        "event": "Product Added",
        "name": None,
        "properties": {"product_id": "SKU-10234", "name": "Trail Runner 2", "price": 119.9, "quantity": 1},
        "traits": None,
        "context": {
            "page": {
                "url": "https://shop.example.com/p/SKU-10234?utm_source=newsletter",
                "path": "/p/SKU-10234",
                "referrer": "https://mail.example.com/",
            },
            "campaign": {"source": "newsletter", "medium": "email", "name": "spring_launch"},
            "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X)",
            "device": {"type": "mobile"},
        },
    },
    "cart_events": {
        "event_id": "6d1f0b7e-3c55-4d7b-8a0e-2f9c7f4b1a10",
        "cart_id": "CART-88213",
        "user_id": "U0004711",
        "email": "",
        "anonymous_id": "5cfedad0-f495-4f9e-8dbe-7d9d97c3a5ad",
        "event_type": "item_added",
        "product_id": "SKU-10234",
        "product_name": "Trail Runner 2",
        "category": "shoes",
        "quantity": "1",
        "unit_price": "119.90",
        "currency": "EUR",
        "order_id": "",
        "channel": "web",
        "occurred_at": "2026-02-11T16:02:46Z",
    },
    "product_rejections": {
        "rejection_id": "RJ-000381",
        "user_id": "U0004711",
        "email": "maria.keller@example.com",
        "product_id": "SKU-10234",
        "order_id": "O-552190",
        "rejection_type": "returned",
        "reason": "Too small, ordered half a size up",
        "occurred_at": "2026-02-20T09:31:00Z",
    },
    "support_interactions": {
        "ticket_id": "T-204518",
        "requester_email": "maria.keller@example.com",
        "requester_phone": None,
        "channel": "email",
        "category": "returns",
        "subject": "Return label for order O-552190",
        "status": "solved",
        "priority": "normal",
        "created_at": "2026-02-19T08:12:00Z",
        "first_response_at": "2026-02-19T09:02:31Z",
        "solved_at": "2026-02-20T15:30:00Z",
        "csat_score": 5,
        "ces_score": 2,
    },
    "gdpr_consents": {
        "consent_event_id": "CE-7781204",
        "email": "maria.keller@example.com",
        "user_id": "U0004711",
        "purpose": "email_marketing",
        "status": "granted",
        "lawful_basis": "consent",
        "source": "checkout",
        "policy_version": "v3.2",
        "recorded_at": "2026-02-11T16:09:12Z",
    },
    "erasure_requests": {
        "request_id": "ER-00042",
        "email": "j.doe@example.org",
        "phone": "",
        "user_id": "",
        "requested_at": "2026-03-01T10:15:00+01:00",
    },
    "nps_responses": {
        "response_id": "NPS-31337",
        "email": "maria.keller@example.com",
        "user_id": "U0004711",
        "score": "9",
        "comment": "Fast delivery, easy returns.",
        "touchpoint": "post_purchase",
        "channel": "email",
        "responded_at": "2026-02-21T18:00:00Z",
    },
}


def example_line(source: str) -> str:
    """The example record as it would appear in a landing file (CSV data line or JSON line)."""
    contract = CONTRACTS[source]
    record = EXAMPLES[source]
    if contract.format == "jsonl":
        return json.dumps({k: v for k, v in record.items() if v is not None}, ensure_ascii=False)
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(
        ["" if record[n] is None else record[n] for n in contract.field_names]
    )
    return out.getvalue()


def example_file(source: str) -> str:
    """A complete landing file holding the example record."""
    contract = CONTRACTS[source]
    header = ",".join(contract.field_names) + "\n" if contract.format == "csv" else ""
    return header + example_line(source) + "\n"


def _meaning(field: ContractField) -> str:
    return field.description.replace("|", "\\|")


def _rules(field: ContractField) -> str:
    parts = []
    if field.allowed:
        parts.append(", ".join(f"`{v}`" for v in field.allowed))
    if field.min_value is not None and field.max_value is not None:
        parts.append(f"{field.min_value:g} to {field.max_value:g}")
    elif field.min_value is not None:
        parts.append(f">= {field.min_value:g}")
    elif field.max_value is not None:
        parts.append(f"<= {field.max_value:g}")
    if field.type == "timestamp":
        parts.append("ISO-8601 date-time")
    if field.type == "json":
        parts.append("JSON object")
    return "; ".join(parts)


def _source_section(contract: SourceContract) -> list[str]:
    name = contract.name
    fmt = "CSV" if contract.format == "csv" else "JSON Lines"
    key = ", ".join(f"`{k}`" for k in contract.record_key)
    lines = [
        f"## {name}",
        "",
        contract.description,
        "",
        f"- Landing files: `landing/{name}/*.{contract.format}` ({fmt}); raw table: `raw.{name}`",
        f"- Record key: {key}. A second delivery with the same key is loaded with `_is_duplicate = true`.",
        f"- Event time: `{contract.event_time_field}`",
    ]
    if contract.identifier_fields:
        ids = ", ".join(f"`{f}`" for f in contract.identifier_fields)
        lines.append(f"- Identifiers: at least one of {ids} must be non-empty, or the record is quarantined.")
    lines += [
        "",
        "| Field | Raw column | Type | Required | Allowed values / range | Meaning |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for field in contract.fields:
        lines.append(
            f"| `{field.name}` | `{field.column}` | {DUCKDB_TYPES[field.type]} | "
            f"{'yes' if field.required else ''} | {_rules(field)} | {_meaning(field)} |"
        )
    if name == "web_events":
        events = ", ".join(f"`{e}`" for e in SEGMENT_ECOMMERCE_EVENTS)
        lines += [
            "",
            f"Track `event` names follow the Segment e-commerce spec ({events}); they are not enforced.",
            "",
            "Context fields pulled out of `context` into their own VARCHAR columns:",
            "",
            "| Raw column | JSON path in `context` |",
            "| --- | --- |",
            *[f"| `{column}` | `{path}` |" for column, path in WEB_EVENT_CONTEXT_COLUMNS.items()],
        ]
    language = "csv" if contract.format == "csv" else "json"
    lines += ["", "Example:", "", f"```{language}", example_file(name).rstrip("\n"), "```", ""]
    return lines


def render_sources_markdown() -> str:
    lines = [
        "# Source contracts",
        "",
        "<!-- Generated from cx_pipeline/contracts.py by `python -m cx_pipeline.ingestion.docs`; "
        "do not edit by hand. -->",
        "",
        "Every landing source, as `cx_pipeline/contracts.py` defines it. The ingestion (docs/ingestion.md)",
        "validates each record against its contract; records that break it go to `raw.quarantine`.",
        "",
        "Common rules:",
        "",
        '- CSV: comma-separated, `"` quotes (doubled inside quoted fields), header row naming the fields,',
        "  UTF-8. Columns may come in any order; optional columns may be absent; extra columns are kept in",
        "  `_extra`. Empty fields are NULL. A quoted field may span lines.",
        "- JSON Lines: one JSON object per line, UTF-8; fields beyond the contract are kept in `_extra`.",
        "- Timestamps: ISO-8601 date and time with `Z` or an offset (`+02:00`, `-0530`), optional seconds",
        "  and fraction; stored as TIMESTAMPTZ (UTC). Without an offset the time is taken as UTC. Dates",
        "  alone, other layouts and impossible dates are rejected.",
        "- Integers: digits with an optional sign (`5.0` accepted); decimals: no exponent.",
        "- Enum values are case-sensitive. Text fields are stored as delivered (no trimming or casing).",
        "",
        "Every raw table ends with these metadata columns:",
        "",
        "| Column | Type | Meaning |",
        "| --- | --- | --- |",
        *[
            f"| `{column}` | {column_type} | {RAW_METADATA_DESCRIPTIONS[column]} |"
            for column, column_type in RAW_METADATA_COLUMNS.items()
        ],
        "",
    ]
    for contract in CONTRACTS.values():
        lines += _source_section(contract)
    return "\n".join(lines).rstrip("\n") + "\n"


def write_sources_markdown(path: Path = SOURCES_DOC) -> Path:
    path.write_text(render_sources_markdown(), encoding="utf-8")
    return path


if __name__ == "__main__":
    print(write_sources_markdown(Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCES_DOC))
