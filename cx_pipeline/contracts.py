"""Source contracts: the single definition of what each landing source must contain.

The generator writes to these contracts, ingestion validates against them, the dbt sources YAML mirrors
them and ``docs/sources.md`` documents them. Field order is the canonical CSV column order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

FileFormat = Literal["csv", "jsonl"]
FieldType = Literal["string", "timestamp", "integer", "decimal", "json"]


@dataclass(frozen=True)
class ContractField:
    name: str
    type: FieldType = "string"
    required: bool = False
    allowed: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    description: str = ""
    # Column name in the raw DuckDB table; defaults to the snake_case of ``name``.
    raw_column: str | None = None

    @property
    def column(self) -> str:
        if self.raw_column:
            return self.raw_column
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.name).lower()


@dataclass(frozen=True)
class SourceContract:
    name: str
    format: FileFormat
    description: str
    fields: tuple[ContractField, ...]
    # Fields whose values identify one delivered record; a second delivery with the same values is a
    # duplicate (kept in raw, flagged with ``_is_duplicate``).
    record_key: tuple[str, ...]
    # The field that orders records in time (used for "not far in the future" checks and incremental loads).
    event_time_field: str
    # At least one of these must be non-empty on every record, or it cannot be tied to a person.
    identifier_fields: tuple[str, ...] = field(default=())

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    def field(self, name: str) -> ContractField:
        for contract_field in self.fields:
            if contract_field.name == name:
                return contract_field
        raise KeyError(f"{self.name} has no field {name!r}")


CHANNELS_COMMERCE = ("web", "app", "store")
SUPPORT_CHANNELS = ("email", "chat", "phone", "social", "web_form")
CONSENT_PURPOSES = (
    "email_marketing",
    "sms_marketing",
    "personalization",
    "analytics",
    "third_party_sharing",
)
CONSENT_STATUSES = ("granted", "denied", "withdrawn")
CART_EVENT_TYPES = ("item_added", "item_removed", "checkout_started", "order_placed", "cart_abandoned")
REJECTION_TYPES = ("removed_from_cart", "returned", "recommendation_dismissed", "order_cancelled")
SEGMENT_TYPES = ("page", "track", "identify")
SEGMENT_ECOMMERCE_EVENTS = (
    "Products Searched",
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Cart Viewed",
    "Checkout Started",
    "Order Completed",
)
NPS_TOUCHPOINTS = ("post_purchase", "post_support", "relationship", "onboarding")
NPS_CHANNELS = ("email", "web", "app", "sms", "in_store")
CRM_LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
TICKET_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
LAWFUL_BASES = ("consent", "contract", "legitimate_interest", "legal_obligation")


def _f(name: str, type_: FieldType = "string", **kwargs) -> ContractField:
    return ContractField(name=name, type=type_, **kwargs)


CONTRACTS: dict[str, SourceContract] = {
    c.name: c
    for c in (
        SourceContract(
            name="crm_contacts",
            format="csv",
            description="HubSpot-like CRM export; a contact may be re-exported with a newer updated_at.",
            fields=(
                _f("contact_id", required=True, description="CRM contact id, e.g. C0000123"),
                _f("email", description="Email as typed into the CRM (any case, may have spaces)"),
                _f("phone", description="Phone in any format"),
                _f("first_name"),
                _f("last_name"),
                _f("company"),
                _f("city"),
                _f("country", description="ISO 3166-1 alpha-2 country code"),
                _f("crm_lifecycle_stage", allowed=CRM_LIFECYCLE_STAGES),
                _f("created_at", "timestamp", required=True),
                _f("updated_at", "timestamp", required=True),
            ),
            record_key=("contact_id", "updated_at"),
            event_time_field="updated_at",
        ),
        SourceContract(
            name="web_events",
            format="jsonl",
            description="Segment Spec messages (page, track, identify), one JSON object per line.",
            fields=(
                _f("type", required=True, allowed=SEGMENT_TYPES),
                _f("messageId", required=True),
                _f("anonymousId", description="Device/browser id; required unless userId is set"),
                _f("userId", description="Web user id once the visitor signed up or logged in"),
                _f("timestamp", "timestamp", required=True, raw_column="event_timestamp"),
                _f("event", description="Track event name (Segment e-commerce spec)"),
                _f("name", description="Page name"),
                _f("properties", "json"),
                _f("traits", "json", description="Identify traits: email, phone, firstName, lastName"),
                _f(
                    "context",
                    "json",
                    description="page.url/path/referrer, campaign.*, userAgent, device.type",
                ),
            ),
            record_key=("messageId",),
            identifier_fields=("anonymousId", "userId"),
            event_time_field="timestamp",
        ),
        SourceContract(
            name="cart_events",
            format="csv",
            description="Shop backend cart and order events (web, app and store tills).",
            fields=(
                _f("event_id", required=True),
                _f("cart_id", required=True),
                _f("user_id"),
                _f("email"),
                _f("anonymous_id"),
                _f("event_type", required=True, allowed=CART_EVENT_TYPES),
                _f("product_id"),
                _f("product_name"),
                _f("category"),
                _f("quantity", "integer", min_value=0),
                _f("unit_price", "decimal", min_value=0),
                _f("currency"),
                _f("order_id"),
                _f("channel", required=True, allowed=CHANNELS_COMMERCE),
                _f("occurred_at", "timestamp", required=True),
            ),
            record_key=("event_id",),
            identifier_fields=("user_id", "email", "anonymous_id"),
            event_time_field="occurred_at",
        ),
        SourceContract(
            name="product_rejections",
            format="csv",
            description="Products a customer removed, returned, dismissed or cancelled, with a reason.",
            fields=(
                _f("rejection_id", required=True),
                _f("user_id"),
                _f("email"),
                _f("product_id", required=True),
                _f("order_id"),
                _f("rejection_type", required=True, allowed=REJECTION_TYPES),
                _f("reason"),
                _f("occurred_at", "timestamp", required=True),
            ),
            record_key=("rejection_id",),
            identifier_fields=("user_id", "email"),
            event_time_field="occurred_at",
        ),
        SourceContract(
            name="support_interactions",
            format="jsonl",
            description="Zendesk-like ticket export, one ticket object per line.",
            fields=(
                _f("ticket_id", required=True),
                _f("requester_email"),
                _f("requester_phone"),
                _f("channel", required=True, allowed=SUPPORT_CHANNELS),
                _f("category"),
                _f("subject"),
                _f("status", required=True, allowed=TICKET_STATUSES),
                _f("priority", allowed=TICKET_PRIORITIES),
                _f("created_at", "timestamp", required=True),
                _f("first_response_at", "timestamp"),
                _f("solved_at", "timestamp"),
                _f("csat_score", "integer", min_value=1, max_value=5),
                _f("ces_score", "integer", min_value=1, max_value=7),
            ),
            record_key=("ticket_id",),
            identifier_fields=("requester_email", "requester_phone"),
            event_time_field="created_at",
        ),
        SourceContract(
            name="gdpr_consents",
            format="csv",
            description="Consent log: every grant, denial and withdrawal per purpose.",
            fields=(
                _f("consent_event_id", required=True),
                _f("email"),
                _f("user_id"),
                _f("purpose", required=True, allowed=CONSENT_PURPOSES),
                _f("status", required=True, allowed=CONSENT_STATUSES),
                _f("lawful_basis", allowed=LAWFUL_BASES),
                _f("source"),
                _f("policy_version"),
                _f("recorded_at", "timestamp", required=True),
            ),
            record_key=("consent_event_id",),
            identifier_fields=("email", "user_id"),
            event_time_field="recorded_at",
        ),
        SourceContract(
            name="erasure_requests",
            format="csv",
            description="GDPR Art. 17 erasure requests; any one identifier is enough.",
            fields=(
                _f("request_id", required=True),
                _f("email"),
                _f("phone"),
                _f("user_id"),
                _f("requested_at", "timestamp", required=True),
            ),
            record_key=("request_id",),
            identifier_fields=("email", "phone", "user_id"),
            event_time_field="requested_at",
        ),
        SourceContract(
            name="nps_responses",
            format="csv",
            description="NPS survey answers (0-10) with the touchpoint that triggered the survey.",
            fields=(
                _f("response_id", required=True),
                _f("email"),
                _f("user_id"),
                _f("score", "integer", required=True, min_value=0, max_value=10),
                _f("comment"),
                _f("touchpoint", required=True, allowed=NPS_TOUCHPOINTS),
                _f("channel", allowed=NPS_CHANNELS),
                _f("responded_at", "timestamp", required=True),
            ),
            record_key=("response_id",),
            identifier_fields=("email", "user_id"),
            event_time_field="responded_at",
        ),
    )
}

SOURCE_NAMES: tuple[str, ...] = tuple(CONTRACTS)

# Contract fields that hold personal data, per source (the one home of this classification): identifiers,
# names and contact data, and free text, which can name or reach a person (an NPS comment, a ticket
# subject, a rejection reason, Segment properties and context with page URLs and UTM tags). Previews in
# Dagster's run history mask them (``personal_columns``). Fields not listed are record keys, enums,
# timestamps, amounts and product or order references.
PERSONAL_FIELDS: dict[str, frozenset[str]] = {
    "crm_contacts": frozenset({"contact_id", "email", "phone", "first_name", "last_name", "company", "city"}),
    "web_events": frozenset({"anonymousId", "userId", "properties", "traits", "context"}),
    "cart_events": frozenset({"user_id", "email", "anonymous_id"}),
    "product_rejections": frozenset({"user_id", "email", "reason"}),
    "support_interactions": frozenset({"requester_email", "requester_phone", "subject"}),
    "gdpr_consents": frozenset({"email", "user_id"}),
    "erasure_requests": frozenset({"email", "phone", "user_id"}),
    "nps_responses": frozenset({"email", "user_id", "comment"}),
}


# Columns every raw table carries besides its contract fields.
RAW_METADATA_COLUMNS: dict[str, str] = {
    "_extra": "JSON",  # fields delivered beyond the contract, kept as a JSON object
    "_source_file": "VARCHAR",  # path relative to the landing root, e.g. 'web_events/2026-01.jsonl'
    "_source_line": "BIGINT",  # 1-based record number in the file (CSV: DuckDB's line, header = 1)
    "_loaded_at": "TIMESTAMPTZ",
    "_is_duplicate": "BOOLEAN",  # a re-delivery of a record_key already loaded earlier
}

# Segment context fields pulled out of the nested JSON into their own raw columns.
WEB_EVENT_CONTEXT_COLUMNS: dict[str, str] = {
    "context_page_url": "$.page.url",
    "context_page_path": "$.page.path",
    "context_page_referrer": "$.page.referrer",
    "context_campaign_source": "$.campaign.source",
    "context_campaign_medium": "$.campaign.medium",
    "context_campaign_name": "$.campaign.name",
    "context_user_agent": "$.userAgent",
    "context_device_type": "$.device.type",
}

DUCKDB_TYPES: dict[str, str] = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "integer": "BIGINT",
    "decimal": "DECIMAL(18,4)",
    "json": "JSON",
}


def personal_columns(source: str) -> frozenset[str]:
    """Columns of ``raw.<source>`` that hold personal data: the personal fields' columns, the Segment
    context columns (parts of ``context``) and ``_extra`` (fields nobody classified)."""
    contract = CONTRACTS[source]
    columns = {contract.field(name).column for name in PERSONAL_FIELDS[source]}
    if source == "web_events":
        columns.update(WEB_EVENT_CONTEXT_COLUMNS)
    columns.add("_extra")
    return frozenset(columns)


def raw_table_columns(source: str) -> dict[str, str]:
    """Column name -> DuckDB type of ``raw.<source>``, in table order."""
    contract = CONTRACTS[source]
    columns = {f.column: DUCKDB_TYPES[f.type] for f in contract.fields}
    if source == "web_events":
        columns.update(dict.fromkeys(WEB_EVENT_CONTEXT_COLUMNS, "VARCHAR"))
    columns.update(RAW_METADATA_COLUMNS)
    return columns
