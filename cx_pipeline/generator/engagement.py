"""What customers say and send back around the web journey: product rejections, support tickets, NPS.

``simulate_engagement`` also asks cx_pipeline.generator.accounts for the back-office records of the same
persons (CRM contacts, consents, erasure requests), so one call gives every record beside the journey.

Every record of a person is placed no later than the person's last web/cart activity, so a record here can
never make a lapsed buyer look active, nor put anything after a decision-stage buyer's only order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cx_pipeline.contracts import TICKET_PRIORITIES
from cx_pipeline.generator import text, vocab
from cx_pipeline.generator.accounts import (
    PLACEHOLDER_SHARE,
    consents,
    crm_contacts,
    erasure_requests,
    identity_columns,
    person_emails,
    phones_or_placeholder,
)
from cx_pipeline.generator.config import (
    CONSIDERATION,
    DAY_MS,
    DISCOVERY,
    HOUR_MS,
    LAPSED,
    LOYALTY,
    MINUTE_MS,
    Clock,
)
from cx_pipeline.generator.ids import IdAllocator
from cx_pipeline.generator.journeys import Journeys
from cx_pipeline.generator.population import Persons
from cx_pipeline.generator.records import (
    ColumnRecords,
    IdentifierSink,
    TimestampStyle,
    render_timestamps,
    with_millis,
)
from cx_pipeline.generator.sessions import expand, uniform_between

REJECTION_TIMES = TimestampStyle(offset_share=0.2, space_share=0.3, millis_share=0.2)
TICKET_TIMES = TimestampStyle(offset_share=0.25, space_share=0.2, millis_share=0.1)
NPS_TIMES = TimestampStyle(offset_share=0.3, space_share=0.25, millis_share=0.1)

RETURN_SHARE = 0.08  # of order lines of buyers who came back
CANCEL_SHARE = 0.02  # of their orders
TICKETS_MEAN = np.array([0.0, 0.0, 0.0, 0.9, 0.7])
PRESALE_TICKET_SHARE = 0.06  # of consideration-stage persons
TICKET_CHANNEL_SHARES = np.array([0.4, 0.25, 0.15, 0.08, 0.12])  # contracts.SUPPORT_CHANNELS order
POST_PURCHASE_SURVEY_SHARE = 0.2
POST_SUPPORT_SURVEY_SHARE = 0.25
RELATIONSHIP_SURVEY_SHARE = 0.25
ONBOARDING_SURVEY_SHARE = 0.04


@dataclass
class Engagement:
    rejections: ColumnRecords
    tickets: ColumnRecords
    nps: ColumnRecords
    consents: ColumnRecords
    crm: ColumnRecords
    erasures: ColumnRecords
    erased: np.ndarray  # per person


def simulate_engagement(
    rng: np.random.Generator,
    persons: Persons,
    journeys: Journeys,
    clock: Clock,
    ids: IdAllocator,
    sink: IdentifierSink,
    minimum_erasures: int,
) -> Engagement:
    # A loyal customer with a single order is loyal by after-sales service on the purchase they kept: a
    # ticket (an NPS answer alone is not loyalty, docs/journey.md). Their order is never wholly refunded.
    forced_ticket = journeys.needs_engagement
    forced_survey = np.zeros(persons.count, dtype=bool)
    tickets, solved_ms = _tickets(rng, persons, journeys, clock, ids, sink, forced_ticket)
    erasures, erased = erasure_requests(rng, persons, journeys, ids, sink, minimum_erasures)
    return Engagement(
        rejections=_rejections(rng, persons, journeys, ids, sink),
        tickets=tickets,
        nps=_nps(rng, persons, journeys, ids, sink, solved_ms, tickets.person, forced_survey),
        consents=consents(rng, persons, journeys, clock, ids, sink),
        crm=crm_contacts(rng, persons, journeys, ids, sink),
        erasures=erasures,
        erased=erased,
    )


def _fits(time_ms: np.ndarray, person: np.ndarray, journeys: Journeys) -> np.ndarray:
    """Records are kept only at or before the person's last activity."""
    return time_ms <= journeys.last_activity_ms[person]


# --- product rejections -----------------------------------------------------------------------------------


def _rejections(
    rng: np.random.Generator, persons: Persons, journeys: Journeys, ids: IdAllocator, sink: IdentifierSink
) -> ColumnRecords:
    orders = journeys.orders
    # Single-order loyal customers keep their purchase (it is what their loyalty rests on).
    came_back = np.isin(persons.stage, [LOYALTY, LAPSED]) & ~journeys.needs_engagement
    # Returns: some lines of buyers who stayed around, days after the order.
    line_person = orders.person[orders.line_order]
    returned = came_back[line_person] & (rng.random(len(line_person)) < RETURN_SHARE)
    return_line = np.flatnonzero(returned)
    return_ms = (
        orders.time_ms[orders.line_order[return_line]] + rng.integers(3, 30, len(return_line)) * DAY_MS
    )
    keep = _fits(return_ms, line_person[return_line], journeys)
    return_line, return_ms = return_line[keep], return_ms[keep]
    # Cancellations: every line of a few orders, hours after the order.
    cancelled = came_back[orders.person] & (rng.random(len(orders)) < CANCEL_SHARE)
    cancel_line = np.flatnonzero(cancelled[orders.line_order])
    cancel_ms = (
        orders.time_ms[orders.line_order[cancel_line]] + rng.integers(1, 12, len(cancel_line)) * HOUR_MS
    )
    keep = _fits(cancel_ms, line_person[cancel_line], journeys)
    cancel_line, cancel_ms = cancel_line[keep], cancel_ms[keep]

    order_lines = np.concatenate([return_line, cancel_line])
    person = np.concatenate([journeys.removal_person, journeys.dismissal_person, line_person[order_lines]])
    time_ms = with_millis(
        rng, np.concatenate([journeys.removal_ms, journeys.dismissal_ms, return_ms, cancel_ms]), 0.0
    )
    # Removals and dismissals keep the instant of the web event they mirror.
    time_ms[: len(journeys.removal_ms) + len(journeys.dismissal_ms)] = np.concatenate(
        [journeys.removal_ms, journeys.dismissal_ms]
    )
    product = np.concatenate(
        [journeys.removal_product, journeys.dismissal_product, orders.line_product[order_lines]]
    )
    kind = np.concatenate(
        [
            np.full(len(journeys.removal_ms), 0),
            np.full(len(journeys.dismissal_ms), 2),
            np.full(len(return_line), 1),
            np.full(len(cancel_line), 3),
        ]
    )
    reasons = (
        vocab.REASONS_REMOVED,
        vocab.REASONS_RETURNED,
        vocab.REASONS_DISMISSED,
        vocab.REASONS_CANCELLED,
    )
    reason = pa.concat_arrays(
        [
            text.where(
                rng.random(int((kind == code).sum())) < 0.85,
                text.lookup(options, rng.integers(0, len(options), int((kind == code).sum()))),
            )
            for code, options in enumerate(reasons)
        ]
    )
    # Reasons were drawn grouped by kind; put them back in row order.
    reason = reason.take(pa.array(np.argsort(np.argsort(kind, kind="stable"), kind="stable")))
    order_id = pa.concat_arrays(
        [
            text.nulls(len(journeys.removal_ms) + len(journeys.dismissal_ms)),
            orders.order_id.take(pa.array(orders.line_order[order_lines])),
        ]
    )
    user_id, email, email_normalised, _ = identity_columns(
        rng,
        persons,
        person,
        time_ms,
        journeys,
        user_share=0.9,
        email_share=0.25,
        placeholder_share=PLACEHOLDER_SHARE,
    )
    sink.add("user_id", user_id, person)
    sink.add("email", email_normalised, person)
    columns = {
        "rejection_id": ids.take("rejection", len(person)),
        "user_id": user_id,
        "email": email,
        "product_id": vocab.catalog().product_id.take(pa.array(product)),
        "order_id": order_id,
        "rejection_type": text.lookup(
            ("removed_from_cart", "returned", "recommendation_dismissed", "order_cancelled"), kind
        ),
        "reason": reason,
        "occurred_at": render_timestamps(rng, time_ms, persons.utc_offset_minutes[person], REJECTION_TIMES),
    }
    return ColumnRecords("product_rejections", columns, person, time_ms)


# --- support tickets --------------------------------------------------------------------------------------


def _tickets(
    rng: np.random.Generator,
    persons: Persons,
    journeys: Journeys,
    clock: Clock,
    ids: IdAllocator,
    sink: IdentifierSink,
    forced: np.ndarray,
) -> tuple[ColumnRecords, np.ndarray]:
    """Tickets after the first order (plus a few pre-sale questions), solved within the person's activity."""
    stage = persons.stage
    counts = rng.poisson(TICKETS_MEAN[stage])
    counts = np.where(
        (stage == CONSIDERATION) & (rng.random(persons.count) < PRESALE_TICKET_SHARE), 1, counts
    )
    counts = np.where(forced, np.maximum(counts, 1), counts)
    # Only persons the shop knows by email write in (every buyer is one): a question from a visitor it
    # never identified would carry an email nothing else ties to their browsing.
    counts = np.where(journeys.known_ms >= 0, counts, 0)
    person, rank, _ = expand(counts)
    buyer = journeys.first_order_ms[person] >= 0
    low = np.where(buyer, journeys.first_order_ms[person] + MINUTE_MS, journeys.first_seen_ms[person])
    high = journeys.last_activity_ms[person]
    room = high > low
    person, rank, low, high = person[room], rank[room], low[room], high[room]
    count = len(person)
    first_response = np.clip(rng.exponential(4 * HOUR_MS, count), 2 * MINUTE_MS, 3 * DAY_MS).astype(np.int64)
    solving = np.clip(rng.exponential(30 * HOUR_MS, count), 10 * MINUTE_MS, 10 * DAY_MS).astype(np.int64)
    fits_solution = high - low > first_response + solving
    created = with_millis(
        rng,
        np.where(
            fits_solution,
            uniform_between(rng, low, high - first_response - solving),
            uniform_between(rng, low, high),
        ),
        TICKET_TIMES.millis_share,
    )
    created = np.minimum(created, high)
    recent = created > clock.end_ms - 14 * DAY_MS
    status = np.where(
        fits_solution,
        np.where(
            recent,
            rng.choice([1, 2, 3, 4], size=count, p=[0.25, 0.15, 0.1, 0.5]),
            rng.choice([4, 5], size=count, p=[0.75, 0.25]),
        ),
        0,
    )  # index into contracts.TICKET_STATUSES: new, open, pending, hold, solved, closed
    responded = status > 0
    solved = status >= 4
    first_response_ms = created + first_response
    solved_ms = np.where(solved, created + first_response + solving, -1)

    channel = rng.choice(len(TICKET_CHANNEL_SHARES), size=count, p=TICKET_CHANNEL_SHARES)
    channel = np.where((channel == 2) & ~persons.has_phone[person], 0, channel)  # phone only with a phone
    by_phone = channel == 2
    presale = ~buyer[room]
    topic = np.where(presale, vocab.PRESALE_TOPIC, rng.integers(0, len(vocab.TICKET_TOPICS), count))
    subject_pick = rng.integers(0, 3, count)
    subjects = [subject for _, options in vocab.TICKET_TOPICS for subject in options]

    must_link = forced[person] & (rank == 0)
    with_phone = by_phone | (persons.has_phone[person] & (rng.random(count) < 0.1))
    phone_placeholder = rng.random(count) < np.where(must_link, 0.0, 0.08)
    phone_typed, phone_normalised = phones_or_placeholder(rng, persons, person, phone_placeholder)
    # The requester: a ticket carrying the person's phone also carries their email (Zendesk's requester),
    # so the phone is tied to the person; a phone ticket the agent logged with the placeholder number may
    # have no email at all.
    real_phone = with_phone & ~phone_placeholder
    email_typed, email_normalised = person_emails(
        rng, persons, person, np.where(must_link | real_phone, 0.0, 0.04)
    )
    with_email = ~by_phone | real_phone | (rng.random(count) < 0.5)
    sink.add("email", text.where(with_email, email_normalised), person)
    sink.add("phone", text.where(with_phone, phone_normalised), person)

    csat = _skewed_scores(rng, persons.stage[person], 5)
    # CES follows the contract's scale (1 = very easy, 7 = very difficult): happy customers answer low.
    ces = 8 - _skewed_scores(rng, persons.stage[person], 7)
    offsets = persons.utc_offset_minutes[person]
    columns = {
        "ticket_id": ids.take("ticket", count),
        "requester_email": text.where(with_email, email_typed),
        "requester_phone": text.where(with_phone, phone_typed),
        "channel": text.lookup(("email", "chat", "phone", "social", "web_form"), channel),
        "category": text.lookup([category for category, _ in vocab.TICKET_TOPICS], topic),
        "subject": text.lookup(subjects, topic * 3 + subject_pick),
        "status": text.lookup(("new", "open", "pending", "hold", "solved", "closed"), status),
        "priority": text.lookup(TICKET_PRIORITIES, rng.choice(4, size=count, p=[0.2, 0.6, 0.15, 0.05])),
        "created_at": render_timestamps(rng, created, offsets, TICKET_TIMES),
        "first_response_at": text.where(
            responded, render_timestamps(rng, first_response_ms, offsets, TICKET_TIMES)
        ),
        "solved_at": text.where(
            solved, render_timestamps(rng, np.maximum(solved_ms, 0), offsets, TICKET_TIMES)
        ),
        "csat_score": text.integer_strings(csat, valid=solved & (rng.random(count) < 0.55)),
        "ces_score": text.integer_strings(ces, valid=solved & (rng.random(count) < 0.4)),
    }
    return ColumnRecords("support_interactions", columns, person, created), solved_ms


def _skewed_scores(rng: np.random.Generator, stage: np.ndarray, top: int) -> np.ndarray:
    """Scores 1..top: loyal customers mostly happy, lapsed ones less so."""
    mean = np.where(stage == LOYALTY, 0.8, np.where(stage == LAPSED, 0.45, 0.65))
    raw = rng.beta(mean * 4, (1 - mean) * 4)
    return 1 + np.minimum((raw * top).astype(np.int64), top - 1)


# --- NPS --------------------------------------------------------------------------------------------------


def _nps(
    rng: np.random.Generator,
    persons: Persons,
    journeys: Journeys,
    ids: IdAllocator,
    sink: IdentifierSink,
    ticket_solved_ms: np.ndarray,
    ticket_person: np.ndarray,
    forced: np.ndarray,
) -> ColumnRecords:
    orders = journeys.orders
    stage = persons.stage
    came_back = np.isin(stage, [LOYALTY, LAPSED])
    # post_purchase: days after an order.
    asked = came_back[orders.person] & (rng.random(len(orders)) < POST_PURCHASE_SURVEY_SHARE)
    purchase_person = orders.person[asked]
    purchase_ms = orders.time_ms[asked] + rng.integers(2 * 24, 10 * 24, int(asked.sum())) * HOUR_MS
    purchase_in_store = orders.channel[asked] == 2
    # post_support: after a solved ticket.
    asked = (ticket_solved_ms >= 0) & (rng.random(len(ticket_solved_ms)) < POST_SUPPORT_SURVEY_SHARE)
    support_person = ticket_person[asked]
    support_ms = ticket_solved_ms[asked] + rng.integers(1, 48, int(asked.sum())) * HOUR_MS
    # relationship: loyal customers, any time after the first order; forced ones right after it.
    relationship = ((stage == LOYALTY) & (rng.random(persons.count) < RELATIONSHIP_SURVEY_SHARE)) | forced
    relationship_person = np.flatnonzero(relationship)
    relationship_ms = uniform_between(
        rng,
        journeys.first_order_ms[relationship_person] + 1000,
        journeys.last_activity_ms[relationship_person] + 1,
    )
    # onboarding: some days after signing up.
    onboarding_person = np.flatnonzero(
        (journeys.identify_ms >= 0)
        & (stage != DISCOVERY)
        & (rng.random(persons.count) < ONBOARDING_SURVEY_SHARE)
    )
    onboarding_ms = (
        journeys.identify_ms[onboarding_person] + rng.integers(1, 7, len(onboarding_person)) * DAY_MS
    )

    person = np.concatenate([purchase_person, support_person, relationship_person, onboarding_person])
    time_ms = np.concatenate([purchase_ms, support_ms, relationship_ms, onboarding_ms])
    touchpoint = np.repeat(
        np.arange(4), [len(purchase_ms), len(support_ms), len(relationship_ms), len(onboarding_ms)]
    )
    in_store = np.concatenate([purchase_in_store, np.zeros(len(person) - len(purchase_in_store), dtype=bool)])
    must_link = np.concatenate(
        [
            np.zeros(len(purchase_ms) + len(support_ms), dtype=bool),
            forced[relationship_person],
            np.zeros(len(onboarding_ms), dtype=bool),
        ]
    )
    keep = _fits(time_ms, person, journeys)
    person, time_ms, touchpoint, in_store, must_link = (
        person[keep],
        time_ms[keep],
        touchpoint[keep],
        in_store[keep],
        must_link[keep],
    )
    time_ms = np.minimum(with_millis(rng, time_ms, NPS_TIMES.millis_share), journeys.last_activity_ms[person])
    count = len(person)
    score = _nps_scores(rng, stage[person])
    band = np.where(score <= 6, 0, np.where(score <= 8, 1, 2))
    comments = [
        *vocab.NPS_COMMENTS["detractor"],
        *vocab.NPS_COMMENTS["passive"],
        *vocab.NPS_COMMENTS["promoter"],
    ]
    band_first = np.array(
        [0, len(vocab.NPS_COMMENTS["detractor"]), len(comments) - len(vocab.NPS_COMMENTS["promoter"])]
    )
    band_size = np.array([len(vocab.NPS_COMMENTS[b]) for b in ("detractor", "passive", "promoter")])
    comment = band_first[band] + (rng.random(count) * band_size[band]).astype(np.int64)
    channel = np.where(
        in_store & (rng.random(count) < 0.6), 4, rng.choice(4, size=count, p=[0.55, 0.2, 0.15, 0.1])
    )
    user_id, email, email_normalised, _ = identity_columns(
        rng,
        persons,
        person,
        time_ms,
        journeys,
        user_share=0.7,
        email_share=0.6,
        placeholder_share=np.where(must_link, 0.0, 0.02),
    )
    sink.add("user_id", user_id, person)
    sink.add("email", email_normalised, person)
    columns = {
        "response_id": ids.take("nps", count),
        "email": email,
        "user_id": user_id,
        "score": text.integer_strings(score),
        "comment": text.where(rng.random(count) < 0.45, text.lookup(comments, comment)),
        "touchpoint": text.lookup(
            ("post_purchase", "post_support", "relationship", "onboarding"), touchpoint
        ),
        "channel": text.lookup(("email", "web", "app", "sms", "in_store"), channel),
        "responded_at": render_timestamps(rng, time_ms, persons.utc_offset_minutes[person], NPS_TIMES),
    }
    return ColumnRecords("nps_responses", columns, person, time_ms)


def _nps_scores(rng: np.random.Generator, stage: np.ndarray) -> np.ndarray:
    promoter_heavy = np.array([1, 1, 1, 1, 2, 3, 4, 8, 14, 25, 40], dtype=float)
    detractor_heavy = np.array([6, 5, 7, 8, 9, 12, 13, 13, 12, 9, 6], dtype=float)
    middling = np.array([2, 2, 3, 4, 5, 8, 10, 16, 20, 16, 14], dtype=float)
    weights = np.stack([middling, middling, middling, promoter_heavy, detractor_heavy])
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)[stage]
    return np.minimum((rng.random(len(stage))[:, None] > cumulative).sum(axis=1), 10)
