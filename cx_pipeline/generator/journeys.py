"""What a chunk of persons does on the web and in the shop: sessions, Segment messages, carts and orders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cx_pipeline.generator import text, vocab
from cx_pipeline.generator.config import DAY_MS, HOUR_MS, LOYALTY, MINUTE_MS, Clock
from cx_pipeline.generator.ids import IdAllocator
from cx_pipeline.generator.population import Persons, placeholder_emails, typed_emails
from cx_pipeline.generator.records import (
    ColumnRecords,
    IdentifierSink,
    TimestampStyle,
    render_timestamps,
    with_millis,
)
from cx_pipeline.generator.segment import WebRecords, web_records
from cx_pipeline.generator.sessions import (
    ADD,
    CHECKOUT,
    IDENTIFY,
    ORDER,
    REMOVE,
    VIEW,
    EventLayout,
    Orders,
    Plan,
    Sessions,
    expand,
    lay_out_events,
    order_lines,
    pick_products,
    plan_sessions,
    uniform_between,
)

STORE_ORDERS_MEAN = np.array([0.0, 0.0, 0.0, 0.4, 0.25])
GUEST_PLACEHOLDER_SHARE = 0.2  # guests typing a placeholder email at checkout
STORE_PLACEHOLDER_SHARE = 0.03
DISMISSAL_SHARE = 0.06  # of product views while signed in
CART_TIMES = TimestampStyle(offset_share=0.3, space_share=0.15, millis_share=0.7)

CART_EVENT_TYPES = ("item_added", "item_removed", "checkout_started", "order_placed", "cart_abandoned")
ITEM_ADDED, ITEM_REMOVED, CHECKOUT_STARTED, ORDER_PLACED, CART_ABANDONED = range(5)
COMMERCE_CHANNELS = ("web", "app", "store")


@dataclass
class Journeys:
    web: WebRecords
    cart: ColumnRecords
    orders: Orders
    first_seen_ms: np.ndarray
    last_activity_ms: np.ndarray  # latest web, cart or dismissal event: nothing of the person comes later
    first_order_ms: np.ndarray  # -1 without an order
    identify_ms: np.ndarray  # -1 when never signed in
    known_ms: np.ndarray  # first moment the person gave an email (sign-in or guest checkout), -1 never
    needs_engagement: np.ndarray  # loyal without a repeat order: gets a ticket after the order it keeps
    removal_person: np.ndarray  # cart removals made while signed in (they become rejections)
    removal_ms: np.ndarray
    removal_product: np.ndarray
    dismissal_person: np.ndarray  # recommendations dismissed while signed in
    dismissal_ms: np.ndarray
    dismissal_product: np.ndarray


def simulate_journeys(
    rng: np.random.Generator, persons: Persons, clock: Clock, ids: IdAllocator, sink: IdentifierSink
) -> Journeys:
    plan = plan_sessions(rng, persons, clock)
    sessions = plan.sessions
    layout = lay_out_events(rng, persons, sessions)
    has_cart = sessions.kind_counts[:, ADD] > 0
    cart_id = text.scatter(text.hex_ids(rng, int(has_cart.sum()), "cart_", 16), has_cart)
    web_orders = web_orders_of(persons, sessions, layout, ids)
    store_orders = _store_orders(rng, persons, plan, web_orders, ids)
    orders = _merge_orders([web_orders, store_orders])
    checkout_email_typed, checkout_email_normalised = _checkout_emails(rng, persons, sessions)

    web = web_records(rng, persons, sessions, layout, cart_id, web_orders, sink)
    cart = cart_records(
        rng,
        persons,
        sessions,
        layout,
        cart_id,
        web_orders,
        store_orders,
        (checkout_email_typed, checkout_email_normalised),
        sink,
    )
    count = persons.count
    first_seen = np.full(count, np.iinfo(np.int64).max)
    np.minimum.at(first_seen, sessions.person[layout.session], layout.time_ms)
    last_activity = np.zeros(count, dtype=np.int64)
    np.maximum.at(last_activity, web.person, web.event_ms)
    np.maximum.at(last_activity, cart.person, cart.event_ms)
    removals, dismissals = _rejected_products(rng, persons, sessions, layout)
    # A recommendation dismissed right after the person's very last product view is their last activity.
    np.maximum.at(last_activity, dismissals[0], dismissals[1])
    first_order = np.full(count, np.iinfo(np.int64).max)
    np.minimum.at(first_order, orders.person, orders.time_ms)
    first_order = np.where(first_order == np.iinfo(np.int64).max, -1, first_order)
    # The sign-up: the person's first identify (later ones are log-ins on other devices).
    identify_ms = np.full(count, np.iinfo(np.int64).max)
    identify_rows = layout.block(IDENTIFY)
    np.minimum.at(identify_ms, sessions.person[layout.session[identify_rows]], layout.time_ms[identify_rows])
    identify_ms = np.where(identify_ms == np.iinfo(np.int64).max, -1, identify_ms)
    known_ms = _known_since(persons, sessions, layout, identify_ms, checkout_email_normalised)
    order_count = np.bincount(orders.person, minlength=count)
    return Journeys(
        web=web,
        cart=cart,
        orders=orders,
        first_seen_ms=first_seen,
        last_activity_ms=last_activity,
        first_order_ms=first_order,
        identify_ms=identify_ms,
        known_ms=known_ms,
        needs_engagement=(persons.stage == LOYALTY) & (order_count == 1),
        removal_person=removals[0],
        removal_ms=removals[1],
        removal_product=removals[2],
        dismissal_person=dismissals[0],
        dismissal_ms=dismissals[1],
        dismissal_product=dismissals[2],
    )


def web_orders_of(persons: Persons, sessions: Sessions, layout: EventLayout, ids: IdAllocator) -> Orders:
    """One order per session that completed its checkout, with the lines left in the cart."""
    ordering = np.flatnonzero(sessions.order)
    order_id = ids.take("order", len(ordering))
    order_of_session = np.full(len(sessions), -1, dtype=np.int64)
    order_of_session[ordering] = np.arange(len(ordering))
    lines = order_lines(sessions, layout)
    lines = lines[sessions.order[layout.session[lines]]]
    order_events = layout.block(ORDER)
    order_time = np.empty(len(sessions), dtype=np.int64)
    order_time[layout.session[order_events]] = layout.time_ms[order_events]
    device_kind = persons.device_kind[sessions.device[ordering]]
    channel = np.array([channel for _, channel, _ in vocab.DEVICES])[device_kind]
    return Orders(
        order_id=order_id,
        person=sessions.person[ordering],
        time_ms=order_time[ordering],
        channel=channel,
        with_user=sessions.user_known[ordering] | sessions.identify_here[ordering],
        email_typed=text.nulls(len(ordering)),  # the cart rows carry the checkout form's email
        email_normalised=text.nulls(len(ordering)),
        line_order=order_of_session[layout.session[lines]],
        line_product=layout.product[lines],
        line_quantity=layout.quantity[lines],
    )


def _store_orders(
    rng: np.random.Generator, persons: Persons, plan: Plan, web_orders: Orders, ids: IdAllocator
) -> Orders:
    """Till purchases between the first order and the last visit: no web events, only an email."""
    sessions = plan.sessions
    first_order = np.full(persons.count, np.iinfo(np.int64).max)
    np.minimum.at(first_order, web_orders.person, web_orders.time_ms)
    last_start = sessions.start_ms[plan.session_first + plan.session_count - 1]
    low = first_order + 6 * HOUR_MS
    high = last_start - 6 * HOUR_MS
    room = (first_order < np.iinfo(np.int64).max) & (high - low > DAY_MS)
    counts = np.where(room, rng.poisson(STORE_ORDERS_MEAN[persons.stage]), 0)
    person, _, _ = expand(counts)
    time_ms = with_millis(rng, uniform_between(rng, low[person], high[person]), 0.3)
    line_counts = 1 + rng.binomial(2, 0.4, len(person))
    line_order, _, _ = expand(line_counts)
    own = rng.random(len(person)) >= STORE_PLACEHOLDER_SHARE
    placeholder_typed, placeholder_normalised = placeholder_emails(rng, len(person))
    canonical = persons.email.take(pa.array(person))
    return Orders(
        order_id=ids.take("order", len(person)),
        person=person,
        time_ms=time_ms,
        channel=np.full(len(person), 2),
        with_user=np.zeros(len(person), dtype=bool),
        email_typed=text.where(own, typed_emails(rng, canonical), placeholder_typed),
        email_normalised=text.where(own, canonical, placeholder_normalised),
        line_order=line_order,
        line_product=pick_products(rng, persons.favourite_category[person[line_order]]),
        line_quantity=1 + (rng.random(len(line_order)) < 0.2),
    )


def _merge_orders(parts: list[Orders]) -> Orders:
    shift = np.cumsum([0] + [len(part) for part in parts[:-1]])
    return Orders(
        order_id=pa.concat_arrays([part.order_id for part in parts]),
        person=np.concatenate([part.person for part in parts]),
        time_ms=np.concatenate([part.time_ms for part in parts]),
        channel=np.concatenate([part.channel for part in parts]),
        with_user=np.concatenate([part.with_user for part in parts]),
        email_typed=pa.concat_arrays([part.email_typed for part in parts]),
        email_normalised=pa.concat_arrays([part.email_normalised for part in parts]),
        line_order=np.concatenate(
            [part.line_order + offset for part, offset in zip(parts, shift, strict=True)]
        ),
        line_product=np.concatenate([part.line_product for part in parts]),
        line_quantity=np.concatenate([part.line_quantity for part in parts]),
    )


def _checkout_emails(
    rng: np.random.Generator, persons: Persons, sessions: Sessions
) -> tuple[pa.Array, pa.Array]:
    """The email typed into each session's checkout form: guests must give one, some give a placeholder.

    A person's first completed order is placed with their own email (the order confirmation and the
    receipt go there), so every buyer is known to the shop; placeholders are typed into abandoned and
    later guest checkouts.
    """
    count = len(sessions)
    signed_in = sessions.user_known | sessions.identify_here
    canonical = persons.email.take(pa.array(sessions.person))
    ordering = np.flatnonzero(sessions.order)
    first_order = np.zeros(count, dtype=bool)
    first_order[ordering[np.unique(sessions.person[ordering], return_index=True)[1]]] = True
    placeholder = ~signed_in & ~first_order & (rng.random(count) < GUEST_PLACEHOLDER_SHARE)
    given = sessions.checkout & (~signed_in | (rng.random(count) < 0.5))
    placeholder_typed, placeholder_normalised = placeholder_emails(rng, count)
    typed = text.where(placeholder, placeholder_typed, typed_emails(rng, canonical))
    normalised = text.where(placeholder, placeholder_normalised, canonical)
    return text.where(given, typed), text.where(given, normalised)


def _known_since(
    persons: Persons,
    sessions: Sessions,
    layout: EventLayout,
    identify_ms: np.ndarray,
    checkout_email_normalised: pa.Array,
) -> np.ndarray:
    """When the shop first learnt who the person is: sign-in, or a guest checkout with their own email."""
    checkouts = layout.block(CHECKOUT)
    session = layout.session[checkouts]
    own_email = pc.equal(
        checkout_email_normalised.take(pa.array(session)),
        persons.email.take(pa.array(sessions.person[session])),
    )
    own_email = pc.fill_null(own_email, False).to_numpy(zero_copy_only=False)
    guest_known = np.full(persons.count, np.iinfo(np.int64).max)
    np.minimum.at(guest_known, sessions.person[session[own_email]], layout.time_ms[checkouts][own_email])
    guest_known = np.where(guest_known == np.iinfo(np.int64).max, -1, guest_known)
    return np.where(identify_ms >= 0, identify_ms, guest_known)


def _rejected_products(
    rng: np.random.Generator, persons: Persons, sessions: Sessions, layout: EventLayout
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Signed-in removals, and recommendations dismissed on product pages (just after the view)."""
    removes = layout.block(REMOVE)
    signed = layout.with_user[removes]
    removals = (
        sessions.person[layout.session[removes][signed]],
        layout.time_ms[removes][signed],
        layout.product[removes][signed],
    )
    views = layout.block(VIEW)
    dismissing = layout.with_user[views] & (rng.random(views.stop - views.start) < DISMISSAL_SHARE)
    person = sessions.person[layout.session[views][dismissing]]
    # One second after the view: still before the session's next event (events are >= 2 s apart).
    dismissals = (
        person,
        layout.time_ms[views][dismissing] // 1000 * 1000 + 1000,
        pick_products(rng, persons.favourite_category[person]),
    )
    return removals, dismissals


def cart_records(
    rng: np.random.Generator,
    persons: Persons,
    sessions: Sessions,
    layout: EventLayout,
    cart_id: pa.Array,
    web_orders: Orders,
    store_orders: Orders,
    checkout_email: tuple[pa.Array, pa.Array],
    sink: IdentifierSink,
) -> ColumnRecords:
    """The shop backend's view of every web/app cart, plus till orders (which only know an email)."""
    adds, removes, checkouts = layout.block(ADD), layout.block(REMOVE), layout.block(CHECKOUT)
    item_rows = np.concatenate([np.arange(adds.start, adds.stop), np.arange(removes.start, removes.stop)])
    order_events = layout.block(ORDER)
    order_time = np.empty(len(sessions), dtype=np.int64)
    order_time[layout.session[order_events]] = layout.time_ms[order_events]
    checkout_time = np.empty(len(sessions), dtype=np.int64)
    checkout_time[layout.session[checkouts]] = layout.time_ms[checkouts]
    ordering_sessions = np.flatnonzero(sessions.order)
    line_session = ordering_sessions[web_orders.line_order]
    abandoned = np.flatnonzero(sessions.abandon)
    abandon_time = checkout_time[abandoned] + rng.integers(30, 120, len(abandoned)) * MINUTE_MS

    # Session-based rows: item adds/removals, checkouts, order lines, abandonments.
    session = np.concatenate([layout.session[item_rows], layout.session[checkouts], line_session, abandoned])
    event_type = np.concatenate(
        [
            np.where(layout.kind[item_rows] == ADD, ITEM_ADDED, ITEM_REMOVED),
            np.full(checkouts.stop - checkouts.start, CHECKOUT_STARTED),
            np.full(len(line_session), ORDER_PLACED),
            np.full(len(abandoned), CART_ABANDONED),
        ]
    )
    time_ms = np.concatenate(
        [layout.time_ms[item_rows], layout.time_ms[checkouts], order_time[line_session], abandon_time]
    )
    product = np.concatenate(
        [
            layout.product[item_rows],
            np.full(checkouts.stop - checkouts.start, -1),
            web_orders.line_product,
            np.full(len(abandoned), -1),
        ]
    )
    quantity = np.concatenate(
        [
            layout.quantity[item_rows],
            np.zeros(checkouts.stop - checkouts.start, dtype=np.int64),
            web_orders.line_quantity,
            np.zeros(len(abandoned), dtype=np.int64),
        ]
    )
    signed = sessions.user_known | sessions.identify_here
    with_user = np.concatenate([layout.with_user[item_rows], signed[session[len(item_rows) :]]])
    order_id = pa.concat_arrays(
        [
            text.nulls(len(item_rows) + checkouts.stop - checkouts.start),
            web_orders.order_id.take(pa.array(web_orders.line_order)),
            text.nulls(len(abandoned)),
        ]
    )
    email_typed, email_normalised = _cart_emails(
        rng, persons, sessions, session, item_rows, with_user, checkout_email
    )
    device_kind = persons.device_kind[sessions.device[session]]
    channel = np.array([channel for _, channel, _ in vocab.DEVICES])[device_kind]
    person = sessions.person[session]
    anonymous_id = persons.device_anonymous_id.take(pa.array(sessions.device[session]))

    # Till orders: one row per line, no web identifiers.
    store_person = store_orders.person[store_orders.line_order]
    store_cart = text.hex_ids(rng, len(store_orders), "cart_", 16).take(pa.array(store_orders.line_order))
    line_index = pa.array(store_orders.line_order)

    person = np.concatenate([person, store_person])
    product = np.concatenate([product, store_orders.line_product])
    quantity = np.concatenate([quantity, store_orders.line_quantity])
    time_ms = np.concatenate([time_ms, store_orders.time_ms[store_orders.line_order]])
    with_user = np.concatenate([with_user, np.zeros(len(store_person), dtype=bool)])
    has_product = product >= 0
    shop = vocab.catalog()
    safe_product = np.maximum(product, 0)
    user_id = text.where(with_user, persons.user_id.take(pa.array(person)))
    email_typed = pa.concat_arrays([email_typed, store_orders.email_typed.take(line_index)])
    email_normalised = pa.concat_arrays([email_normalised, store_orders.email_normalised.take(line_index)])
    anonymous_id = pa.concat_arrays([anonymous_id, text.nulls(len(store_person))])
    sink.add("user_id", user_id, person)
    sink.add("email", email_normalised, person)
    sink.add("anonymous_id", anonymous_id, person)
    columns = {
        "event_id": text.uuid4_strings(rng, len(person)),
        "cart_id": pa.concat_arrays([cart_id.take(pa.array(session)), store_cart]),
        "user_id": user_id,
        "email": email_typed,
        "anonymous_id": anonymous_id,
        "event_type": text.lookup(
            CART_EVENT_TYPES, np.concatenate([event_type, np.full(len(store_person), ORDER_PLACED)])
        ),
        "product_id": text.where(has_product, shop.product_id.take(pa.array(safe_product))),
        "product_name": text.where(has_product, shop.name.take(pa.array(safe_product))),
        "category": text.where(has_product, shop.category_name(safe_product)),
        "quantity": text.integer_strings(quantity, valid=has_product),
        "unit_price": text.money_strings(shop.price_cents[safe_product], valid=has_product),
        "currency": text.where(has_product, vocab.CURRENCY),
        "order_id": pa.concat_arrays([order_id, store_orders.order_id.take(line_index)]),
        "channel": text.lookup(COMMERCE_CHANNELS, np.concatenate([channel, np.full(len(store_person), 2)])),
        "occurred_at": render_timestamps(rng, time_ms, persons.utc_offset_minutes[person], CART_TIMES),
    }
    return ColumnRecords("cart_events", columns, person, time_ms)


def _cart_emails(
    rng: np.random.Generator,
    persons: Persons,
    sessions: Sessions,
    session: np.ndarray,
    item_rows: np.ndarray,
    with_user: np.ndarray,
    checkout_email: tuple[pa.Array, pa.Array],
) -> tuple[pa.Array, pa.Array]:
    """Checkout-stage rows carry the checkout form's email; a few signed-in item rows the account email."""
    session_index = pa.array(session)
    checkout_typed = checkout_email[0].take(session_index)
    checkout_normalised = checkout_email[1].take(session_index)
    is_item = np.arange(len(session)) < len(item_rows)
    account = is_item & with_user & (rng.random(len(session)) < 0.1)
    canonical = persons.email.take(pa.array(sessions.person[session]))
    typed = pc.if_else(pa.array(is_item), text.where(account, typed_emails(rng, canonical)), checkout_typed)
    normalised = pc.if_else(pa.array(is_item), text.where(account, canonical), checkout_normalised)
    return typed, normalised
