"""Web sessions of one chunk of persons, and the events in them (as numbers: kinds, times, products).

Each person gets a number of sessions spread between a first and a last visit chosen from the person's
final stage. Every session gets a phase, and the phase decides what can happen in it:

- 0 discovery: page views only (the first session's landing page carries the campaign or referrer);
- 1 consideration: searches, product views, cart adds and removals, never a checkout;
- 2 the first checkout: completed as the first order, or (for some decision-stage persons) abandoned;
- 3 after the first order: browsing and repeat orders.

Sessions never overlap (they are at least ``MIN_SESSION_GAP_MS`` apart and last well under that), and the
events of a session are ordered landing -> identify -> browsing -> adds -> removals -> cart -> checkout ->
order, so the phase rules hold for the events' timestamps as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cx_pipeline.generator import vocab
from cx_pipeline.generator.config import (
    CONSIDERATION,
    DAY_MS,
    DECISION,
    DISCOVERY,
    HOUR_MS,
    LAPSED,
    LOYALTY,
    Clock,
)
from cx_pipeline.generator.population import Persons
from cx_pipeline.generator.records import with_millis

MIN_SESSION_GAP_MS = 3 * HOUR_MS
EVENT_GAP_SECONDS = (2, 75)  # between two events of a session; at most ~30 events, so < 40 minutes

# Sessions per person by stage: base + min(Poisson(mean), cap). Tuned for ~50 web + cart events per person.
SESSION_BASE = np.array([1, 2, 2, 4, 3])
SESSION_EXTRA_MEAN = np.array([1.6, 3.5, 4.0, 16.0, 8.0])
SESSION_EXTRA_CAP = np.array([8, 20, 20, 40, 25])
DECISION_BUY_SHARE = 0.65  # decision-stage persons whose checkout became their (only) order
REPEAT_ORDER_SHARE = np.array([0.0, 0.0, 0.0, 0.2, 0.15])  # per session after the first order
LOYAL_REPEAT_BUYER_SHARE = 0.8  # loyal persons with at least one repeat web/app order
WEB_MILLIS_SHARE = 0.7  # Segment timestamps mostly carry milliseconds
LOGIN_AT_FIRST_VISIT_SHARE = 0.6  # other devices: log-in in the first session after the sign-up

# Event kinds, in the order their blocks are generated.
LANDING, IDENTIFY, PAGE, SEARCH, VIEW, ADD, REMOVE, CART_VIEWED, CHECKOUT, ORDER = range(10)
KIND_COUNT = 10
# Position of each kind within a session (browsing kinds are shuffled among themselves).
KIND_GROUP = np.array([0, 1, 2, 2, 2, 3, 4, 5, 6, 7])


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For per-parent counts: (parent of each child, rank of the child within its parent, first child)."""
    counts = np.asarray(counts, dtype=np.int64)
    first = np.cumsum(counts) - counts
    parent = np.repeat(np.arange(len(counts)), counts)
    return parent, np.arange(len(parent)) - first[parent], first


def cumulative_within(groups_first: np.ndarray, group_of: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Running sum of ``steps`` that restarts at the first row of every group (rows sorted by group)."""
    running = np.cumsum(steps)
    return running - running[groups_first[group_of]] + steps[groups_first[group_of]]


def uniform_between(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return (low + rng.random(len(low)) * (high - low)).astype(np.int64)


def pick_products(rng: np.random.Generator, favourite_category: np.ndarray) -> np.ndarray:
    """Products a person looks at: mostly of their favourite category."""
    shop = vocab.catalog()
    count = len(favourite_category)
    category = np.where(
        rng.random(count) < 0.6, favourite_category, rng.integers(0, len(shop.category_size), count)
    )
    return shop.category_first[category] + (rng.random(count) * shop.category_size[category]).astype(np.int64)


@dataclass
class Sessions:
    person: np.ndarray
    position: np.ndarray  # 0 = the person's first session
    start_ms: np.ndarray
    phase: np.ndarray
    device: np.ndarray  # index into the chunk's device arrays
    checkout: np.ndarray
    order: np.ndarray
    abandon: np.ndarray
    identify_here: np.ndarray
    user_known: np.ndarray  # signed in from the session's first event
    campaign: np.ndarray  # index into vocab.CAMPAIGNS, -1 untagged
    organic_referrer: np.ndarray  # index into vocab.ORGANIC_REFERRERS, -1 none
    kind_counts: np.ndarray  # (sessions, KIND_COUNT)

    def __len__(self) -> int:
        return len(self.person)


@dataclass
class Orders:
    """Every completed order (web, app and store) with its lines."""

    order_id: pa.Array
    person: np.ndarray
    time_ms: np.ndarray
    channel: np.ndarray  # 0 web, 1 app, 2 store
    with_user: np.ndarray  # placed while signed in
    email_typed: pa.Array  # the email given with the order, if any
    email_normalised: pa.Array
    line_order: np.ndarray
    line_product: np.ndarray
    line_quantity: np.ndarray

    def __len__(self) -> int:
        return len(self.person)


@dataclass
class Plan:
    sessions: Sessions
    session_first: np.ndarray  # per person: index of the first session
    session_count: np.ndarray
    decision_buys: np.ndarray


@dataclass
class EventLayout:
    """Web events in block order: all landings, then all identifies, ... (see the kind constants)."""

    session: np.ndarray
    kind: np.ndarray
    rank: np.ndarray  # rank of the event among the session's events of its kind
    kind_start: np.ndarray  # kind k occupies rows kind_start[k]:kind_start[k + 1]
    time_ms: np.ndarray
    product: np.ndarray  # -1 when the event is about no product
    quantity: np.ndarray
    search_term: np.ndarray  # -1 unless a search
    with_user: np.ndarray  # carries the userId (signed in)

    def block(self, kind: int) -> slice:
        return slice(int(self.kind_start[kind]), int(self.kind_start[kind + 1]))


def plan_sessions(rng: np.random.Generator, persons: Persons, clock: Clock) -> Plan:
    stage = persons.stage
    count = persons.count
    session_count = SESSION_BASE[stage] + np.minimum(
        rng.poisson(SESSION_EXTRA_MEAN[stage]), SESSION_EXTRA_CAP[stage]
    )
    session_count = np.where(stage == LOYALTY, np.maximum(session_count, 3), session_count)
    # The session of the first checkout: the last one for decision, one with later sessions for loyalty.
    checkout_at = np.full(count, -1, dtype=np.int64)
    draw = rng.random(count)
    checkout_at = np.where(stage == DECISION, session_count - 1, checkout_at)
    checkout_at = np.where(stage == LOYALTY, 1 + (draw * (session_count - 2)).astype(np.int64), checkout_at)
    checkout_at = np.where(stage == LAPSED, 1 + (draw * (session_count - 1)).astype(np.int64), checkout_at)
    decision_buys = (stage == DECISION) & (rng.random(count) < DECISION_BUY_SHARE)
    first_ms, last_ms = _visit_range(rng, stage, session_count, decision_buys, clock)

    person, position, session_first = expand(session_count)
    start_ms = _session_starts(rng, person, position, session_first, first_ms, last_ms, session_count)
    phase = _phases(stage[person], position, checkout_at[person])
    repeat = (phase == 3) & (rng.random(len(person)) < REPEAT_ORDER_SHARE[stage[person]])
    repeat = _ensure_repeat_orders(rng, stage, checkout_at, session_first, session_count, repeat)
    checkout = (phase == 2) | repeat
    abandon = (phase == 2) & (stage[person] == DECISION) & ~decision_buys[person]

    identify_at = np.where(
        stage <= CONSIDERATION,
        (rng.random(count) * session_count).astype(np.int64),
        (rng.random(count) * (checkout_at + 1)).astype(np.int64),
    )
    # Both persons of a family device sign in on it, in their first session.
    identify_at = np.where(persons.shares_device, 0, identify_at)
    identify_at = np.where(persons.identified, identify_at, -1)

    device_local = np.where(position == 0, 0, (rng.random(len(person)) * persons.device_count[person]))
    device = persons.device_first[person] + device_local.astype(np.int64)
    device, identify_here, user_known = _sign_ins(
        rng, persons, person, position, session_first, identify_at, device
    )
    tagged = rng.random(len(person)) < np.where(position == 0, 0.7, 0.2)
    campaign = np.where(tagged, rng.integers(0, len(vocab.CAMPAIGNS), len(person)), -1)
    referrer = rng.integers(0, len(vocab.ORGANIC_REFERRERS), len(person))
    referrer = np.where(tagged | ((position > 0) & (rng.random(len(person)) < 0.5)), -1, referrer)
    referrer = np.where(np.array([r is None for r in vocab.ORGANIC_REFERRERS])[referrer], -1, referrer)
    sessions = Sessions(
        person=person,
        position=position,
        start_ms=start_ms,
        phase=phase,
        device=device,
        checkout=checkout,
        order=checkout & ~abandon,
        abandon=abandon,
        identify_here=identify_here,
        user_known=user_known,
        campaign=campaign,
        organic_referrer=referrer,
        kind_counts=event_counts(rng, phase, checkout, abandon, identify_here),
    )
    return Plan(sessions, session_first, session_count, decision_buys)


def _sign_ins(
    rng: np.random.Generator,
    persons: Persons,
    person: np.ndarray,
    position: np.ndarray,
    session_first: np.ndarray,
    identify_at: np.ndarray,
    device: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sign-up, then a log-in on every other device the person uses: (device, identify_here, user_known).

    A person signs up (the first ``identify``) in session ``identify_at``. Being signed in is a property
    of a device, not of the person: every other device the person uses gets its own log-in (another
    ``identify``) in one of its sessions after the sign-up, often its first one, sometimes a later one, so
    the device's earlier sessions stay anonymous until the log-in ties them to the person. A device used
    only before the sign-up could never be tied to the person; those sessions move to the sign-up device.
    Sessions on a device after its log-in carry the user id.
    """
    identified = persons.identified[person]
    after_sign_up = identified & (position >= identify_at[person])
    used_after_sign_up = np.zeros(len(persons.device_anonymous_id), dtype=bool)
    used_after_sign_up[device[after_sign_up]] = True
    sign_up_session = session_first + np.maximum(identify_at, 0)
    sign_up_device = device[sign_up_session]
    device = np.where(identified & ~used_after_sign_up[device], sign_up_device[person], device)

    # Each device's sessions after the sign-up, in time order (sessions are sorted by person and position,
    # and a device belongs to one person, so a stable sort by device keeps the time order).
    eligible = np.flatnonzero(after_sign_up)
    by_device = eligible[np.argsort(device[eligible], kind="stable")]
    device_count = len(used_after_sign_up)
    sessions_on = np.bincount(device[by_device], minlength=device_count)
    first_on = np.cumsum(sessions_on) - sessions_on
    later = rng.random(device_count) >= LOGIN_AT_FIRST_VISIT_SHARE
    pick = np.where(later, (rng.random(device_count) * sessions_on).astype(np.int64), 0)
    # The sign-up device signs in at the sign-up, the first session on it after the sign-up.
    pick[sign_up_device[persons.identified]] = 0
    used = sessions_on > 0
    login_session = np.full(device_count, -1, dtype=np.int64)
    login_session[used] = by_device[first_on[used] + pick[used]]
    identify_here = np.zeros(len(person), dtype=bool)
    identify_here[login_session[used]] = True
    login_position = np.where(used, position[np.maximum(login_session, 0)], np.iinfo(np.int64).max)
    user_known = after_sign_up & (position > login_position[device])
    return device, identify_here, user_known


def _visit_range(
    rng: np.random.Generator,
    stage: np.ndarray,
    session_count: np.ndarray,
    decision_buys: np.ndarray,
    clock: Clock,
) -> tuple[np.ndarray, np.ndarray]:
    """First and last session start per person, placed so the final stage holds at the end of the range."""
    count = len(stage)
    start = float(clock.start_ms)
    latest = float(clock.end_ms - 4 * HOUR_MS)  # room for the last session and an abandoned-cart event
    min_span = (session_count - 1) * float(MIN_SESSION_GAP_MS)
    free_span = np.where(session_count > 1, min_span + rng.exponential(25 * DAY_MS, count), 0.0)
    free_span = np.minimum(free_span, latest - start - DAY_MS)
    free_first = start + rng.random(count) * (latest - start - free_span)
    # Buyers who must look active at the end (loyal, or deciding right now) and lapsed buyers.
    active = (stage == LOYALTY) | decision_buys
    lapsed = stage == LAPSED
    active_last = clock.active_earliest_ms + rng.random(count) * (latest - clock.active_earliest_ms)
    lapsed_earliest = start + 30 * DAY_MS
    lapsed_last = lapsed_earliest + rng.random(count) * (clock.lapsed_latest_ms - HOUR_MS - lapsed_earliest)
    wanted_span = np.select(
        [stage == LOYALTY, lapsed, active],
        [
            rng.uniform(60, 420, count) * DAY_MS,
            rng.uniform(15, 240, count) * DAY_MS,
            min_span + rng.exponential(40 * DAY_MS, count),
        ],
        free_span,
    )
    wanted_span = np.maximum(wanted_span, min_span)
    last = np.select([active, lapsed], [active_last, lapsed_last], free_first + free_span)
    first = np.where(active | lapsed, np.maximum(start, last - wanted_span), free_first)
    return first, last


def _session_starts(
    rng: np.random.Generator,
    person: np.ndarray,
    position: np.ndarray,
    session_first: np.ndarray,
    first_ms: np.ndarray,
    last_ms: np.ndarray,
    session_count: np.ndarray,
) -> np.ndarray:
    """Session starts from first to last: random gaps, each at least MIN_SESSION_GAP_MS."""
    weights = np.where(position == 0, 0.0, rng.exponential(1.0, len(person)))
    weight_total = np.bincount(person, weights, minlength=len(first_ms))
    spare = np.maximum(last_ms - first_ms - (session_count - 1) * float(MIN_SESSION_GAP_MS), 0.0)
    share = weights / np.where(weight_total > 0, weight_total, 1.0)[person]
    gaps = np.where(position == 0, 0.0, MIN_SESSION_GAP_MS + share * spare[person])
    offsets = cumulative_within(session_first, person, gaps)
    return (np.round((first_ms[person] + offsets) / 1000) * 1000).astype(np.int64)


def _phases(stage: np.ndarray, position: np.ndarray, checkout_at: np.ndarray) -> np.ndarray:
    phase = np.zeros(len(stage), dtype=np.int8)
    intent = (stage != DISCOVERY) & (position > 0)
    phase[intent] = 1
    buyer = checkout_at >= 0
    phase[buyer & (position == checkout_at)] = 2
    phase[buyer & (position > checkout_at)] = 3
    return phase


def _ensure_repeat_orders(
    rng: np.random.Generator,
    stage: np.ndarray,
    checkout_at: np.ndarray,
    session_first: np.ndarray,
    session_count: np.ndarray,
    repeat: np.ndarray,
) -> np.ndarray:
    """Most loyal customers order again: give one a repeat order where chance gave none."""
    repeats = np.add.reduceat(repeat.astype(np.int64), session_first) if len(repeat) else repeat
    after_first = session_count - 1 - checkout_at
    wants = (stage == LOYALTY) & (rng.random(len(stage)) < LOYAL_REPEAT_BUYER_SHARE)
    lacking = np.flatnonzero(wants & (repeats == 0) & (after_first > 0))
    chosen = checkout_at[lacking] + 1 + (rng.random(len(lacking)) * after_first[lacking]).astype(np.int64)
    repeat = repeat.copy()
    repeat[session_first[lacking] + chosen] = True
    return repeat


def event_counts(
    rng: np.random.Generator,
    phase: np.ndarray,
    checkout: np.ndarray,
    abandon: np.ndarray,
    identify_here: np.ndarray,
) -> np.ndarray:
    """Events of each kind per session (sessions x KIND_COUNT), from its phase and what happens in it."""
    count = len(phase)
    browsing = phase >= 1
    counts = np.zeros((count, KIND_COUNT), dtype=np.int64)
    counts[:, LANDING] = 1
    counts[:, IDENTIFY] = identify_here
    counts[:, PAGE] = np.where(
        phase == 0, np.minimum(rng.poisson(1.8, count), 7), np.minimum(rng.poisson(0.7, count), 4)
    )
    counts[:, SEARCH] = np.where(browsing, rng.binomial(2, 0.35, count), 0)
    counts[:, VIEW] = np.where(browsing, 1 + np.minimum(rng.poisson(2.5, count), 9), 0)
    draw = rng.random(count)
    counts[:, ADD] = np.select(
        [checkout, phase == 1, phase == 3],
        [
            1 + rng.binomial(3, 0.3, count),
            np.where(draw < 0.35, 1 + rng.binomial(2, 0.3, count), 0),
            draw < 0.25,
        ],
        0,
    )
    removal_draw = rng.random(count)
    counts[:, REMOVE] = np.where(
        checkout, (counts[:, ADD] >= 2) & (removal_draw < 0.2), (counts[:, ADD] >= 1) & (removal_draw < 0.25)
    )
    counts[:, CART_VIEWED] = checkout | ((counts[:, ADD] > 0) & (rng.random(count) < 0.3))
    counts[:, CHECKOUT] = checkout
    counts[:, ORDER] = checkout & ~abandon
    return counts


def lay_out_events(rng: np.random.Generator, persons: Persons, sessions: Sessions) -> EventLayout:
    blocks = [expand(sessions.kind_counts[:, kind]) for kind in range(KIND_COUNT)]
    session = np.concatenate([parent for parent, _, _ in blocks])
    rank = np.concatenate([ranks for _, ranks, _ in blocks])
    kind = np.repeat(np.arange(KIND_COUNT), [len(parent) for parent, _, _ in blocks])
    kind_start = np.concatenate([[0], np.cumsum([len(parent) for parent, _, _ in blocks])])
    time_ms = _event_times(rng, sessions, session, kind, rank)
    layout = EventLayout(
        session=session,
        kind=kind,
        rank=rank,
        kind_start=kind_start,
        time_ms=time_ms,
        product=np.full(len(session), -1, dtype=np.int64),
        quantity=np.zeros(len(session), dtype=np.int64),
        search_term=np.full(len(session), -1, dtype=np.int64),
        with_user=sessions.user_known[session] | (sessions.identify_here[session] & (kind != LANDING)),
    )
    _assign_products(rng, persons, sessions, layout, blocks)
    return layout


def _event_times(
    rng: np.random.Generator, sessions: Sessions, session: np.ndarray, kind: np.ndarray, rank: np.ndarray
) -> np.ndarray:
    """Order each session's events by kind group (browsing shuffled) and space them a few seconds apart."""
    tiebreak = np.where(KIND_GROUP[kind] == 2, rng.random(len(session)), rank)
    order = np.lexsort((tiebreak, KIND_GROUP[kind], session))
    sorted_session = session[order]
    first_of_session = np.searchsorted(sorted_session, np.arange(len(sessions)))
    is_first = np.zeros(len(order), dtype=bool)
    is_first[first_of_session[sessions.kind_counts.sum(axis=1) > 0]] = True
    gaps = np.where(is_first, 0, rng.integers(*EVENT_GAP_SECONDS, len(order)) * 1000)
    offsets = cumulative_within(first_of_session, sorted_session, gaps)
    time_ms = np.empty(len(order), dtype=np.int64)
    time_ms[order] = sessions.start_ms[sorted_session] + offsets
    return with_millis(rng, time_ms, WEB_MILLIS_SHARE)


def _assign_products(
    rng: np.random.Generator,
    persons: Persons,
    sessions: Sessions,
    layout: EventLayout,
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> None:
    """Views pick products, adds pick one of the session's viewed products, removals the last adds."""
    shop = vocab.catalog()
    favourite = persons.favourite_category[sessions.person]
    views = layout.block(VIEW)
    view_session = layout.session[views]
    layout.product[views] = pick_products(rng, favourite[view_session])

    adds = layout.block(ADD)
    add_session = layout.session[adds]
    view_first = blocks[VIEW][2]
    viewed = view_first[add_session] + (
        rng.random(len(add_session)) * sessions.kind_counts[add_session, VIEW]
    ).astype(np.int64)
    layout.product[adds] = layout.product[views][viewed]
    layout.quantity[adds] = rng.choice([1, 2, 3], size=len(add_session), p=[0.8, 0.15, 0.05])

    removes = layout.block(REMOVE)
    remove_session = layout.session[removes]
    add_first = blocks[ADD][2]
    counts = sessions.kind_counts
    removed = add_first[remove_session] + counts[remove_session, ADD] - counts[remove_session, REMOVE]
    removed += layout.rank[removes]
    layout.product[removes] = layout.product[adds][removed]
    layout.quantity[removes] = layout.quantity[adds][removed]

    searches = layout.block(SEARCH)
    search_session = layout.session[searches]
    category = np.where(
        rng.random(len(search_session)) < 0.6,
        favourite[search_session],
        rng.integers(0, len(shop.category_size), len(search_session)),
    )
    layout.search_term[searches] = shop.category_search_first[category] + (
        rng.random(len(search_session)) * shop.category_search_size[category]
    ).astype(np.int64)


def order_lines(sessions: Sessions, layout: EventLayout) -> np.ndarray:
    """Rows of the ADD block that are still in the cart at checkout (removals take the last adds)."""
    adds = layout.block(ADD)
    session = layout.session[adds]
    counts = sessions.kind_counts
    kept = sessions.checkout[session] & (layout.rank[adds] < counts[session, ADD] - counts[session, REMOVE])
    return np.flatnonzero(kept) + adds.start
