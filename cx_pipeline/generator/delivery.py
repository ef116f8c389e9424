"""How records reach the landing folder: serialised, late, re-delivered, and sometimes broken."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cx_pipeline.contracts import CONTRACTS, SourceContract
from cx_pipeline.generator import text
from cx_pipeline.generator.config import DAY_MS, MINUTE_MS, Clock
from cx_pipeline.generator.ids import IdAllocator
from cx_pipeline.generator.records import SourceRecords, serialize


@dataclass(frozen=True)
class DeliveryProfile:
    """Lag between an event and its delivery: usually minutes to a day, for a share days to weeks."""

    usual_lag_minutes: tuple[int, int]
    late_share: float
    late_days: tuple[int, int]
    duplicate_share: float = 0.0  # re-delivered with the same record key


PROFILES: dict[str, DeliveryProfile] = {
    "crm_contacts": DeliveryProfile((30, 24 * 60), 0.02, (2, 20)),
    "web_events": DeliveryProfile((0, 10), 0.04, (1, 40), duplicate_share=0.01),
    "cart_events": DeliveryProfile((0, 60), 0.04, (1, 30), duplicate_share=0.01),
    "product_rejections": DeliveryProfile((60, 24 * 60), 0.02, (2, 25)),
    "support_interactions": DeliveryProfile((60, 24 * 60), 0.02, (2, 20)),
    "gdpr_consents": DeliveryProfile((10, 24 * 60), 0.02, (2, 20)),
    "erasure_requests": DeliveryProfile((10, 24 * 60), 0.02, (2, 10)),
    "nps_responses": DeliveryProfile((60, 24 * 60), 0.02, (2, 25)),
}

# Where a malformed row gets its fresh record key (the others use random UUIDs).
RECORD_ID_SPACES = {
    "crm_contacts": "contact",
    "product_rejections": "rejection",
    "support_interactions": "ticket",
    "gdpr_consents": "consent",
    "erasure_requests": "erasure",
    "nps_responses": "nps",
}
# (field, values) a source system would never send.
UNKNOWN_ENUMS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "crm_contacts": (("crm_lifecycle_stage", ("alien", "vip_gold")),),
    "web_events": (("type", ("teleport", "screenshot")),),
    "cart_events": (
        ("event_type", ("item_teleported", "cart_exploded")),
        ("channel", ("fax", "carrier_pigeon")),
    ),
    "product_rejections": (("rejection_type", ("teleported", "eaten_by_dog")),),
    "support_interactions": (("channel", ("fax", "telegram")), ("status", ("lost_in_space",))),
    "gdpr_consents": (("status", ("maybe", "sort_of")), ("purpose", ("mind_reading",))),
    "nps_responses": (("touchpoint", ("carrier_pigeon", "dream")), ("channel", ("fax",))),
}
OUT_OF_RANGE: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "support_interactions": (("csat_score", ("9", "0", "-1")), ("ces_score", ("8", "12"))),
    "nps_responses": (("score", ("11", "12", "-1", "42")),),
}
BAD_TIMESTAMPS: tuple[str, ...] = (
    "31/02/2026",
    "not-a-date",
    "2026-13-45T25:61:00Z",
    "yesterday",
    "0000-00-00 00:00:00",
)
TRUNCATE_UP_TO = (12, 40, 90)  # a broken JSON line loses up to this many characters at its end


def malformed_kinds(contract: SourceContract) -> tuple[str, ...]:
    """The kinds of breakage that make sense for a source, the ones particular to it first."""
    kinds = []
    if contract.format == "jsonl":
        kinds += ["broken_json", "json_array"]
    if contract.name == "cart_events":
        kinds.append("negative_quantity")
    if contract.name in OUT_OF_RANGE:
        kinds.append("out_of_range")
    if contract.name in UNKNOWN_ENUMS:
        kinds.append("unknown_enum")
    kinds += ["bad_timestamp", "missing_required_id"]
    if contract.identifier_fields:
        kinds.append("missing_identifier")
    return tuple(kinds)


@dataclass
class DeliveryPlan:
    """When each delivered row of one chunk of a source arrives, and which rows are broken copies."""

    records: SourceRecords
    kinds: tuple[str, ...]  # malformed kinds of the source
    row_record: np.ndarray  # per delivered row: the record it carries
    delivery_ms: np.ndarray
    duplicate: np.ndarray
    malformed_kind: np.ndarray  # index into `kinds`, -1 when well-formed
    malformed_position: np.ndarray  # index into `malformed_lines`, -1 when well-formed
    malformed_lines: pa.Array  # the broken copies, rendered once

    @property
    def source(self) -> str:
        return self.records.source

    @property
    def event_ms(self) -> np.ndarray:
        """Event time per row; -1 for malformed rows (their time may not even parse)."""
        return np.where(self.malformed_kind >= 0, -1, self.records.event_ms[self.row_record])

    def __len__(self) -> int:
        return len(self.row_record)

    def render(self, rows: np.ndarray) -> pa.Array:
        """Lines of the delivered ``rows``, broken where planned."""
        lines = self.records.render(self.row_record[rows])
        broken = self.malformed_kind[rows] >= 0
        if not broken.any():
            return lines
        bad = self.malformed_lines.take(pa.array(self.malformed_position[rows[broken]]))
        return pc.replace_with_mask(lines, pa.array(broken), bad.cast(pa.string()))


def plan_delivery(
    rng: np.random.Generator,
    records: SourceRecords,
    clock: Clock,
    malformed_share: float,
    minimum_malformed: int,
    ids: IdAllocator,
) -> DeliveryPlan:
    contract = CONTRACTS[records.source]
    profile = PROFILES[records.source]
    clean_count = len(records)
    delivery_ms = _delivery_times(rng, records.event_ms, profile, clock)

    duplicated = np.flatnonzero(rng.random(clean_count) < profile.duplicate_share)
    redelivery_lag = np.where(
        rng.random(len(duplicated)) < 0.5,
        rng.integers(1, 6 * 60, len(duplicated)) * MINUTE_MS,
        rng.integers(1, 20, len(duplicated)) * DAY_MS,
    )
    redelivery_ms = np.minimum(delivery_ms[duplicated] + redelivery_lag, clock.end_ms - 1)

    kinds = malformed_kinds(contract)
    broken_count = 0
    if clean_count and malformed_share > 0:
        broken_count = min(max(round(malformed_share * clean_count), minimum_malformed), clean_count)
    broken_source = rng.integers(0, max(clean_count, 1), broken_count)
    # Kinds in turn, so a source with a handful of broken rows still shows its particular kinds.
    broken_kind = rng.permutation(np.arange(broken_count) % len(kinds))
    space = RECORD_ID_SPACES.get(contract.name)
    fresh_ids = ids.take(space, broken_count) if space else text.uuid4_strings(rng, broken_count)

    total = clean_count + len(duplicated) + broken_count
    broken_rows = np.arange(clean_count + len(duplicated), total)
    variant = rng.integers(0, 1_000_000, broken_count)
    malformed_lines = render_malformed(
        records, broken_source, [kinds[k] for k in broken_kind], variant, fresh_ids
    )
    malformed_kind = np.full(total, -1, dtype=np.int64)
    malformed_kind[broken_rows] = broken_kind
    malformed_position = np.full(total, -1, dtype=np.int64)
    malformed_position[broken_rows] = np.arange(broken_count)
    return DeliveryPlan(
        records=records,
        kinds=kinds,
        row_record=np.concatenate([np.arange(clean_count), duplicated, broken_source]),
        delivery_ms=np.concatenate([delivery_ms, redelivery_ms, delivery_ms[broken_source]]),
        duplicate=np.concatenate(
            [np.zeros(clean_count, bool), np.ones(len(duplicated), bool), np.zeros(broken_count, bool)]
        ),
        malformed_kind=malformed_kind,
        malformed_position=malformed_position,
        malformed_lines=malformed_lines,
    )


def _delivery_times(
    rng: np.random.Generator, event_ms: np.ndarray, profile: DeliveryProfile, clock: Clock
) -> np.ndarray:
    count = len(event_ms)
    low, high = profile.usual_lag_minutes
    lag = rng.integers(low * MINUTE_MS, high * MINUTE_MS + 1, count)
    late = rng.random(count) < profile.late_share
    late_lag = rng.integers(profile.late_days[0] * DAY_MS, profile.late_days[1] * DAY_MS, count)
    # Whatever arrives after the end of the range is in the last delivery.
    return np.minimum(event_ms + np.where(late, late_lag, lag), clock.end_ms - 1)


def _one_of(values: tuple[str, ...], variant: np.ndarray) -> pa.Array:
    return text.lookup(values, variant % len(values))


def render_malformed(
    records: SourceRecords, rows: np.ndarray, kinds: list[str], variant: np.ndarray, fresh_ids: pa.Array
) -> pa.Array:
    """Copies of records ``rows`` under fresh record keys, each broken in the planned way."""
    contract = CONTRACTS[records.source]
    kind = np.array(kinds)
    if contract.format == "jsonl":
        return _break_json_lines(contract, records.render(rows), kind, variant, fresh_ids)
    columns = records.columns_of(rows)
    key = contract.record_key[0]
    columns[key] = text.where(kind != "missing_required_id", fresh_ids)
    for name in contract.identifier_fields:
        columns[name] = text.where(kind != "missing_identifier", columns[name])
    time_field = contract.event_time_field
    columns[time_field] = pc.if_else(
        pa.array(kind == "bad_timestamp"), _one_of(BAD_TIMESTAMPS, variant), columns[time_field]
    )
    for breakage, choices in (("unknown_enum", UNKNOWN_ENUMS), ("out_of_range", OUT_OF_RANGE)):
        options = choices.get(contract.name, ())
        for index, (name, values) in enumerate(options):
            target = (kind == breakage) & (variant % len(options) == index)
            columns[name] = pc.if_else(pa.array(target), _one_of(values, variant // 7), columns[name])
    if "quantity" in columns:
        negative = text.integer_strings(-(1 + variant % 3))
        columns["quantity"] = pc.if_else(pa.array(kind == "negative_quantity"), negative, columns["quantity"])
    return serialize(contract, columns)


def set_json_member(lines: pa.Array, key: str, json_values: pa.Array | str) -> pa.Array:
    """Replace the value of the first ``"key":`` member of one-line JSON objects.

    Top-level contract fields come before the nested objects, so the first match is the top-level one.
    """
    value = r'"(?:[^"\\]|\\.)*"|null|true|false|-?[0-9][0-9.eE+-]*'
    parts = pc.extract_regex(lines, rf'^(?P<head>.*?"{key}":)(?:{value})(?P<tail>.*)$')
    return text.concat(parts.field("head"), json_values, parts.field("tail"))


def _break_json_lines(
    contract: SourceContract, lines: pa.Array, kind: np.ndarray, variant: np.ndarray, fresh_ids: pa.Array
) -> pa.Array:
    """Break JSON lines as text: members set to impossible values, objects cut short, arrays."""
    body = pc.utf8_rtrim(lines, "\n")
    key = contract.record_key[0]
    body = set_json_member(
        body, key, text.where(kind != "missing_required_id", text.json_string(fresh_ids), "null")
    )
    for name in contract.identifier_fields:
        body = pc.if_else(pa.array(kind == "missing_identifier"), set_json_member(body, name, "null"), body)
    bad_time = text.json_string(_one_of(BAD_TIMESTAMPS, variant))
    body = pc.if_else(
        pa.array(kind == "bad_timestamp"), set_json_member(body, contract.event_time_field, bad_time), body
    )
    for breakage, choices, quote in (
        ("unknown_enum", UNKNOWN_ENUMS, True),
        ("out_of_range", OUT_OF_RANGE, False),
    ):
        options = choices.get(contract.name, ())
        for index, (name, values) in enumerate(options):
            target = (kind == breakage) & (variant % len(options) == index)
            if target.any():
                value = _one_of(values, variant // 7)
                value = text.json_string(value) if quote else value
                body = pc.if_else(pa.array(target), set_json_member(body, name, value), body)
    truncated = body
    for index, most in enumerate(TRUNCATE_UP_TO):
        # Dropping at least the closing brace always leaves invalid JSON.
        shortened = pc.replace_substring_regex(body, f"(?s).{{1,{most}}}$", "")
        truncated = pc.if_else(pa.array(variant % len(TRUNCATE_UP_TO) == index), shortened, truncated)
    body = pc.if_else(pa.array(kind == "broken_json"), truncated, body)
    body = pc.if_else(pa.array(kind == "json_array"), text.concat("[", body, "]"), body)
    return text.concat(body, "\n")
