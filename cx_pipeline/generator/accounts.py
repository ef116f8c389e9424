"""What the shop's back office records about who a person is: CRM contacts, the consent log, erasure requests.

Also the identity columns (emails, phones, user ids as people type them) every record of a person carries,
which the feedback records (cx_pipeline.generator.engagement) share. Like there, every record of a person
is placed no later than the person's last web/cart activity.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cx_pipeline.contracts import CONSENT_PURPOSES
from cx_pipeline.generator import text, vocab
from cx_pipeline.generator.config import DAY_MS, HOUR_MS, Clock
from cx_pipeline.generator.ids import IdAllocator
from cx_pipeline.generator.journeys import Journeys
from cx_pipeline.generator.population import Persons, placeholder_emails, typed_emails, typed_phones
from cx_pipeline.generator.records import (
    ColumnRecords,
    IdentifierSink,
    TimestampStyle,
    render_timestamps,
    with_millis,
)
from cx_pipeline.generator.sessions import expand, uniform_between

CONSENT_TIMES = TimestampStyle(offset_share=0.2, space_share=0.2, millis_share=0.3)
CRM_TIMES = TimestampStyle(offset_share=0.3, space_share=0.4, millis_share=0.0)
ERASURE_TIMES = TimestampStyle(offset_share=0.2, space_share=0.2, millis_share=0.0)

CRM_SHARE = np.array([0.5, 0.75, 0.75, 0.75, 0.75])  # of persons the shop knows
CRM_DUPLICATE_SHARE = 0.08
CRM_REEXPORT_SHARE = 0.2
CRM_PLACEHOLDER_PHONE_SHARE = 0.02  # first contacts typed with 0000000000
ERASURE_SHARE = 0.005
PLACEHOLDER_SHARE = 0.03


# --- identity columns -------------------------------------------------------------------------------------


def person_emails(
    rng: np.random.Generator, persons: Persons, person: np.ndarray, placeholder_share: float
) -> tuple[pa.Array, pa.Array]:
    """(typed, normalised) emails of ``person``; a share replaced by placeholder addresses."""
    canonical = persons.email.take(pa.array(person))
    placeholder = rng.random(len(person)) < placeholder_share
    placeholder_typed, placeholder_normalised = placeholder_emails(rng, len(person))
    return (
        text.where(placeholder, placeholder_typed, typed_emails(rng, canonical)),
        text.where(placeholder, placeholder_normalised, canonical),
    )


def person_phones(
    rng: np.random.Generator, persons: Persons, person: np.ndarray, placeholder_share: float | np.ndarray
) -> tuple[pa.Array, pa.Array]:
    """(typed, E.164) phones of ``person``; a share replaced by the all-zero placeholder."""
    return phones_or_placeholder(rng, persons, person, rng.random(len(person)) < placeholder_share)


def phones_or_placeholder(
    rng: np.random.Generator, persons: Persons, person: np.ndarray, placeholder: np.ndarray
) -> tuple[pa.Array, pa.Array]:
    """(typed, E.164) phones of ``person``, the all-zero placeholder where ``placeholder``."""
    index = pa.array(person)
    typed = typed_phones(rng, persons.phone_national.take(index), persons.country[person])
    return (
        text.where(placeholder, vocab.PLACEHOLDER_PHONE, typed),
        text.where(placeholder, vocab.PLACEHOLDER_PHONE_E164, persons.phone_e164.take(index)),
    )


def identity_columns(
    rng: np.random.Generator,
    persons: Persons,
    person: np.ndarray,
    time_ms: np.ndarray,
    journeys: Journeys,
    user_share: float,
    email_share: float,
    placeholder_share: float,
) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """(user_id, typed email, normalised email, normalised user_id) for records that carry either or both.

    A user id only once the person has signed in; an email when drawn, or always without a user id.
    """
    count = len(person)
    signed_in = (journeys.identify_ms[person] >= 0) & (journeys.identify_ms[person] <= time_ms)
    with_user = signed_in & (rng.random(count) < user_share)
    with_email = ~with_user | (rng.random(count) < email_share)
    typed, normalised = person_emails(rng, persons, person, np.where(with_user, placeholder_share, 0.0))
    user_id = text.where(with_user, persons.user_id.take(pa.array(person)))
    return user_id, text.where(with_email, typed), text.where(with_email, normalised), user_id


# --- consents ---------------------------------------------------------------------------------------------


def consents(
    rng: np.random.Generator,
    persons: Persons,
    journeys: Journeys,
    clock: Clock,
    ids: IdAllocator,
    sink: IdentifierSink,
) -> ColumnRecords:
    """Per purpose: a grant or denial at sign-up/checkout, then some withdrawals and re-grants."""
    known = np.flatnonzero(journeys.known_ms >= 0)
    purposes = len(CONSENT_PURPOSES)
    asked = rng.random((len(known), purposes)) < 0.55
    asked[:, 0] = True  # email marketing is asked at every sign-up
    row_person = np.repeat(known, asked.sum(axis=1))
    purpose = np.nonzero(asked)[1]
    initial_ms = journeys.known_ms[row_person]
    granted = rng.random(len(row_person)) < np.where(purpose == 0, 0.8, 0.65)
    at_signup = journeys.identify_ms[row_person] >= 0
    status = np.where(granted, 0, 1)  # contracts.CONSENT_STATUSES: granted, denied, withdrawn
    source = np.where(at_signup, rng.integers(0, len(vocab.CONSENT_SOURCES_SIGNUP), len(row_person)), -1)

    limit = journeys.last_activity_ms[row_person]
    # Changes of mind: grants withdrawn (some granted again later), denials granted later.
    changing = (limit - initial_ms > 2 * DAY_MS) & (
        rng.random(len(row_person)) < np.where(granted, 0.12, 0.08)
    )
    change = np.flatnonzero(changing)
    change_ms = uniform_between(rng, initial_ms[change] + DAY_MS, limit[change])
    change_status = np.where(granted[change], 2, 0)
    regrant = change[
        (change_status == 2) & (limit[change] - change_ms > DAY_MS) & (rng.random(len(change)) < 0.35)
    ]
    regrant_ms = uniform_between(
        rng, change_ms[np.searchsorted(change, regrant)] + DAY_MS // 2, limit[regrant]
    )

    rows = np.concatenate([np.arange(len(row_person)), change, regrant])
    person = row_person[rows]
    time_ms = np.concatenate([initial_ms, change_ms, regrant_ms])
    time_ms = np.minimum(
        with_millis(rng, time_ms, CONSENT_TIMES.millis_share), journeys.last_activity_ms[person]
    )
    # The initial rows keep the sign-up instant exactly (it may be the person's last activity).
    time_ms[: len(initial_ms)] = initial_ms
    status = np.concatenate([status, change_status, np.zeros(len(regrant), dtype=np.int64)])
    purpose = purpose[rows]
    change_source = rng.integers(0, len(vocab.CONSENT_SOURCES_CHANGE), len(change) + len(regrant))
    sources = (*vocab.CONSENT_SOURCES_SIGNUP, "checkout", *vocab.CONSENT_SOURCES_CHANGE)
    source_index = np.concatenate(
        [
            np.where(source >= 0, source, len(vocab.CONSENT_SOURCES_SIGNUP)),
            len(vocab.CONSENT_SOURCES_SIGNUP) + 1 + change_source,
        ]
    )
    marketing = purpose <= 1
    lawful_basis = np.where(
        marketing | (purpose == 4) | (status == 1), 0, np.where(rng.random(len(rows)) < 0.6, 2, 0)
    )  # contracts.LAWFUL_BASES: consent, contract, legitimate_interest, legal_obligation
    third = (clock.end_ms - clock.start_ms) // 3
    version = np.searchsorted([clock.start_ms + third, clock.start_ms + 2 * third], time_ms, side="right")
    user_id, email, email_normalised, _ = identity_columns(
        rng,
        persons,
        person,
        time_ms,
        journeys,
        user_share=0.85,
        email_share=0.7,
        placeholder_share=PLACEHOLDER_SHARE,
    )
    sink.add("user_id", user_id, person)
    sink.add("email", email_normalised, person)
    columns = {
        "consent_event_id": ids.take("consent", len(rows)),
        "email": email,
        "user_id": user_id,
        "purpose": text.lookup(CONSENT_PURPOSES, purpose),
        "status": text.lookup(("granted", "denied", "withdrawn"), status),
        "lawful_basis": text.lookup(
            ("consent", "contract", "legitimate_interest", "legal_obligation"), lawful_basis
        ),
        "source": text.lookup(sources, source_index),
        "policy_version": text.lookup(("v1", "v2", "v3"), version),
        "recorded_at": render_timestamps(rng, time_ms, persons.utc_offset_minutes[person], CONSENT_TIMES),
    }
    return ColumnRecords("gdpr_consents", columns, person, time_ms)


# --- CRM --------------------------------------------------------------------------------------------------


def crm_contacts(
    rng: np.random.Generator, persons: Persons, journeys: Journeys, ids: IdAllocator, sink: IdentifierSink
) -> ColumnRecords:
    """HubSpot-like contacts: one per known person (some have 2-3), some re-exported with changes."""
    known = journeys.known_ms >= 0
    with_contact = np.flatnonzero(known & (rng.random(persons.count) < CRM_SHARE[persons.stage]))
    extra = np.where(
        rng.random(len(with_contact)) < CRM_DUPLICATE_SHARE,
        rng.choice([1, 2], len(with_contact), p=[0.75, 0.25]),
        0,
    )
    contact_person = np.repeat(with_contact, 1 + extra)
    contact_group, duplicate_rank, group_first = expand(1 + extra)
    is_duplicate = duplicate_rank > 0
    count = len(contact_person)
    limit = journeys.last_activity_ms[contact_person]
    known_ms = journeys.known_ms[contact_person]
    created = np.minimum(known_ms + rng.exponential(2 * HOUR_MS, count).astype(np.int64), limit)
    created = np.where(is_duplicate, uniform_between(rng, created, limit + 1), created) // 1000 * 1000
    updated = np.minimum(created + (rng.random(count) * 3 * DAY_MS).astype(np.int64) // 1000 * 1000, limit)
    updated = np.maximum(updated, created)
    reexported = ~is_duplicate & (limit - updated > 2 * DAY_MS) & (rng.random(count) < CRM_REEXPORT_SHARE)

    # Final lifecycle stage from the journey stage; a re-exported contact started as subscriber or lead.
    final_stage = _crm_lifecycle(rng, persons.stage[contact_person])
    early_stage = np.where(rng.random(count) < 0.5, "subscriber", "lead")
    contact_id = ids.take("contact", count)
    # Duplicates: one carries only the phone, another only the email in another case. A phone-only
    # duplicate holds the real number of the person's first contact, so something ties it to the person.
    phone_placeholder = ~is_duplicate & (rng.random(count) < CRM_PLACEHOLDER_PHONE_SHARE)
    with_phone = persons.has_phone[contact_person] & ~is_duplicate & (rng.random(count) < 0.7)
    first_has_phone = (with_phone & ~phone_placeholder)[group_first[contact_group]]
    phone_only = is_duplicate & first_has_phone & (rng.random(count) < 0.7)
    with_phone |= phone_only
    with_email = ~phone_only
    city = _cities(rng, persons.country[contact_person])

    version_rows = np.concatenate([np.arange(count), np.flatnonzero(reexported)])
    second = np.arange(len(version_rows)) >= count
    person = contact_person[version_rows]
    reexport_ms = uniform_between(rng, updated[reexported] + DAY_MS, limit[reexported]) // 1000 * 1000
    updated_ms = np.concatenate([updated, reexport_ms])
    stage_text = np.where(
        second,
        final_stage[version_rows],
        np.where(reexported[version_rows], early_stage[version_rows], final_stage[version_rows]),
    )
    moved = second & (rng.random(len(version_rows)) < 0.2)
    city_text = np.where(moved, _cities(rng, persons.country[person]), city[version_rows])

    canonical = persons.email.take(pa.array(person))
    email_typed = typed_emails(rng, canonical)
    email_typed = pc.if_else(pa.array(is_duplicate[version_rows]), pc.utf8_upper(canonical), email_typed)
    email_on = with_email[version_rows]
    phone_typed, phone_normalised = phones_or_placeholder(
        rng, persons, person, phone_placeholder[version_rows]
    )
    phone_on = with_phone[version_rows]
    names_upper = is_duplicate[version_rows] & (rng.random(len(version_rows)) < 0.5)
    index = pa.array(person)
    first_name = persons.first_name.take(index)
    last_name = persons.last_name.take(index)
    sink.add("crm_contact_id", contact_id.take(pa.array(version_rows)), person)
    sink.add("email", text.where(email_on, canonical), person)
    sink.add("phone", text.where(phone_on, phone_normalised), person)
    offsets = persons.utc_offset_minutes[person]
    columns = {
        "contact_id": contact_id.take(pa.array(version_rows)),
        "email": text.where(email_on, email_typed),
        "phone": text.where(phone_on, phone_typed),
        "first_name": pc.if_else(pa.array(names_upper), pc.utf8_upper(first_name), first_name),
        "last_name": pc.if_else(pa.array(names_upper), pc.utf8_upper(last_name), last_name),
        "company": text.where(
            rng.random(len(version_rows)) < 0.25,
            text.lookup(vocab.COMPANIES, rng.integers(0, len(vocab.COMPANIES), len(version_rows))),
        ),
        "city": pa.array(city_text),
        "country": text.lookup(vocab.COUNTRIES, persons.country[person]),
        "crm_lifecycle_stage": pa.array(stage_text),
        "created_at": render_timestamps(rng, created[version_rows], offsets, CRM_TIMES),
        "updated_at": render_timestamps(rng, updated_ms, offsets, CRM_TIMES),
    }
    return ColumnRecords("crm_contacts", columns, person, updated_ms)


def _crm_lifecycle(rng: np.random.Generator, stage: np.ndarray) -> np.ndarray:
    result = np.empty(len(stage), dtype=object)
    for code, options in enumerate(vocab.CRM_STAGES_BY_JOURNEY):
        rows = np.flatnonzero(stage == code)
        names, weights = zip(*options, strict=True)
        result[rows] = np.array(names, dtype=object)[rng.choice(len(names), size=len(rows), p=weights)]
    return result


def _cities(rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
    us = np.array(vocab.CITIES["US"], dtype=object)
    gb = np.array(vocab.CITIES["GB"], dtype=object)
    return np.where(
        country == 0, us[rng.integers(0, len(us), len(country))], gb[rng.integers(0, len(gb), len(country))]
    )


# --- erasure requests -------------------------------------------------------------------------------------


def erasure_requests(
    rng: np.random.Generator,
    persons: Persons,
    journeys: Journeys,
    ids: IdAllocator,
    sink: IdentifierSink,
    minimum: int,
) -> tuple[ColumnRecords, np.ndarray]:
    """A few known persons ask to be forgotten, naming one identifier (sometimes two)."""
    known = np.flatnonzero(journeys.known_ms >= 0)
    wanted = max(round(persons.count * ERASURE_SHARE), minimum)
    person = np.sort(rng.choice(known, size=min(wanted, len(known)), replace=False))
    count = len(person)
    erased = np.zeros(persons.count, dtype=bool)
    erased[person] = True
    time_ms = (
        uniform_between(rng, journeys.known_ms[person], journeys.last_activity_ms[person] + 1) // 1000 * 1000
    )
    time_ms = np.maximum(time_ms, journeys.known_ms[person])
    signed_up = journeys.identify_ms[person] >= 0
    by = rng.choice(3, size=count, p=[0.6, 0.15, 0.25])  # email, phone, user id
    by = np.where((by == 1) & ~persons.has_phone[person], 0, by)
    by = np.where((by == 2) & ~signed_up, 0, by)
    second = rng.random(count) < 0.15
    with_phone = (by == 1) | (second & (by == 0) & persons.has_phone[person])
    # The form asks for an email: a request naming a phone names the email too, which ties the phone to
    # the person (the phone may appear nowhere else).
    with_email = (by == 0) | with_phone | (second & (by == 2))
    with_user = by == 2
    email_typed, email_normalised = person_emails(rng, persons, person, 0.0)
    phone_typed, phone_normalised = person_phones(rng, persons, person, 0.0)
    user_id = text.where(with_user, persons.user_id.take(pa.array(person)))
    sink.add("email", text.where(with_email, email_normalised), person)
    sink.add("phone", text.where(with_phone, phone_normalised), person)
    sink.add("user_id", user_id, person)
    columns = {
        "request_id": ids.take("erasure", count),
        "email": text.where(with_email, email_typed),
        "phone": text.where(with_phone, phone_typed),
        "user_id": user_id,
        "requested_at": render_timestamps(rng, time_ms, persons.utc_offset_minutes[person], ERASURE_TIMES),
    }
    return ColumnRecords("erasure_requests", columns, person, time_ms), erased
