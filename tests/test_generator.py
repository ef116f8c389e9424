"""The synthetic source generator: contracts, determinism, ground truth and the planned messiness.

Files are read back with plain Python (csv, json, datetime) so the checks do not share code with the
generator they check.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cx_pipeline.cli import main as cli_main
from cx_pipeline.contracts import CONTRACTS, SourceContract
from cx_pipeline.generator import STAGES, GenerationSummary, GeneratorConfig, generate

# One worker runs this module, so the shared sample is generated once under `pytest -n 2 --dist loadgroup`.
pytestmark = pytest.mark.xdist_group("generator")

SAMPLE_PERSONS = 1000
PLACEHOLDER_EMAILS = {"test@example.com", "noreply@example.com", "none@none.com"}
# Where each source keeps which kind of identifier (web_events traits are handled separately).
IDENTIFIER_COLUMNS: dict[str, dict[str, str]] = {
    "crm_contacts": {"contact_id": "crm_contact_id", "email": "email", "phone": "phone"},
    "web_events": {"anonymousId": "anonymous_id", "userId": "user_id"},
    "cart_events": {"user_id": "user_id", "email": "email", "anonymous_id": "anonymous_id"},
    "product_rejections": {"user_id": "user_id", "email": "email"},
    "support_interactions": {"requester_email": "email", "requester_phone": "phone"},
    "gdpr_consents": {"email": "email", "user_id": "user_id"},
    "erasure_requests": {"email": "email", "phone": "phone", "user_id": "user_id"},
    "nps_responses": {"email": "email", "user_id": "user_id"},
}


# --- reading the files back -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    source: str
    file: str  # relative to the landing folder
    number: int  # 1-based; a CSV header is line 1
    record: dict | None  # None when the line does not parse as a record of the right shape
    problems: tuple[str, ...]


def parse_timestamp(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def normalise_email(value: str) -> str:
    return value.strip().lower()


def normalise_phone(value: str) -> str | None:
    """E.164 with the US as the default country (the rules of docs/identity.md)."""
    digits = re.sub(r"\D", "", value)
    if value.strip().startswith("+"):
        return "+" + digits
    if re.fullmatch(r"00[1-9]\d{7,14}", digits):
        return "+" + digits[2:]
    if len(digits) == 10:
        return "+1" + digits
    if len(digits) == 11 and digits.startswith("1"):
        return "+" + digits
    return None


def contract_problems(contract: SourceContract, record: dict) -> list[str]:
    """Everything a well-formed record of the contract must satisfy."""
    problems = []
    for field in contract.fields:
        value = record.get(field.name)
        empty = value is None or value == ""
        if field.required and empty:
            problems.append(f"{field.name} missing")
        if empty:
            continue
        if field.allowed and value not in field.allowed:
            problems.append(f"{field.name}={value!r} not allowed")
        if field.type == "timestamp" and parse_timestamp(str(value)) is None:
            problems.append(f"{field.name}={value!r} not a timestamp")
        if field.type in ("integer", "decimal"):
            try:
                number = float(value)
            except ValueError:
                problems.append(f"{field.name}={value!r} not a number")
                continue
            if field.type == "integer" and number != int(number):
                problems.append(f"{field.name}={value!r} not an integer")
            if field.min_value is not None and number < field.min_value:
                problems.append(f"{field.name}={value!r} below {field.min_value}")
            if field.max_value is not None and number > field.max_value:
                problems.append(f"{field.name}={value!r} above {field.max_value}")
        if field.type == "json" and not isinstance(value, dict):
            problems.append(f"{field.name} not an object")
    if contract.identifier_fields and all(
        record.get(name) in (None, "") for name in contract.identifier_fields
    ):
        problems.append("no identifier")
    return problems


def read_source(landing: Path, contract: SourceContract) -> Iterator[Line]:
    for path in sorted((landing / contract.name).glob(f"*.{contract.format}")):
        relative = f"{contract.name}/{path.name}"
        if contract.format == "csv":
            with path.open(newline="", encoding="utf-8") as handle:
                rows = csv.reader(handle)
                header = next(rows)
                assert header == list(contract.field_names), f"{relative}: header {header}"
                for row in rows:
                    if len(row) != len(header):
                        yield Line(contract.name, relative, rows.line_num, None, ("column count",))
                        continue
                    record = dict(zip(header, row, strict=True))
                    problems = tuple(contract_problems(contract, record))
                    yield Line(contract.name, relative, rows.line_num, record, problems)
        else:
            with path.open(encoding="utf-8") as handle:
                for number, text in enumerate(handle, start=1):
                    try:
                        record = json.loads(text)
                    except json.JSONDecodeError:
                        yield Line(contract.name, relative, number, None, ("broken json",))
                        continue
                    if not isinstance(record, dict):
                        yield Line(contract.name, relative, number, None, ("not an object",))
                        continue
                    problems = contract_problems(contract, record)
                    if set(record) != set(contract.field_names):
                        problems.append(f"keys {sorted(record)}")
                    yield Line(contract.name, relative, number, record, tuple(problems))


@dataclass(frozen=True)
class Sample:
    summary: GenerationSummary
    landing: Path
    truth: Path
    lines: dict[str, list[Line]]
    persons: dict[str, dict[str, str]]
    identifiers: list[dict[str, str]]
    malformed: list[dict[str, str]]

    def good(self, source: str) -> list[Line]:
        return [line for line in self.lines[source] if not line.problems]


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    root = tmp_path_factory.mktemp("generator_sample")
    config = GeneratorConfig(
        customers=SAMPLE_PERSONS, seed=7, landing_dir=root / "landing", truth_dir=root / "truth"
    )
    summary = generate(config, progress=False)
    return Sample(
        summary=summary,
        landing=config.landing_dir,
        truth=config.truth_dir,
        lines={name: list(read_source(config.landing_dir, contract)) for name, contract in CONTRACTS.items()},
        persons={row["person_id"]: row for row in read_csv(config.truth_dir / "persons.csv")},
        identifiers=read_csv(config.truth_dir / "identifiers.csv"),
        malformed=read_csv(config.truth_dir / "malformed_rows.csv"),
    )


# --- files and contracts ----------------------------------------------------------------------------------


def test_every_source_has_period_files_with_contract_fields(sample: Sample) -> None:
    for name, contract in CONTRACTS.items():
        files = sorted(path.name for path in (sample.landing / name).iterdir())
        assert files, name
        assert all(re.fullmatch(rf"\d{{4}}-\d{{2}}\.{contract.format}", f) for f in files), files
        good = sample.good(name)
        assert good, name
        # JSON lines carry every contract key (checked per line by read_source); CSV headers were asserted.
    months = sorted(path.stem for path in (sample.landing / "web_events").iterdir())
    assert months[0] == "2025-05" and months[-1] == "2026-10"


def test_summary_counts_match_the_files(sample: Sample) -> None:
    for name, source in sample.summary.sources.items():
        assert source.rows == len(sample.lines[name]), name
        for file in source.files:
            path = sample.landing / file.path
            assert path.stat().st_size == file.bytes
    saved = json.loads((sample.truth / "summary.json").read_text())
    assert saved["seed"] == 7
    assert saved["persons"] == SAMPLE_PERSONS
    assert saved["sources"]["web_events"]["rows"] == len(sample.lines["web_events"])
    assert saved["identifiers"] == len(sample.identifiers)
    assert "web_events" in sample.summary.describe()


def test_volume_is_about_fifty_web_and_cart_events_per_person(sample: Sample) -> None:
    events = sample.summary.sources["web_events"].clean + sample.summary.sources["cart_events"].clean
    assert 35 <= events / SAMPLE_PERSONS <= 70


# --- ground truth -----------------------------------------------------------------------------------------


def test_malformed_rows_are_exactly_the_lines_that_break_the_contract(sample: Sample) -> None:
    planned = {(row["file"], int(row["line"])): row["kind"] for row in sample.malformed}
    found = {
        (line.file, line.number): line.problems
        for lines in sample.lines.values()
        for line in lines
        if line.problems
    }
    assert set(found) == set(planned), {
        "unplanned": sorted(set(found) - set(planned))[:5],
        "not broken": sorted(set(planned) - set(found))[:5],
    }
    kinds = Counter(planned.values())
    for kind in ("broken_json", "json_array", "bad_timestamp", "negative_quantity", "unknown_enum"):
        assert kinds[kind] > 0, kind
    assert kinds["missing_required_id"] + kinds["missing_identifier"] > 0
    assert kinds["out_of_range"] > 0


def test_planned_share_of_malformed_rows_per_source(sample: Sample) -> None:
    share = GeneratorConfig().malformed_share
    for name, source in sample.summary.sources.items():
        broken = sum(1 for row in sample.malformed if row["source"] == name)
        assert broken == source.malformed >= 1, name
        assert broken == max(1, round(share * source.clean)), name


def test_every_identifier_in_the_files_is_in_the_truth(sample: Sample) -> None:
    known = {(row["identifier_type"], row["identifier_value"]) for row in sample.identifiers}
    seen: set[tuple[str, str]] = set()
    for source, columns in IDENTIFIER_COLUMNS.items():
        for line in sample.good(source):
            assert line.record is not None
            values = [(kind, line.record.get(column)) for column, kind in columns.items()]
            traits = line.record.get("traits") or {}
            values += [("email", traits.get("email")), ("phone", traits.get("phone"))]
            for kind, value in values:
                if value in (None, ""):
                    continue
                normalised = {"email": normalise_email, "phone": normalise_phone}.get(kind, str)(value)
                assert (kind, normalised) in known, (source, line.file, line.number, kind, value)
                seen.add((kind, normalised))
    # And nothing in the truth that no file carries.
    assert seen == known


def test_identifiers_belong_to_one_person_unless_shared(sample: Sample) -> None:
    persons_by_value: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in sample.identifiers:
        persons_by_value[(row["identifier_type"], row["identifier_value"])].add(row["person_id"])
        assert row["person_id"] in sample.persons
        assert row["is_shared"] in ("true", "false")
        if row["identifier_type"] == "phone":
            assert re.fullmatch(r"\+\d{11,12}", row["identifier_value"]), row
        if row["identifier_type"] == "email":
            assert row["identifier_value"] == normalise_email(row["identifier_value"])
    for row in sample.identifiers:
        key = (row["identifier_type"], row["identifier_value"])
        placeholder = key[1] in PLACEHOLDER_EMAILS or key == ("phone", "+10000000000")
        assert (row["is_shared"] == "true") == (len(persons_by_value[key]) > 1 or placeholder), row


def test_every_stage_is_reached_in_planned_proportions(sample: Sample) -> None:
    stages = Counter(row["final_stage"] for row in sample.persons.values())
    assert set(stages) == set(STAGES)
    assert 0.28 <= stages["discovery"] / SAMPLE_PERSONS <= 0.42
    assert stages["lapsed"] >= 0.04 * SAMPLE_PERSONS


def _person_of(sample: Sample) -> dict[tuple[str, str], str]:
    """Identifier -> person, for identifiers that belong to exactly one person."""
    return {
        (row["identifier_type"], row["identifier_value"]): row["person_id"]
        for row in sample.identifiers
        if row["is_shared"] == "false"
    }


def test_web_and_cart_activity_follows_the_stage_rules(sample: Sample) -> None:
    """discovery: no intent; consideration: no checkout; decision: nothing after the one order; loyalty and
    lapsed: bought, active or not in the last 180 days."""
    person_of = _person_of(sample)
    intent_events = {"Products Searched", "Product Viewed", "Product Added", "Product Removed", "Cart Viewed"}
    activity: dict[str, list[tuple[datetime, str, str | None]]] = defaultdict(list)
    for line in sample.good("web_events"):
        record = line.record
        person = person_of.get(("user_id", record["userId"])) or person_of.get(
            ("anonymous_id", record["anonymousId"])
        )
        if person:
            kind = record["event"] if record["type"] == "track" else record["type"]
            order = (record["properties"] or {}).get("order_id") if kind == "Order Completed" else None
            activity[person].append((parse_timestamp(record["timestamp"]), kind, order))
    for line in sample.good("cart_events"):
        record = line.record
        person = person_of.get(("user_id", record["user_id"])) or person_of.get(
            ("anonymous_id", record["anonymous_id"])
        )
        if person:
            activity[person].append(
                (parse_timestamp(record["occurred_at"]), record["event_type"], record["order_id"])
            )
    end = datetime(2026, 11, 1, tzinfo=UTC)
    for person_id, row in sample.persons.items():
        events = sorted(activity[person_id], key=lambda event: event[0])
        kinds = {kind for _, kind, _ in events}
        orders = {order for _, kind, order in events if kind in ("Order Completed", "order_placed") and order}
        stage = row["final_stage"]
        assert events, person_id
        if stage == "discovery":
            assert not kinds & (intent_events | {"Checkout Started", "Order Completed"}), person_id
            assert not kinds & {"item_added", "checkout_started", "order_placed"}, person_id
        if stage == "consideration":
            assert kinds & intent_events, person_id
            assert not kinds & {"Checkout Started", "Order Completed", "checkout_started", "order_placed"}, (
                person_id
            )
        if stage == "decision":
            assert "Checkout Started" in kinds, person_id
            assert len(orders) <= 1, person_id
            if orders:
                first_order = min(
                    when for when, kind, _ in events if kind in ("Order Completed", "order_placed")
                )
                assert events[-1][0] == first_order, person_id
                assert end - first_order < timedelta(days=180), person_id
        if stage in ("loyalty", "lapsed"):
            assert orders, person_id
            assert int(row["orders"]) >= len(orders), person_id
            idle = end - events[-1][0]
            assert idle < timedelta(days=180) if stage == "loyalty" else idle > timedelta(days=180), person_id
        # Events on a family device are not attributable here, so the truth may start earlier.
        assert parse_timestamp(row["first_seen_at"]) <= events[0][0], person_id
        assert parse_timestamp(row["last_seen_at"]) >= events[-1][0], person_id


@pytest.fixture(scope="module")
def records_by_person(sample: Sample) -> dict[str, list[tuple[str, dict]]]:
    """Well-formed records attributed through identifiers that belong to one person only."""
    person_of = _person_of(sample)
    records: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for source, columns in IDENTIFIER_COLUMNS.items():
        for line in sample.good(source):
            persons = set()
            for column, kind in columns.items():
                value = line.record.get(column)
                if value:
                    normalised = {"email": normalise_email, "phone": normalise_phone}.get(kind, str)(value)
                    persons.add(person_of.get((kind, normalised)))
            persons.discard(None)
            if len(persons) == 1:
                records[persons.pop()].append((source, line.record))
    return records


def test_loyal_customers_engage_after_their_first_order(
    sample: Sample, records_by_person: dict[str, list[tuple[str, dict]]]
) -> None:
    """Loyalty needs a repeat order, ticket, survey answer or return after the first order."""
    time_field = {name: contract.event_time_field for name, contract in CONTRACTS.items()}
    for person, records in records_by_person.items():
        if sample.persons[person]["final_stage"] != "loyalty":
            continue
        orders: dict[str, datetime] = {}
        for source, record in records:
            if source == "cart_events" and record["event_type"] == "order_placed":
                orders.setdefault(record["order_id"], parse_timestamp(record["occurred_at"]))
        first_order = min(orders.values())
        engaged = len(orders) > 1 or any(
            parse_timestamp(record[time_field[source]]) > first_order
            for source, record in records
            if source in ("support_interactions", "nps_responses")
            or (source == "product_rejections" and record["rejection_type"] == "returned")
        )
        assert engaged, person


def test_no_record_of_a_person_comes_after_their_last_seen_at(
    sample: Sample, records_by_person: dict[str, list[tuple[str, dict]]]
) -> None:
    time_field = {name: contract.event_time_field for name, contract in CONTRACTS.items()}
    for person, records in records_by_person.items():
        first_seen = parse_timestamp(sample.persons[person]["first_seen_at"])
        last_seen = parse_timestamp(sample.persons[person]["last_seen_at"])
        for source, record in records:
            assert first_seen <= parse_timestamp(record[time_field[source]]) <= last_seen, (person, source)


def _record_identifiers(source: str, record: dict) -> set[tuple[str, str]]:
    """The normalised identifiers one well-formed record carries (identify traits included)."""
    found = set()
    for column, kind in IDENTIFIER_COLUMNS[source].items():
        value = record.get(column)
        if value:
            normalised = {"email": normalise_email, "phone": normalise_phone}.get(kind, str)(value)
            if normalised:
                found.add((kind, normalised))
    traits = (record.get("traits") or {}) if source == "web_events" else {}
    if traits.get("email"):
        found.add(("email", normalise_email(traits["email"])))
    if traits.get("phone") and normalise_phone(traits["phone"]):
        found.add(("phone", normalise_phone(traits["phone"])))
    return found


def test_every_pair_of_a_persons_identifiers_is_tied_by_records(sample: Sample) -> None:
    """The truth claims no link the records cannot support (docs/generator.md, "Devices and sign-ins").

    Records carrying two of a person's own (non-shared) identifiers tie them; shared identifiers (family
    devices, placeholders) tie nothing. Each person's own identifiers must then be one connected group, and
    no record may carry own identifiers of two persons.
    """
    person_of = _person_of(sample)
    parent = {key: key for key in person_of}

    def find(key: tuple[str, str]) -> tuple[str, str]:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for source in IDENTIFIER_COLUMNS:
        for line in sample.good(source):
            own = sorted(key for key in _record_identifiers(source, line.record) if key in person_of)
            assert len({person_of[key] for key in own}) <= 1, (source, line.record)
            for a, b in itertools.pairwise(own):
                parent[find(a)] = find(b)
    groups_of: dict[str, set] = defaultdict(set)
    for key, person in person_of.items():
        groups_of[person].add(find(key))
    split = {person: len(groups) for person, groups in groups_of.items() if len(groups) > 1}
    assert split == {}


def test_devices_and_log_ins(sample: Sample) -> None:
    """Persons who never sign in browse on one device; the others log in on every device they use, some
    after browsing on it anonymously in earlier sessions."""
    devices_of: dict[str, set[str]] = defaultdict(set)
    signs_in = set()
    for row in sample.identifiers:
        if row["identifier_type"] == "anonymous_id":
            devices_of[row["person_id"]].add(row["identifier_value"])
        if row["identifier_type"] == "user_id":
            signs_in.add(row["person_id"])
    never = [person for person in sample.persons if person not in signs_in]
    assert never and all(len(devices_of[person]) == 1 for person in never)
    assert any(len(devices_of[person]) > 1 for person in signs_in)

    user_of = {
        row["identifier_value"]: row["person_id"]
        for row in sample.identifiers
        if row["identifier_type"] == "user_id"
    }
    logged_in: set[tuple[str, str]] = set()  # (person, device)
    first_seen: dict[str, datetime] = {}
    log_in_at: dict[tuple[str, str], datetime] = {}
    for line in sample.good("web_events"):
        record = line.record
        when = parse_timestamp(record["timestamp"])
        device = record["anonymousId"]
        first_seen[device] = min(first_seen.get(device, when), when)
        if record["type"] == "identify":
            key = (user_of[record["userId"]], device)
            logged_in.add(key)
            log_in_at[key] = min(log_in_at.get(key, when), when)
    missing = {(person, device) for person in signs_in for device in devices_of[person]} - logged_in
    assert missing == set()
    late = [key for key, when in log_in_at.items() if when - first_seen[key[1]] > timedelta(hours=2)]
    assert len(late) > 0.1 * len(log_in_at)


def test_phones_come_with_a_tie_to_the_person(sample: Sample) -> None:
    """A ticket or erasure request with a real phone carries the email; a phone-only CRM duplicate holds a
    number another contact of the person holds."""
    for source, email_column, phone_column in (
        ("support_interactions", "requester_email", "requester_phone"),
        ("erasure_requests", "email", "phone"),
    ):
        for line in sample.good(source):
            phone = normalise_phone(line.record[phone_column] or "")
            if phone and phone != "+10000000000":
                email = normalise_email(line.record[email_column] or "")
                assert email and email not in PLACEHOLDER_EMAILS, (source, line.record)
    contacts_with_email: dict[str, set[str]] = defaultdict(set)
    phone_only = []
    person_of = _person_of(sample)
    for line in sample.good("crm_contacts"):
        record = line.record
        phone = normalise_phone(record["phone"] or "")
        if record["email"]:
            if phone:
                contacts_with_email[person_of[("crm_contact_id", record["contact_id"])]].add(phone)
        elif phone:
            phone_only.append((person_of[("crm_contact_id", record["contact_id"])], phone))
    assert phone_only, "the sample must have phone-only CRM duplicates"
    assert all(phone in contacts_with_email[person] for person, phone in phone_only)


# --- messiness --------------------------------------------------------------------------------------------


def test_family_devices_are_shared_and_both_persons_sign_in_on_them(sample: Sample) -> None:
    shared = defaultdict(set)
    for row in sample.identifiers:
        if row["identifier_type"] == "anonymous_id" and row["is_shared"] == "true":
            shared[row["identifier_value"]].add(row["person_id"])
    assert shared and all(len(persons) == 2 for persons in shared.values())
    users_on_device = defaultdict(set)
    for line in sample.good("web_events"):
        if line.record["type"] == "identify" and line.record["anonymousId"] in shared:
            users_on_device[line.record["anonymousId"]].add(line.record["userId"])
    assert all(len(users_on_device[device]) == 2 for device in shared)


def test_placeholders_are_used_by_many_people(sample: Sample) -> None:
    placeholder_rows = [row for row in sample.identifiers if row["identifier_value"] in PLACEHOLDER_EMAILS]
    assert placeholder_rows and all(row["is_shared"] == "true" for row in placeholder_rows)
    assert len({row["person_id"] for row in placeholder_rows}) > 5
    guest_checkouts = {
        normalise_email(line.record["email"])
        for line in sample.good("cart_events")
        if line.record["email"] and not line.record["user_id"]
    }
    assert guest_checkouts & PLACEHOLDER_EMAILS
    tickets = {
        normalise_email(line.record["requester_email"] or "") for line in sample.good("support_interactions")
    }
    assert tickets & PLACEHOLDER_EMAILS


def test_identifiers_are_typed_in_many_ways(sample: Sample) -> None:
    emails = [line.record["email"] for line in sample.good("cart_events") if line.record["email"]]
    emails += [line.record["email"] for line in sample.good("crm_contacts") if line.record["email"]]
    assert any(email != email.strip() for email in emails)
    assert any(email.strip() != email.strip().lower() for email in emails)
    phones = [line.record["phone"] for line in sample.good("crm_contacts") if line.record["phone"]]
    phones += [
        line.record["requester_phone"]
        for line in sample.good("support_interactions")
        if line.record["requester_phone"]
    ]
    shapes = {re.sub(r"\d", "9", phone) for phone in phones}
    assert {"(999) 999-9999", "999.999.9999", "9999999999", "+9 999 999 9999", "9999999999999"} <= shapes
    assert any(phone.startswith(("+44", "0044")) for phone in phones)
    assert "0000000000" in phones
    timestamps = [line.record["timestamp"] for line in sample.good("web_events")]
    assert any(t.endswith("Z") and "T" in t for t in timestamps)
    assert any(re.search(r"[+-]\d\d:\d\d$", t) for t in timestamps)
    assert any(" " in t and "." in t for t in timestamps)


def test_duplicate_and_late_deliveries(sample: Sample) -> None:
    for source, key in (("web_events", "messageId"), ("cart_events", "event_id")):
        files_of = defaultdict(list)
        for line in sample.good(source):
            files_of[line.record[key]].append(line.file)
        repeated = [files for files in files_of.values() if len(files) > 1]
        assert len(repeated) == sample.summary.sources[source].duplicates > 0, source
        assert any(len(set(files)) > 1 for files in repeated), source
    # Late rows sit in a later month's file than their event time, never in an earlier one.
    for source in ("cart_events", "support_interactions", "gdpr_consents"):
        contract = CONTRACTS[source]
        late = 0
        for line in sample.good(source):
            event_month = (
                parse_timestamp(line.record[contract.event_time_field]).astimezone(UTC).strftime("%Y-%m")
            )
            assert event_month <= Path(line.file).stem, (source, line.file, line.number)
            late += event_month < Path(line.file).stem
        assert late == sample.summary.sources[source].late, source
    assert sample.summary.sources["web_events"].late > 0


def test_lines_within_a_file_are_not_time_sorted(sample: Sample) -> None:
    times = [parse_timestamp(line.record["occurred_at"]) for line in sample.good("cart_events")[:2000]]
    assert any(later < earlier for earlier, later in itertools.pairwise(times))


def test_some_persons_ask_for_erasure(sample: Sample) -> None:
    erased = [row for row in sample.persons.values() if row["erased"] == "true"]
    assert len(erased) >= 2
    assert len(sample.good("erasure_requests")) == len(erased)


# --- runs -------------------------------------------------------------------------------------------------


def _digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _small(root: Path, seed: int, **overrides: object) -> GeneratorConfig:
    return GeneratorConfig(
        customers=150, seed=seed, landing_dir=root / "landing", truth_dir=root / "truth", **overrides
    )


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    generate(_small(tmp_path / "a", seed=11), progress=False)
    generate(_small(tmp_path / "b", seed=11), progress=False)
    generate(_small(tmp_path / "c", seed=12), progress=False)
    first, again, other = (_digest(tmp_path / name) for name in "abc")
    assert first == again
    assert set(first) == set(other) or first.keys() & other.keys()
    assert all(first[name] != other.get(name) for name in first if not name.endswith("summary.json"))


def test_regenerating_replaces_only_the_files_it_owns(tmp_path: Path) -> None:
    config = _small(tmp_path, seed=3)
    stale = config.landing_dir / "crm_contacts" / "2024-01.csv"
    foreign = config.landing_dir / "crm_contacts" / "notes.txt"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    foreign.write_text("keep me")
    generate(config, progress=False)
    assert not stale.exists()
    assert foreign.read_text() == "keep me"
    assert not list(config.landing_dir.glob(".*"))  # the staging folder is gone


def test_daily_files_and_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landing, truth = tmp_path / "landing", tmp_path / "truth"
    code = cli_main(
        [
            "generate",
            "--customers",
            "30",
            "--seed",
            "5",
            "--file-period",
            "day",
            "--no-progress",
            "--landing",
            str(landing),
            "--truth",
            str(truth),
        ]
    )
    assert code == 0
    assert "Generated 30 persons" in capsys.readouterr().out
    names = [path.name for path in (landing / "web_events").iterdir()]
    assert names and all(re.fullmatch(r"\d{4}-\d{2}-\d{2}\.jsonl", name) for name in names)
    for row in read_csv(truth / "malformed_rows.csv"):
        assert re.fullmatch(r"\w+/\d{4}-\d{2}-\d{2}\.(csv|jsonl)", row["file"])


def test_config_rejects_impossible_ranges() -> None:
    with pytest.raises(ValueError, match="date range"):
        GeneratorConfig(start_date=datetime(2026, 1, 1).date(), end_date=datetime(2026, 3, 1).date())
    with pytest.raises(ValueError, match="customers"):
        GeneratorConfig(customers=0)
