"""``generate_next_day``: one more day of the population a ``generate`` run created.

The day after the truth's end date (``truth/state.json``) gets new landing files of its own,
``<source>/day-<YYYY-MM-DD>.<csv|jsonl>``; files written before are never touched. What a day holds, each in a
small configurable amount (``DayAmounts``):

- a session (web events, cart events, sometimes a repeat order) of ~1 % of the existing persons, and a
  support ticket or an NPS answer from some of the loyal ones among them;
- a few new persons, on their first visit (some sign up);
- late events: a share of the sessions happened a few days back and is only delivered today;
- CRM corrections: the latest version of a contact re-exported with a new phone number or a new last name
  (the same ``contact_id`` with a newer ``updated_at``: a new record, as every CRM re-export is);
- merges: an identify call of a signed-in person whose traits carry another known person's email, so the two
  are one person from now on (the truth moves every identifier of the email's owner to the signed-in person;
  both never bought, so no journey stage changes);
- consent changes (withdrawals and grants) and a handful of erasure requests of existing persons.

Everything is drawn from the seed and the day number, so the same base and the same amounts give the same
bytes. The persons are not read back from the landing files: ``draw_persons`` is the first draw of every
chunk's random stream, so the population is drawn again from the seed; the truth folder adds what the
journeys decided (who signed up, who is known by email, the CRM contacts, who was erased or merged).
The truth files are rewritten to include the day (persons, identifiers, CRM contacts, malformed rows,
merges, state).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from cx_pipeline.contracts import CONSENT_PURPOSES, CONTRACTS, TICKET_PRIORITIES
from cx_pipeline.generator import text, vocab
from cx_pipeline.generator.accounts import (
    CONSENT_TIMES,
    CRM_TIMES,
    ERASURE_TIMES,
    person_emails,
    person_phones,
)
from cx_pipeline.generator.config import (
    CHUNK_PERSONS,
    CONSIDERATION,
    DAY_MS,
    DISCOVERY,
    HOUR_MS,
    LAPSED,
    LOYALTY,
    MINUTE_MS,
    STAGES,
    Clock,
)
from cx_pipeline.generator.delivery import plan_delivery
from cx_pipeline.generator.engagement import NPS_TIMES, TICKET_TIMES
from cx_pipeline.generator.ids import IdAllocator
from cx_pipeline.generator.journeys import cart_records, web_orders_of
from cx_pipeline.generator.population import (
    MAX_PERSONS,
    Persons,
    changed_phone_numbers,
    draw_persons,
    typed_emails,
    typed_phones,
)
from cx_pipeline.generator.records import (
    ColumnRecords,
    IdentifierSink,
    SourceRecords,
    TimestampStyle,
    render_timestamps,
)
from cx_pipeline.generator.segment import OFFSET_SHARE, SPACE_SHARE, web_records
from cx_pipeline.generator.sessions import ADD, Orders, Sessions, event_counts, lay_out_events
from cx_pipeline.generator.writer import (
    CRM_STATE_FILE,
    IDENTIFIERS_FILE,
    MALFORMED_FILE,
    MERGE_COLUMNS,
    MERGES_FILE,
    NEXT_DAY_PREFIX,
    PERSON_COLUMNS,
    PERSONS_FILE,
    STAGING_NAME,
    STATE_FILE,
    LandingWriter,
    string_bytes,
    write_identifier_truth,
)
from cx_pipeline.sql import compose, quote_literal

# Random stream tags (a chunk's stream is [seed, chunk]; chunks are far fewer than these).
DAY_STREAM = 1_000_002
NEW_PERSONS_STREAM = 1_000_001

REPEAT_ORDER_SHARE = 0.2  # of the day's loyal sessions
TICKET_SHARE = 0.1  # of the day's active loyal persons known by email
NPS_SHARE = 0.08
LATE_DAYS = (1, 6)  # a late session happened this many days before the day (upper bound excluded)
SESSION_LATEST_MS = 20 * HOUR_MS  # sessions start early enough to end (and any cart event) within the day
WEB_TIMES = TimestampStyle(offset_share=OFFSET_SHARE, space_share=SPACE_SHARE, millis_share=0.7)
# Stages whose persons may be active on a next day without changing stage: discovery visitors browse pages,
# considering ones look at products without buying, loyal ones shop again. Decision-stage buyers (one order
# and nothing after it) and lapsed ones stay away.
ACTIVE_STAGES = (DISCOVERY, CONSIDERATION, LOYALTY)
PHASE_OF_STAGE = {DISCOVERY: 0, CONSIDERATION: 1, LOYALTY: 3}


@dataclass(frozen=True)
class DayAmounts:
    """How much of each kind one next day holds; ``None`` scales the count with the population."""

    active_share: float = 0.01
    late_share: float = 0.05  # of the day's sessions (at least one when there are sessions)
    new_people: int | None = None
    crm_corrections: int | None = None
    merges: int | None = None
    consent_changes: int | None = None
    erasures: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.active_share <= 0.5:
            raise ValueError(f"active_share must be within [0, 0.5], got {self.active_share}")
        if not 0 <= self.late_share <= 1:
            raise ValueError(f"late_share must be within [0, 1], got {self.late_share}")
        for name in ("new_people", "crm_corrections", "merges", "consent_changes", "erasures"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")

    def counts(self, persons: int) -> dict[str, int]:
        """Planted counts for a population of ``persons`` (defaults: a few per ten thousand)."""

        def scaled(value: int | None, per_person: float, minimum: int) -> int:
            return value if value is not None else max(minimum, round(persons * per_person))

        return {
            "active": round(persons * self.active_share),
            "new_people": scaled(self.new_people, 0.0005, 2),
            "crm_corrections": scaled(self.crm_corrections, 0.0005, 2),
            "merges": scaled(self.merges, 0.0002, 1),
            "consent_changes": scaled(self.consent_changes, 0.001, 2),
            "erasures": self.erasures,
        }


@dataclass(frozen=True)
class DaySummary:
    day: date
    day_number: int  # 1 = the day after the base generation's end date
    planted: dict[str, int]  # what was asked for and could be placed (see DayAmounts.counts)
    rows: dict[str, int]  # delivered lines per source (duplicates and malformed rows included)
    malformed: int
    files: tuple[str, ...]
    elapsed_seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "date": self.day.isoformat(),
            "day_number": self.day_number,
            "planted": self.planted,
            "rows": self.rows,
            "malformed": self.malformed,
            "files": list(self.files),
        }

    def describe(self) -> str:
        planted = ", ".join(f"{name} {count:,}" for name, count in self.planted.items())
        rows = ", ".join(f"{source} {count:,}" for source, count in self.rows.items() if count)
        return (
            f"Next day {self.day} (day {self.day_number}) in {self.elapsed_seconds:.1f} s\n"
            f"  planted: {planted}\n  rows: {rows} ({self.malformed:,} malformed)"
        )


def generate_next_days(
    landing_dir: Path, truth_dir: Path, days: int = 1, amounts: DayAmounts | None = None
) -> list[DaySummary]:
    """Write ``days`` consecutive next days of the population in ``truth_dir`` into ``landing_dir``."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    return [generate_next_day(landing_dir, truth_dir, amounts) for _ in range(days)]


# --- what the truth knows ---------------------------------------------------------------------------------


def load_state(truth_dir: Path) -> dict[str, Any]:
    path = truth_dir / STATE_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: --next-day continues a population generated by `cx360 generate` "
            "(with this version, which writes state.json into the truth folder)"
        )
    return json.loads(path.read_text())


def _read_csv(path: Path, columns: tuple[str, ...]) -> pa.Table:
    """A truth CSV with every column as text (empty fields as null)."""
    options = pacsv.ConvertOptions(
        column_types=dict.fromkeys(columns, pa.string()),
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    table = pacsv.read_csv(path, convert_options=options)
    if tuple(table.column_names) != columns:
        raise ValueError(f"{path}: columns {table.column_names} differ from {list(columns)}")
    return table


def _person_index(person_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Global index of person ids ``P0000001``..."""
    digits = pc.utf8_slice_codeunits(person_ids, 1, 8)
    return pc.cast(digits, pa.int64()).to_numpy(zero_copy_only=False) - 1


@dataclass
class Known:
    """Per global person index: what the truth says the shop knows."""

    stage: np.ndarray
    erased: np.ndarray
    merged_away: np.ndarray
    absorbed: np.ndarray  # another person merged into this one before
    email: np.ndarray  # canonical email, '' when the shop knows none
    user_id: np.ndarray  # '' when never signed up
    anonymous_id: np.ndarray  # one non-shared device id of a signed-up person, '' when none
    contacts: pa.Table  # crm_contacts.csv of the truth
    contact_person: np.ndarray

    @property
    def available(self) -> np.ndarray:
        return ~self.erased & ~self.merged_away


def load_known(truth_dir: Path, persons: int) -> Known:
    people = _read_csv(truth_dir / PERSONS_FILE, PERSON_COLUMNS)
    index = _person_index(people["person_id"])
    stage = np.full(persons, -1, dtype=np.int64)
    stage[index] = pc.index_in(people["final_stage"], pa.array(STAGES)).to_numpy(zero_copy_only=False)
    erased = np.zeros(persons, dtype=bool)
    erased[index] = pc.equal(people["erased"], "true").to_numpy(zero_copy_only=False)
    merged_away = np.zeros(persons, dtype=bool)
    absorbed = np.zeros(persons, dtype=bool)
    if (truth_dir / MERGES_FILE).exists():
        merges = _read_csv(truth_dir / MERGES_FILE, MERGE_COLUMNS)
        merged_away[_person_index(merges["person_id"])] = True
        absorbed[_person_index(merges["merged_into"])] = True

    identifiers = _read_csv(
        truth_dir / IDENTIFIERS_FILE, ("identifier_type", "identifier_value", "person_id", "is_shared")
    )
    own = identifiers.filter(pc.equal(identifiers["is_shared"], "false"))
    found = {}
    for identifier_type in ("email", "user_id", "anonymous_id"):
        rows = own.filter(pc.equal(own["identifier_type"], identifier_type))
        # One value per person: the smallest (a merged person may hold two emails).
        first = rows.group_by("person_id").aggregate([("identifier_value", "min")])
        values = np.full(persons, "", dtype=object)
        values[_person_index(first["person_id"])] = first["identifier_value_min"].to_numpy(
            zero_copy_only=False
        )
        found[identifier_type] = values
    has_user = found["user_id"] != ""
    contacts = _read_csv(truth_dir / CRM_STATE_FILE, ("person_id", *CONTRACTS["crm_contacts"].field_names))
    return Known(
        stage=stage,
        erased=erased,
        merged_away=merged_away,
        absorbed=absorbed,
        email=found["email"],
        user_id=found["user_id"],
        anonymous_id=np.where(has_user, found["anonymous_id"], ""),
        contacts=contacts,
        contact_person=_person_index(contacts["person_id"]),
    )


# --- who does what today ----------------------------------------------------------------------------------


@dataclass
class Cast:
    """Global person indices (and contact rows) chosen for each kind of today's content."""

    active: np.ndarray
    late: np.ndarray  # subset of active: the session happened days ago
    erasures: np.ndarray
    merge_from: np.ndarray  # persons whose email shows up in merge_into's identify call
    merge_into: np.ndarray
    corrections: np.ndarray  # rows of Known.contacts
    consents: np.ndarray
    new_first: int
    new_count: int


def _pick(rng: np.random.Generator, candidates: np.ndarray, count: int) -> np.ndarray:
    count = min(count, len(candidates))
    return np.sort(rng.choice(candidates, size=count, replace=False)) if count else np.zeros(0, np.int64)


def cast_day(
    rng: np.random.Generator, known: Known, counts: dict[str, int], late_share: float, persons: int
) -> Cast:
    """Choose today's persons; erased, merged and merging persons do nothing else today.

    Nothing planted may change a person's journey stage (docs/journey.md): lapsed buyers get no record but
    an erasure request (any activity would end their lapse), and merges join two persons who never bought
    (the merged person is then in the later of their two stages, see ``_update_truth``).
    """
    free = known.available.copy()
    has_email = known.email != ""
    settled = known.stage != LAPSED
    erasures = _pick(rng, np.flatnonzero(free & has_email), counts["erasures"])
    free[erasures] = False
    # A person who absorbed another holds two sets of devices and ids: left out of further merges, so an
    # identify call never pairs the other person's device with this one's user id (a shared device).
    browsing = np.isin(known.stage, (DISCOVERY, CONSIDERATION)) & ~known.absorbed
    signed_in = (known.anonymous_id != "") & has_email
    merge_into = _pick(rng, np.flatnonzero(free & browsing & signed_in), counts["merges"])
    free[merge_into] = False
    merge_from = _pick(rng, np.flatnonzero(free & browsing & has_email), len(merge_into))
    merge_into = merge_into[: len(merge_from)]
    merge_into = rng.permutation(merge_into)  # pairs at random, not by index order
    free[merge_from] = False
    free[merge_into] = True  # the surviving person may do anything else today
    free &= settled
    contact_free = np.flatnonzero(free[known.contact_person])
    corrections = _pick(rng, contact_free, counts["crm_corrections"])
    # One correction per person and day.
    corrections = corrections[np.unique(known.contact_person[corrections], return_index=True)[1]]
    consents = _pick(rng, np.flatnonzero(free & has_email), counts["consent_changes"])
    active = _pick(rng, np.flatnonzero(free & np.isin(known.stage, ACTIVE_STAGES)), counts["active"])
    late_count = max(1, round(len(active) * late_share)) if len(active) and late_share > 0 else 0
    late = _pick(rng, active, late_count)
    return Cast(
        active=active,
        late=late,
        erasures=erasures,
        merge_from=merge_from,
        merge_into=merge_into,
        corrections=np.sort(corrections),
        consents=consents,
        new_first=persons,
        new_count=min(counts["new_people"], MAX_PERSONS - persons),
    )


# --- the population, chunk by chunk -----------------------------------------------------------------------


@dataclass
class Chunk:
    number: int
    persons: Persons

    @property
    def first(self) -> int:
        return self.persons.first_global

    def local(self, global_index: np.ndarray) -> np.ndarray:
        """Local indices of the persons of ``global_index`` that belong to this chunk."""
        inside = (global_index >= self.first) & (global_index < self.first + self.persons.count)
        return global_index[inside] - self.first


def new_persons(seed: int, day_number: int, first: int, count: int) -> Persons:
    """The persons who first came on ``day_number``: first-time visitors (discovery stage)."""
    drawn = draw_persons(
        np.random.default_rng([seed, NEW_PERSONS_STREAM, day_number]), first, count, salt=seed
    )
    return replace(drawn, stage=np.full(count, DISCOVERY, dtype=np.int8))


def population(state: dict[str, Any], today: tuple[int, int, int] | None = None) -> Iterator[Chunk]:
    """Every person, chunk after chunk, drawn again from the seed (base chunks, then each day's newcomers)."""
    seed = state["seed"]
    number = 0
    for chunk_index, first in enumerate(range(0, state["customers"], CHUNK_PERSONS)):
        size = min(CHUNK_PERSONS, state["customers"] - first)
        yield Chunk(number, draw_persons(np.random.default_rng([seed, chunk_index]), first, size, salt=seed))
        number += 1
    batches = [(d["day_number"], d["first_new_person"], d["new_people"]) for d in state["days"]]
    for day_number, first, count in [*batches, *([today] if today else [])]:
        if count:
            yield Chunk(number, new_persons(seed, day_number, first, count))
            number += 1


# --- today's records of one chunk -------------------------------------------------------------------------


@dataclass
class ChunkDay:
    records: list[SourceRecords] = field(default_factory=list)
    last_seen_person: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # global
    last_seen_ms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    order_person: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # global, one per order
    new_corrections: list[pa.Table] = field(default_factory=list)


def _day_times(rng: np.random.Generator, day_start: int, count: int) -> np.ndarray:
    return day_start + (rng.random(count) * SESSION_LATEST_MS).astype(np.int64) // 1000 * 1000


def _empty_orders() -> Orders:
    empty = np.zeros(0, dtype=np.int64)
    return Orders(
        order_id=pa.array([], pa.string()),
        person=empty,
        time_ms=empty,
        channel=empty,
        with_user=np.zeros(0, dtype=bool),
        email_typed=pa.array([], pa.string()),
        email_normalised=pa.array([], pa.string()),
        line_order=empty,
        line_product=empty,
        line_quantity=empty,
    )


def _sessions(
    rng: np.random.Generator,
    persons: Persons,
    person: np.ndarray,
    start_ms: np.ndarray,
    phase: np.ndarray,
    signed_in: np.ndarray,
    signs_up: np.ndarray,
) -> Sessions:
    """One session per person: browsing by phase, loyal persons sometimes ordering again."""
    count = len(person)
    order = (phase == 3) & (rng.random(count) < REPEAT_ORDER_SHARE)
    no = np.zeros(count, dtype=bool)
    tagged = rng.random(count) < 0.2
    referrer = np.where(
        ~tagged & (rng.random(count) < 0.5), rng.integers(0, len(vocab.ORGANIC_REFERRERS), count), -1
    )
    referrer = np.where(np.array([r is None for r in vocab.ORGANIC_REFERRERS])[referrer], -1, referrer)
    return Sessions(
        person=person,
        position=np.ones(count, dtype=np.int64),
        start_ms=start_ms,
        phase=phase.astype(np.int8),
        device=persons.device_first[person],
        checkout=order,
        order=order,
        abandon=no,
        identify_here=signs_up,
        user_known=signed_in,
        campaign=np.where(tagged, rng.integers(0, len(vocab.CAMPAIGNS), count), -1),
        organic_referrer=referrer,
        kind_counts=event_counts(rng, phase, order, no, signs_up),
    )


def _visits(
    rng: np.random.Generator,
    chunk: Chunk,
    known: Known,
    cast: Cast,
    day_start: int,
    ids: IdAllocator,
    sink: IdentifierSink,
    out: ChunkDay,
) -> None:
    """Sessions of today's active persons (some days back) and newcomers, with their cart events."""
    persons = chunk.persons
    active = chunk.local(cast.active)
    newcomer = chunk.first >= cast.new_first
    if newcomer:
        active = np.arange(persons.count)
    if not len(active):
        return
    start_ms = _day_times(rng, day_start, len(active))
    late = np.isin(active + chunk.first, cast.late)
    start_ms = np.where(late, start_ms - rng.integers(*LATE_DAYS, len(active)) * DAY_MS, start_ms)
    if newcomer:
        phase = np.zeros(len(active), dtype=np.int64)
        signed_in = np.zeros(len(active), dtype=bool)
        signs_up = persons.identified[active]
    else:
        stage = known.stage[active + chunk.first]
        phase = np.array([PHASE_OF_STAGE.get(int(s), 0) for s in stage], dtype=np.int64)
        signed_in = known.user_id[active + chunk.first] != ""
        signs_up = np.zeros(len(active), dtype=bool)
    sessions = _sessions(rng, persons, active, start_ms, phase, signed_in, signs_up)
    layout = lay_out_events(rng, persons, sessions)
    has_cart = sessions.kind_counts[:, ADD] > 0
    cart_id = text.scatter(text.hex_ids(rng, int(has_cart.sum()), "cart_", 16), has_cart)
    web_orders = web_orders_of(persons, sessions, layout, ids)
    # Guests give their own email at checkout; signed-in persons half of the time.
    canonical = persons.email.take(pa.array(sessions.person))
    given = sessions.checkout & (~sessions.user_known | (rng.random(len(sessions)) < 0.5))
    checkout_email = (text.where(given, typed_emails(rng, canonical)), text.where(given, canonical))
    web = web_records(rng, persons, sessions, layout, cart_id, web_orders, sink)
    cart = cart_records(
        rng, persons, sessions, layout, cart_id, web_orders, _empty_orders(), checkout_email, sink
    )
    out.records += [web, cart]
    out.order_person = web_orders.person + chunk.first
    if not newcomer:
        loyal_known = (phase == 3) & (known.email[active + chunk.first] != "")
        out.records += [
            _tickets(
                rng,
                persons,
                active[loyal_known & (rng.random(len(active)) < TICKET_SHARE)],
                day_start,
                ids,
                sink,
            ),
            _nps(
                rng,
                persons,
                known,
                chunk.first,
                active[loyal_known & (rng.random(len(active)) < NPS_SHARE)],
                day_start,
                ids,
                sink,
            ),
        ]


def _tickets(
    rng: np.random.Generator,
    persons: Persons,
    person: np.ndarray,
    day_start: int,
    ids: IdAllocator,
    sink: IdentifierSink,
) -> ColumnRecords:
    """Tickets opened today, by email, chat or web form: new, or open with a first answer."""
    count = len(person)
    created = _day_times(rng, day_start, count)
    opened = rng.random(count) < 0.5
    first_response = np.minimum(created + rng.integers(5, 180, count) * MINUTE_MS, day_start + DAY_MS - 1000)
    channel = rng.choice([0, 1, 4], size=count, p=[0.5, 0.3, 0.2])  # email, chat, web_form
    topic = rng.integers(0, len(vocab.TICKET_TOPICS), count)
    subjects = [subject for _, options in vocab.TICKET_TOPICS for subject in options]
    email_typed, email_normalised = person_emails(rng, persons, person, 0.0)
    sink.add("email", email_normalised, person)
    offsets = persons.utc_offset_minutes[person]
    columns = {
        "ticket_id": ids.take("ticket", count),
        "requester_email": email_typed,
        "requester_phone": text.nulls(count),
        "channel": text.lookup(("email", "chat", "phone", "social", "web_form"), channel),
        "category": text.lookup([category for category, _ in vocab.TICKET_TOPICS], topic),
        "subject": text.lookup(subjects, topic * 3 + rng.integers(0, 3, count)),
        "status": text.lookup(("new", "open"), opened.astype(np.int64)),
        "priority": text.lookup(TICKET_PRIORITIES, rng.choice(4, size=count, p=[0.2, 0.6, 0.15, 0.05])),
        "created_at": render_timestamps(rng, created, offsets, TICKET_TIMES),
        "first_response_at": text.where(
            opened, render_timestamps(rng, first_response, offsets, TICKET_TIMES)
        ),
        "solved_at": text.nulls(count),
        "csat_score": text.nulls(count),
        "ces_score": text.nulls(count),
    }
    return ColumnRecords("support_interactions", columns, person, created)


def _nps(
    rng: np.random.Generator,
    persons: Persons,
    known: Known,
    first: int,
    person: np.ndarray,
    day_start: int,
    ids: IdAllocator,
    sink: IdentifierSink,
) -> ColumnRecords:
    """Relationship surveys answered today by loyal customers, mostly promoters."""
    count = len(person)
    time_ms = _day_times(rng, day_start, count)
    score = np.minimum(rng.choice(11, size=count, p=np.array([1, 1, 1, 1, 2, 3, 4, 8, 14, 25, 40]) / 100), 10)
    band = np.where(score <= 6, "detractor", np.where(score <= 8, "passive", "promoter"))
    comment = [vocab.NPS_COMMENTS[b][int(rng.integers(0, len(vocab.NPS_COMMENTS[b])))] for b in band]
    with_user = (known.user_id[person + first] != "") & (rng.random(count) < 0.7)
    email_typed, email_normalised = person_emails(rng, persons, person, 0.0)
    with_email = ~with_user | (rng.random(count) < 0.6)
    user_id = text.where(with_user, persons.user_id.take(pa.array(person)))
    sink.add("user_id", user_id, person)
    sink.add("email", text.where(with_email, email_normalised), person)
    columns = {
        "response_id": ids.take("nps", count),
        "email": text.where(with_email, email_typed),
        "user_id": user_id,
        "score": text.integer_strings(score),
        "comment": text.where(rng.random(count) < 0.45, pa.array(comment, pa.string())),
        "touchpoint": text.constant("relationship", count),
        "channel": text.lookup(("email", "web", "app"), rng.choice(3, size=count, p=[0.6, 0.25, 0.15])),
        "responded_at": render_timestamps(rng, time_ms, persons.utc_offset_minutes[person], NPS_TIMES),
    }
    return ColumnRecords("nps_responses", columns, person, time_ms)


def _erasures(
    rng: np.random.Generator,
    persons: Persons,
    known: Known,
    first: int,
    person: np.ndarray,
    day_start: int,
    ids: IdAllocator,
    sink: IdentifierSink,
) -> ColumnRecords:
    """Erasure requests naming the person's email, some also a phone or the user id."""
    count = len(person)
    time_ms = _day_times(rng, day_start, count)
    email_typed, email_normalised = person_emails(rng, persons, person, 0.0)
    phone_typed, phone_normalised = person_phones(rng, persons, person, 0.0)
    with_phone = persons.has_phone[person] & (rng.random(count) < 0.15)
    with_user = (known.user_id[person + first] != "") & (rng.random(count) < 0.25)
    user_id = text.where(with_user, persons.user_id.take(pa.array(person)))
    sink.add("email", email_normalised, person)
    sink.add("phone", text.where(with_phone, phone_normalised), person)
    sink.add("user_id", user_id, person)
    columns = {
        "request_id": ids.take("erasure", count),
        "email": email_typed,
        "phone": text.where(with_phone, phone_typed),
        "user_id": user_id,
        "requested_at": render_timestamps(rng, time_ms, persons.utc_offset_minutes[person], ERASURE_TIMES),
    }
    return ColumnRecords("erasure_requests", columns, person, time_ms)


def _consent_changes(
    rng: np.random.Generator,
    persons: Persons,
    known: Known,
    first: int,
    person: np.ndarray,
    day_start: int,
    ids: IdAllocator,
    sink: IdentifierSink,
) -> ColumnRecords:
    """Changes of mind: marketing withdrawn (unsubscribe links, preference centre) or granted."""
    count = len(person)
    time_ms = _day_times(rng, day_start, count)
    purpose = rng.choice(len(CONSENT_PURPOSES), size=count, p=[0.5, 0.15, 0.15, 0.1, 0.1])
    status = np.where(rng.random(count) < 0.6, 2, 0)  # withdrawn, granted
    with_user = (known.user_id[person + first] != "") & (rng.random(count) < 0.7)
    email_typed, email_normalised = person_emails(rng, persons, person, 0.0)
    user_id = text.where(with_user, persons.user_id.take(pa.array(person)))
    sink.add("email", email_normalised, person)
    sink.add("user_id", user_id, person)
    columns = {
        "consent_event_id": ids.take("consent", count),
        "email": email_typed,
        "user_id": user_id,
        "purpose": text.lookup(CONSENT_PURPOSES, purpose),
        "status": text.lookup(("granted", "denied", "withdrawn"), status),
        "lawful_basis": text.constant("consent", count),
        "source": text.lookup(
            vocab.CONSENT_SOURCES_CHANGE, rng.integers(0, len(vocab.CONSENT_SOURCES_CHANGE), count)
        ),
        "policy_version": text.constant("v3", count),
        "recorded_at": render_timestamps(rng, time_ms, persons.utc_offset_minutes[person], CONSENT_TIMES),
    }
    return ColumnRecords("gdpr_consents", columns, person, time_ms)


def _corrections(
    rng: np.random.Generator,
    persons: Persons,
    known: Known,
    first: int,
    rows: np.ndarray,
    day_start: int,
    seed: int,
    sink: IdentifierSink,
    out: ChunkDay,
) -> ColumnRecords:
    """Contacts re-exported with a new mobile or last name (same contact_id, newer updated_at)."""
    count = len(rows)
    person = known.contact_person[rows] - first
    latest = known.contacts.take(pa.array(rows))
    columns = {name: latest[name].combine_chunks() for name in CONTRACTS["crm_contacts"].field_names}
    global_index = person + first
    new_national, new_e164 = changed_phone_numbers(global_index, persons.country[person], seed)
    # A contact that already carries the person's new number (in any format) changes its name instead.
    digits = pc.replace_substring_regex(pc.fill_null(columns["phone"], ""), r"\D", "")
    has_new = pc.equal(pc.utf8_slice_codeunits(digits, -10), new_national)  # national: the last ten
    new_phone = (rng.random(count) < 0.5) & ~has_new.to_numpy(zero_copy_only=False)
    names = pa.array([name for name, _ in vocab.LAST_NAMES])
    new_last = names.take(pa.array(rng.integers(0, len(names), count)))
    updated = _day_times(rng, day_start, count)
    columns["phone"] = pc.if_else(
        pa.array(new_phone), typed_phones(rng, new_national, persons.country[person]), columns["phone"]
    )
    columns["last_name"] = pc.if_else(pa.array(new_phone), columns["last_name"], new_last)
    columns["updated_at"] = render_timestamps(rng, updated, persons.utc_offset_minutes[person], CRM_TIMES)
    sink.add("crm_contact_id", columns["contact_id"], person)
    sink.add(
        "email",
        text.where(
            pc.is_valid(columns["email"]).to_numpy(zero_copy_only=False), persons.email.take(pa.array(person))
        ),
        person,
    )
    sink.add("phone", text.where(new_phone, new_e164), person)
    out.new_corrections.append(pa.table({"row": pa.array(rows), "person_id": latest["person_id"], **columns}))
    return ColumnRecords("crm_contacts", columns, person, updated)


def _merge_calls(
    rng: np.random.Generator,
    persons: Persons,
    known: Known,
    first: int,
    into: np.ndarray,
    email_of: np.ndarray,
    day_start: int,
    sink: IdentifierSink,
) -> ColumnRecords:
    """Identify calls of signed-in persons on their own device whose traits give another person's email."""
    count = len(into)
    time_ms = _day_times(rng, day_start, count)
    index = pa.array(into)
    anonymous_id = pa.array(known.anonymous_id[into + first].tolist(), pa.string())
    user_id = persons.user_id.take(index)
    email = pa.array(email_of.tolist(), pa.string())
    sink.add("anonymous_id", anonymous_id, into)
    sink.add("user_id", user_id, into)
    sink.add("email", email, into)
    traits = text.json_object(
        [
            ("email", text.json_string(typed_emails(rng, email)), False),
            ("firstName", text.json_string(persons.first_name.take(index)), False),
            ("lastName", text.json_string(persons.last_name.take(index)), False),
        ]
    )
    path = "/account/settings"
    context = f'{{"page":{{"path":"{path}","url":"{vocab.SHOP_URL}{path}"}}}}'
    columns = {
        "type": text.constant("identify", count),
        "messageId": text.uuid4_strings(rng, count),
        "anonymousId": anonymous_id,
        "userId": user_id,
        "timestamp": render_timestamps(rng, time_ms, persons.utc_offset_minutes[into], WEB_TIMES),
        "event": text.nulls(count),
        "name": text.nulls(count),
        "properties": text.constant("{}", count),
        "traits": traits.cast(pa.string()),
        "context": text.constant(context, count),
    }
    return ColumnRecords("web_events", columns, into, time_ms)


# --- one day ------------------------------------------------------------------------------------------------


def generate_next_day(landing_dir: Path, truth_dir: Path, amounts: DayAmounts | None = None) -> DaySummary:
    """Write the day after the truth's end date; see the module docstring."""
    started = time.perf_counter()
    amounts = amounts or DayAmounts()
    state = load_state(truth_dir)
    day = date.fromisoformat(state["end_date"]) + timedelta(days=1)
    day_number = (day - date.fromisoformat(state["base_end_date"])).days
    existing = sorted(landing_dir.glob(f"*/{NEXT_DAY_PREFIX}{day.isoformat()}.*"))
    if existing:
        raise FileExistsError(f"{existing[0]} exists already: day {day} was written before")
    day_start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    clock = Clock(start_ms=day_start, end_ms=day_start + DAY_MS)
    seed = state["seed"]
    persons_before = state["persons"]
    known = load_known(truth_dir, persons_before)
    counts = amounts.counts(persons_before)
    rng = np.random.default_rng([seed, DAY_STREAM, day_number])
    cast = cast_day(rng, known, counts, amounts.late_share, persons_before)
    ids = IdAllocator(salt=seed, used=dict(state["ids_used"]))
    landing = LandingWriter(landing_dir, clock, by_month=False, file_prefix=NEXT_DAY_PREFIX)
    malformed: list[pa.Table] = []
    seen_person: list[np.ndarray] = []
    seen_ms: list[np.ndarray] = []
    ordered: list[np.ndarray] = []
    corrections: list[pa.Table] = []
    new_rows: list[list[pa.Array]] = []
    identifier_parts: list[pa.Table] = []
    merge_email = known.email[cast.merge_from]

    today = (day_number, cast.new_first, cast.new_count)
    for chunk in population(state, today):
        chunk_rng = np.random.default_rng([seed, DAY_STREAM, day_number, chunk.number + 1])
        chunk_sink = IdentifierSink()
        out = ChunkDay()
        first = chunk.first
        _visits(chunk_rng, chunk, known, cast, day_start, ids, chunk_sink, out)
        if first < cast.new_first:
            into = np.isin(cast.merge_into, np.arange(first, first + chunk.persons.count))
            out.records.append(
                _merge_calls(
                    chunk_rng,
                    chunk.persons,
                    known,
                    first,
                    cast.merge_into[into] - first,
                    merge_email[into],
                    day_start,
                    chunk_sink,
                )
            )
            contact_rows = cast.corrections[
                (known.contact_person[cast.corrections] >= first)
                & (known.contact_person[cast.corrections] < first + chunk.persons.count)
            ]
            out.records += [
                _corrections(
                    chunk_rng, chunk.persons, known, first, contact_rows, day_start, seed, chunk_sink, out
                ),
                _consent_changes(
                    chunk_rng,
                    chunk.persons,
                    known,
                    first,
                    chunk.local(cast.consents),
                    day_start,
                    ids,
                    chunk_sink,
                ),
                _erasures(
                    chunk_rng,
                    chunk.persons,
                    known,
                    first,
                    chunk.local(cast.erasures),
                    day_start,
                    ids,
                    chunk_sink,
                ),
            ]
        out.last_seen_person = (
            np.concatenate([r.person for r in out.records] or [np.zeros(0, np.int64)]) + first
        )
        out.last_seen_ms = np.concatenate([r.event_ms for r in out.records] or [np.zeros(0, np.int64)])
        if first >= cast.new_first:
            new_rows.append(_newcomer_truth(chunk.persons, out))
        for records in out.records:
            if not len(records):
                continue
            plan = plan_delivery(chunk_rng, records, clock, state["malformed_share"], 0, ids)
            # Everything arrives today, the late sessions included.
            plan.delivery_ms = np.clip(plan.delivery_ms, clock.start_ms, clock.end_ms - 1)
            malformed.append(landing.write(plan))
        identifiers = chunk_sink.distinct()
        if identifiers.num_rows:
            identifier_parts.append(
                pa.table(
                    {
                        "identifier_type": identifiers["identifier_type"],
                        "value": identifiers["value"],
                        "person_id": chunk.persons.person_id.take(identifiers["person"]),
                    }
                )
            )
        seen_person.append(out.last_seen_person)
        seen_ms.append(out.last_seen_ms)
        ordered.append(out.order_person)
        corrections += out.new_corrections
    landing.publish(overwrite=False)

    planted = {
        "active_persons": len(cast.active),
        "late_sessions": len(cast.late),
        "new_people": cast.new_count,
        "crm_corrections": len(cast.corrections),
        "merges": len(cast.merge_from),
        "consent_changes": len(cast.consents),
        "erasures": len(cast.erasures),
    }
    tallies = {source: landing.tallies[source] for source in CONTRACTS}
    files = tuple(sorted(path for tally in tallies.values() for path in tally.files))
    malformed_rows = pa.concat_tables([_empty_malformed(), *malformed])
    summary = DaySummary(
        day=day,
        day_number=day_number,
        planted=planted,
        rows={source: sum(f.rows for f in tally.files.values()) for source, tally in tallies.items()},
        malformed=malformed_rows.num_rows,
        files=files,
        elapsed_seconds=0.0,
    )
    _update_truth(
        truth_dir,
        state,
        known,
        cast,
        day,
        summary,
        ids,
        new_rows,
        identifier_parts,
        np.concatenate(seen_person) if seen_person else np.zeros(0, np.int64),
        np.concatenate(seen_ms) if seen_ms else np.zeros(0, np.int64),
        np.concatenate(ordered) if ordered else np.zeros(0, np.int64),
        corrections,
        malformed_rows,
    )
    return replace(summary, elapsed_seconds=time.perf_counter() - started)


def _newcomer_truth(persons: Persons, out: ChunkDay) -> list[pa.Array]:
    """persons.csv rows of the newcomers (first and last seen today)."""
    local = out.last_seen_person - persons.first_global
    first_seen = np.full(persons.count, np.iinfo(np.int64).max)
    np.minimum.at(first_seen, local, out.last_seen_ms)
    last_seen = np.zeros(persons.count, dtype=np.int64)
    np.maximum.at(last_seen, local, out.last_seen_ms)
    orders = np.bincount(out.order_person - persons.first_global, minlength=persons.count)
    return [
        persons.person_id,
        text.lookup(STAGES, persons.stage),
        persons.first_name,
        persons.last_name,
        text.lookup(("US", "GB"), persons.country),
        text.utc_timestamp_strings(first_seen),
        text.utc_timestamp_strings(last_seen),
        text.integer_strings(orders),
        text.constant("false", persons.count),
    ]


def _empty_malformed() -> pa.Table:
    return pa.table(
        {
            "source": pa.array([], pa.string()),
            "file": pa.array([], pa.string()),
            "line": pa.array([], pa.int64()),
            "kind": pa.array([], pa.string()),
        }
    )


def _write_csv(path: Path, table: pa.Table) -> None:
    columns = [column.combine_chunks().cast(pa.string()) for column in table.columns]
    with path.open("wb") as handle:
        handle.write(text.csv_header(table.column_names))
        if table.num_rows:
            handle.write(string_bytes(text.csv_lines(columns)))


def _update_truth(
    truth_dir: Path,
    state: dict[str, Any],
    known: Known,
    cast: Cast,
    day: date,
    summary: DaySummary,
    ids: IdAllocator,
    new_rows: list[list[pa.Array]],
    identifier_parts: list[pa.Table],
    seen_person: np.ndarray,
    seen_ms: np.ndarray,
    order_person: np.ndarray,
    corrections: list[pa.Table],
    malformed: pa.Table,
) -> None:
    """Rewrite the truth files with the day in them (staged, then moved in)."""
    staging = truth_dir / STAGING_NAME
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    persons_before = state["persons"]

    # persons.csv: erasures, today's records and orders, merged persons' spans, then the newcomers.
    people = _read_csv(truth_dir / PERSONS_FILE, PERSON_COLUMNS)
    row = np.full(persons_before, -1, dtype=np.int64)
    row[_person_index(people["person_id"])] = np.arange(people.num_rows)
    column = {name: people[name].to_numpy(zero_copy_only=False).copy() for name in PERSON_COLUMNS}
    existing = seen_person < persons_before
    if existing.any():
        seen_rows = row[seen_person[existing]]
        today = text.utc_timestamp_strings(seen_ms[existing]).to_numpy(zero_copy_only=False)
        # Canonical timestamps (fixed width, UTC) order as text; a late record may be a first one.
        for seen_row, instant in zip(seen_rows.tolist(), today.tolist(), strict=True):
            column["first_seen_at"][seen_row] = min(column["first_seen_at"][seen_row], instant)
            column["last_seen_at"][seen_row] = max(column["last_seen_at"][seen_row], instant)
    orders = column["orders"].astype(np.int64)
    np.add.at(orders, row[order_person[order_person < persons_before]], 1)
    column["erased"][row[cast.erasures]] = "true"
    # Two persons who never bought make one: the later stage, the whole span, every order.
    for gone, kept in zip(row[cast.merge_from].tolist(), row[cast.merge_into].tolist(), strict=True):
        column["final_stage"][kept] = STAGES[
            max(STAGES.index(column["final_stage"][gone]), STAGES.index(column["final_stage"][kept]))
        ]
        column["first_seen_at"][kept] = min(column["first_seen_at"][kept], column["first_seen_at"][gone])
        column["last_seen_at"][kept] = max(column["last_seen_at"][kept], column["last_seen_at"][gone])
        orders[kept] += orders[gone]
    column["orders"] = orders.astype(str)
    table = pa.table({name: pa.array(column[name].tolist(), pa.string()) for name in PERSON_COLUMNS})
    for rows in new_rows:
        table = pa.concat_tables([table, pa.table(dict(zip(PERSON_COLUMNS, rows, strict=True)))])
    _write_csv(staging / PERSONS_FILE, table)

    # merges.csv: who became one person today.
    merges = pa.table(
        {
            "merged_on": text.constant(day.isoformat(), len(cast.merge_from)),
            "person_id": text.prefixed_ids("P", cast.merge_from + 1, 7),
            "merged_into": text.prefixed_ids("P", cast.merge_into + 1, 7),
            "email": pa.array(known.email[cast.merge_from].tolist(), pa.string()),
            "user_id": pa.array(known.user_id[cast.merge_into].tolist(), pa.string()),
        }
    )
    if (truth_dir / MERGES_FILE).exists():
        merges = pa.concat_tables([_read_csv(truth_dir / MERGES_FILE, MERGE_COLUMNS), merges])
    _write_csv(staging / MERGES_FILE, merges)

    # identifiers.csv: the merged persons' identifiers move to the person they merged into; today's added.
    merge_map = staging / "merge_map.csv"
    _write_csv(
        merge_map,
        pa.table(
            {
                "person_id": text.prefixed_ids("P", cast.merge_from + 1, 7),
                "merged_into": text.prefixed_ids("P", cast.merge_into + 1, 7),
            }
        ),
    )
    new_identifiers = staging / "new_identifiers.parquet"
    schema = pa.schema([("identifier_type", pa.string()), ("value", pa.string()), ("person_id", pa.string())])
    pq.write_table(
        pa.concat_tables([schema.empty_table(), *[p.cast(schema) for p in identifier_parts]]), new_identifiers
    )
    old = truth_dir / IDENTIFIERS_FILE
    # Every path here is built by the generator, none comes from input.
    pairs = compose(
        """
        SELECT i.identifier_type, i.identifier_value, coalesce(m.merged_into, i.person_id) AS person_id
        FROM read_csv({old}, header = true, columns = {{
            'identifier_type': 'VARCHAR', 'identifier_value': 'VARCHAR',
            'person_id': 'VARCHAR', 'is_shared': 'VARCHAR'
        }}) AS i
        LEFT JOIN read_csv({merge_map}, header = true, columns = {{
            'person_id': 'VARCHAR', 'merged_into': 'VARCHAR'
        }}) AS m ON i.person_id = m.person_id
        UNION ALL
        SELECT identifier_type, value, person_id FROM read_parquet({new_identifiers})
        """,
        old=quote_literal(str(old)),
        merge_map=quote_literal(str(merge_map)),
        new_identifiers=quote_literal(str(new_identifiers)),
    )
    write_identifier_truth(pairs, staging / IDENTIFIERS_FILE, staging / "duckdb_tmp")

    # crm_contacts.csv: the corrected contacts' latest versions.
    contacts = known.contacts
    if corrections:
        corrected = pa.concat_tables(corrections)
        stale = np.zeros(contacts.num_rows, dtype=bool)
        stale[corrected["row"].to_numpy()] = True
        kept = contacts.filter(pa.array(~stale))
        contacts = pa.concat_tables([kept, corrected.drop_columns(["row"]).cast(contacts.schema)])
    _write_csv(staging / CRM_STATE_FILE, contacts)

    # malformed_rows.csv: today's planted breakage after the earlier ones.
    earlier = pacsv.read_csv(
        truth_dir / MALFORMED_FILE,
        convert_options=pacsv.ConvertOptions(
            column_types={"source": pa.string(), "file": pa.string(), "line": pa.int64(), "kind": pa.string()}
        ),
    )
    all_malformed = pa.concat_tables([earlier, malformed.cast(earlier.schema)]).sort_by(
        [("source", "ascending"), ("file", "ascending"), ("line", "ascending")]
    )
    _write_csv(staging / MALFORMED_FILE, all_malformed)

    state = {
        **state,
        "persons": persons_before + cast.new_count,
        "end_date": day.isoformat(),
        "ids_used": dict(sorted(ids.used.items())),
        "days": [
            *state["days"],
            {**summary.to_json(), "first_new_person": cast.new_first, "new_people": cast.new_count},
        ],
    }
    (staging / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    # The state goes in last: a day whose truth did not finish moving in is not counted as written.
    for name in (PERSONS_FILE, MERGES_FILE, IDENTIFIERS_FILE, CRM_STATE_FILE, MALFORMED_FILE, STATE_FILE):
        (staging / name).replace(truth_dir / name)
    shutil.rmtree(staging)
