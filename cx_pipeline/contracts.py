"""Source contracts: the single definition of what each landing source must contain.

The generator writes to these contracts and ingestion validates against them; the dbt sources YAML
(``cx_pipeline/dbt_sources.py``) and ``docs/sources.md`` (``cx_pipeline/ingestion/docs.py``) are generated
from them (``make contracts``; tests fail when a committed file is stale). Field order is the canonical CSV
column order.
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
                _f("first_name", description="Given name as entered in the CRM"),
                _f("last_name", description="Family name as entered in the CRM"),
                _f("company", description="Employer or account name, free text"),
                _f("city", description="City, free text"),
                _f("country", description="ISO 3166-1 alpha-2 country code"),
                _f(
                    "crm_lifecycle_stage",
                    allowed=CRM_LIFECYCLE_STAGES,
                    description="HubSpot lifecycle stage of the contact",
                ),
                _f(
                    "created_at",
                    "timestamp",
                    required=True,
                    description="When the contact was created in the CRM",
                ),
                _f(
                    "updated_at",
                    "timestamp",
                    required=True,
                    description=(
                        "When this version of the contact was exported; a newer export is a new record"
                    ),
                ),
            ),
            record_key=("contact_id", "updated_at"),
            event_time_field="updated_at",
        ),
        SourceContract(
            name="web_events",
            format="jsonl",
            description="Segment Spec messages (page, track, identify), one JSON object per line.",
            fields=(
                _f("type", required=True, allowed=SEGMENT_TYPES, description="Segment message type"),
                _f(
                    "messageId",
                    required=True,
                    description="Segment's unique id of the message; re-sent messages keep it",
                ),
                _f("anonymousId", description="Device/browser id; required unless userId is set"),
                _f("userId", description="Web user id once the visitor signed up or logged in"),
                _f(
                    "timestamp",
                    "timestamp",
                    required=True,
                    raw_column="event_timestamp",
                    description="When the event happened (client time, with offset)",
                ),
                _f("event", description="Track event name (Segment e-commerce spec)"),
                _f("name", description="Page name"),
                _f(
                    "properties",
                    "json",
                    description=(
                        "Page or track event properties (product_id, price, order_id, ...), a JSON object"
                    ),
                ),
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
                _f("event_id", required=True, description="Unique id of the cart event"),
                _f("cart_id", required=True, description="Cart (basket) the event belongs to"),
                _f("user_id", description="Shop account id (web user id) when logged in"),
                _f("email", description="Email given at checkout or store till"),
                _f(
                    "anonymous_id",
                    description="Device/browser id of a not-logged-in visitor (same as Segment anonymousId)",
                ),
                _f(
                    "event_type",
                    required=True,
                    allowed=CART_EVENT_TYPES,
                    description="What happened to the cart",
                ),
                _f("product_id", description="Product SKU (empty for cart-level events)"),
                _f("product_name", description="Product name at event time"),
                _f("category", description="Product category"),
                _f("quantity", "integer", min_value=0, description="Units added, removed or ordered"),
                _f("unit_price", "decimal", min_value=0, description="Price per unit in `currency`"),
                _f("currency", description="ISO 4217 currency code"),
                _f("order_id", description="Order created by `order_placed`"),
                _f("channel", required=True, allowed=CHANNELS_COMMERCE, description="Where the cart lives"),
                _f("occurred_at", "timestamp", required=True, description="When the event happened"),
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
                _f("rejection_id", required=True, description="Unique id of the rejection"),
                _f("user_id", description="Shop account id"),
                _f("email", description="Email of the customer"),
                _f("product_id", required=True, description="Product SKU that was rejected"),
                _f("order_id", description="Order concerned (returns and cancellations)"),
                _f(
                    "rejection_type",
                    required=True,
                    allowed=REJECTION_TYPES,
                    description="How the product was rejected",
                ),
                _f("reason", description="Reason given by the customer, free text"),
                _f("occurred_at", "timestamp", required=True, description="When the rejection happened"),
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
                _f("ticket_id", required=True, description="Zendesk-like ticket id"),
                _f("requester_email", description="Email of the person who opened the ticket"),
                _f("requester_phone", description="Phone of the requester, any format"),
                _f(
                    "channel",
                    required=True,
                    allowed=SUPPORT_CHANNELS,
                    description="Channel the ticket came in through",
                ),
                _f("category", description="Ticket category (returns, delivery, ...)"),
                _f("subject", description="Ticket subject line"),
                _f(
                    "status",
                    required=True,
                    allowed=TICKET_STATUSES,
                    description="Ticket status at export time",
                ),
                _f("priority", allowed=TICKET_PRIORITIES, description="Ticket priority"),
                _f("created_at", "timestamp", required=True, description="When the ticket was opened"),
                _f("first_response_at", "timestamp", description="First agent response, if any"),
                _f("solved_at", "timestamp", description="When the ticket was solved, if it was"),
                _f(
                    "csat_score",
                    "integer",
                    min_value=1,
                    max_value=5,
                    description=(
                        "Customer satisfaction survey answer (1 = very unsatisfied, 5 = very satisfied)"
                    ),
                ),
                _f(
                    "ces_score",
                    "integer",
                    min_value=1,
                    max_value=7,
                    description="Customer effort score (1 = very easy, 7 = very difficult)",
                ),
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
                _f("consent_event_id", required=True, description="Unique id of the consent event"),
                _f("email", description="Email the consent was given for"),
                _f("user_id", description="Shop account id, when known"),
                _f(
                    "purpose",
                    required=True,
                    allowed=CONSENT_PURPOSES,
                    description="Processing purpose the event is about",
                ),
                _f(
                    "status",
                    required=True,
                    allowed=CONSENT_STATUSES,
                    description="Decision recorded by the event",
                ),
                _f("lawful_basis", allowed=LAWFUL_BASES, description="GDPR Art. 6 lawful basis"),
                _f(
                    "source",
                    description=(
                        "Where the consent was captured (cookie banner, checkout, preference centre, ...)"
                    ),
                ),
                _f("policy_version", description="Privacy policy version shown"),
                _f("recorded_at", "timestamp", required=True, description="When the decision was recorded"),
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
                _f("request_id", required=True, description="Unique id of the erasure request"),
                _f("email", description="Email to erase"),
                _f("phone", description="Phone to erase, any format"),
                _f("user_id", description="Shop account id to erase"),
                _f("requested_at", "timestamp", required=True, description="When the request was received"),
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
                _f("response_id", required=True, description="Unique id of the survey answer"),
                _f("email", description="Email of the respondent"),
                _f("user_id", description="Shop account id of the respondent"),
                _f(
                    "score",
                    "integer",
                    required=True,
                    min_value=0,
                    max_value=10,
                    description="Likelihood to recommend, 0-10 (9-10 promoter, 7-8 passive, 0-6 detractor)",
                ),
                _f("comment", description="Free-text comment (may span lines, quoted)"),
                _f(
                    "touchpoint",
                    required=True,
                    allowed=NPS_TOUCHPOINTS,
                    description="What triggered the survey",
                ),
                _f("channel", allowed=NPS_CHANNELS, description="Where the survey was answered"),
                _f("responded_at", "timestamp", required=True, description="When the answer was given"),
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


# Columns every raw table carries besides its contract fields: name -> DuckDB type...
RAW_METADATA_COLUMNS: dict[str, str] = {
    "_extra": "JSON",
    "_source_file": "VARCHAR",
    "_source_line": "BIGINT",
    "_loaded_at": "TIMESTAMPTZ",
    "_is_duplicate": "BOOLEAN",
}
# ...and name -> meaning (docs/sources.md and the dbt sources YAML both say this).
RAW_METADATA_DESCRIPTIONS: dict[str, str] = {
    "_extra": "fields delivered beyond the contract, as an object (NULL if none)",
    "_source_file": "landing file, relative to the landing root",
    "_source_line": "1-based physical line of the record (CSV header = 1; first line of a multi-line record)",
    "_loaded_at": "when the file version was loaded (also orders deliveries)",
    "_is_duplicate": "a re-delivery of a record key loaded before (earlier file or line)",
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


def raw_column_descriptions(source: str) -> dict[str, str]:
    """Column name -> meaning of ``raw.<source>``: the columns of ``raw_table_columns``, in its order."""
    contract = CONTRACTS[source]
    descriptions = {f.column: f.description for f in contract.fields}
    if source == "web_events":
        descriptions.update(
            {
                column: f"`{path[2:]}` of the Segment context, pulled out of the `context` JSON"
                for column, path in WEB_EVENT_CONTEXT_COLUMNS.items()
            }
        )
    descriptions.update(RAW_METADATA_DESCRIPTIONS)
    return descriptions
