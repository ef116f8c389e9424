"""True persons of one chunk: journey stage, names, identifiers and devices, and how they type them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cx_pipeline.generator import text, vocab
from cx_pipeline.generator.config import STAGE_SHARES

# Share of persons who sign up / log in on the web at some point, per final stage.
IDENTIFIED_SHARE = np.array([0.22, 0.50, 0.80, 0.90, 0.85])
PHONE_SHARE = 0.72
SHARED_DEVICE_SHARE = 0.01  # of identified persons
DEVICE_COUNT_SHARES = (0.55, 0.33, 0.12)  # 1, 2 or 3 devices, for persons who sign in
MAX_PERSONS = 9_999_999  # person ids have seven digits

# Id spaces: all scrambled bijections of the person's global index, so they are unique by construction.
_USER_ID_SPACE = 10**8
_EMAIL_NUMBER_SPACE = 10**7
_US_PHONE_SPACE = len(vocab.US_AREA_CODES) * 800 * 10_000
_GB_PHONE_SPACE = 10**8


@dataclass(frozen=True)
class Persons:
    """Column arrays of the persons in one chunk (local index 0..count-1)."""

    first_global: int
    stage: np.ndarray
    country: np.ndarray  # 0 = US, 1 = GB
    person_id: pa.Array
    first_name: pa.Array
    last_name: pa.Array
    email: pa.Array  # canonical: lower case, no spaces
    has_phone: np.ndarray
    phone_national: pa.Array  # the ten digits after the country code
    phone_e164: pa.Array
    user_id: pa.Array
    identified: np.ndarray
    utc_offset_minutes: np.ndarray
    favourite_category: np.ndarray
    device_first: np.ndarray  # index of the person's first device in the device arrays
    device_count: np.ndarray
    device_anonymous_id: pa.Array
    device_kind: np.ndarray  # index into vocab.DEVICES
    shares_device: np.ndarray  # uses an anonymous id another person uses too

    @property
    def count(self) -> int:
        return len(self.stage)


def draw_persons(rng: np.random.Generator, first_global: int, count: int, salt: int) -> Persons:
    global_index = np.arange(first_global, first_global + count, dtype=np.int64)
    stage = rng.choice(len(STAGE_SHARES), size=count, p=STAGE_SHARES).astype(np.int8)
    country = (rng.random(count) >= vocab.US_SHARE).astype(np.int8)
    first_index = rng.integers(0, len(vocab.FIRST_NAMES), count)
    last_index = rng.integers(0, len(vocab.LAST_NAMES), count)
    has_phone = rng.random(count) < PHONE_SHARE
    phone_national, phone_e164 = _phone_numbers(rng, global_index, country, salt)
    offsets = np.where(
        country == 0,
        np.array(vocab.US_OFFSETS)[rng.integers(0, len(vocab.US_OFFSETS), count)],
        np.array(vocab.GB_OFFSETS)[rng.integers(0, len(vocab.GB_OFFSETS), count)],
    )
    identified = rng.random(count) < IDENTIFIED_SHARE[stage]
    # A person who never signs in is one browser to the shop: nothing could tie a second device to it, so
    # the generator does not pretend it knows one (docs/generator.md, "Devices").
    device_count = np.where(identified, rng.choice([1, 2, 3], size=count, p=DEVICE_COUNT_SHARES), 1)
    device_first = np.concatenate([[0], np.cumsum(device_count)[:-1]])
    device_kind = rng.choice(len(vocab.DEVICES), size=int(device_count.sum()), p=vocab.DEVICE_WEIGHTS)
    anonymous_ids = text.uuid4_strings(rng, int(device_count.sum()))
    shares_device = np.zeros(count, dtype=bool)
    anonymous_ids, device_kind = _share_family_devices(
        rng, identified, device_first, anonymous_ids, device_kind, shares_device
    )
    return Persons(
        first_global=first_global,
        stage=stage,
        country=country,
        person_id=text.prefixed_ids("P", global_index + 1, 7),
        first_name=pa.array([vocab.FIRST_NAMES[i][0] for i in range(len(vocab.FIRST_NAMES))]).take(
            first_index
        ),
        last_name=pa.array([vocab.LAST_NAMES[i][0] for i in range(len(vocab.LAST_NAMES))]).take(last_index),
        email=_emails(rng, global_index, first_index, last_index, salt),
        has_phone=has_phone,
        phone_national=phone_national,
        phone_e164=phone_e164,
        user_id=text.prefixed_ids("U", text.scramble(global_index, _USER_ID_SPACE, salt), 8),
        identified=identified,
        utc_offset_minutes=offsets,
        favourite_category=rng.integers(0, len(vocab.catalog().category_size), count),
        device_first=device_first,
        device_count=device_count,
        device_anonymous_id=anonymous_ids,
        device_kind=device_kind,
        shares_device=shares_device,
    )


def _emails(
    rng: np.random.Generator, global_index: np.ndarray, first: np.ndarray, last: np.ndarray, salt: int
) -> pa.Array:
    first_ascii = pa.array([a for _, a in vocab.FIRST_NAMES]).take(first)
    last_ascii = pa.array([a for _, a in vocab.LAST_NAMES]).take(last)
    initial = pc.utf8_slice_codeunits(first_ascii, 0, 1)
    # A number unique to the person keeps two John Smiths from sharing an address.
    number = text.integer_strings(text.scramble(global_index, _EMAIL_NUMBER_SPACE, salt * 7 + 3))
    pattern = rng.choice(4, size=len(global_index), p=[0.45, 0.2, 0.2, 0.15])
    local = text.choose(
        pattern,
        [
            text.concat(first_ascii, ".", last_ascii, number),
            text.concat(first_ascii, last_ascii, number),
            text.concat(initial, ".", last_ascii, number),
            text.concat(first_ascii, "_", last_ascii, number),
        ],
    )
    domains, weights = zip(*vocab.EMAIL_DOMAINS, strict=True)
    domain = pa.array(domains).take(rng.choice(len(domains), size=len(global_index), p=weights))
    return text.concat(local, "@", domain)


def _phone_numbers(
    rng: np.random.Generator, global_index: np.ndarray, country: np.ndarray, salt: int
) -> tuple[pa.Array, pa.Array]:
    london = rng.random(len(global_index)) < 0.4
    return phone_numbers_of(global_index, country, london, salt)


def phone_numbers_of(
    number_index: np.ndarray, country: np.ndarray, london: np.ndarray, salt: int
) -> tuple[pa.Array, pa.Array]:
    """(national digits, E.164) of phone number ``number_index``: distinct indices give distinct numbers."""
    us = text.scramble(number_index, _US_PHONE_SPACE, salt * 11 + 5)
    area = np.array(vocab.US_AREA_CODES)[us // 8_000_000]
    exchange = 200 + us % 8_000_000 // 10_000
    us_national = area * 10_000_000 + exchange * 10_000 + us % 10_000
    gb = text.scramble(number_index, _GB_PHONE_SPACE, salt * 13 + 7)
    gb_national = np.where(london, 2_000_000_000 + gb, 7_400_000_000 + gb)
    national = text.strings_from_chars(text.digit_chars(np.where(country == 0, us_national, gb_national), 10))
    calling_code = text.choose(country, ["+1", "+44"])
    return national, text.concat(calling_code, national)


def changed_phone_numbers(
    global_index: np.ndarray, country: np.ndarray, salt: int
) -> tuple[pa.Array, pa.Array]:
    """A person's new mobile number: drawn from indices no person's first number uses, so never anyone's."""
    london = np.zeros(len(global_index), dtype=bool)
    return phone_numbers_of(np.asarray(global_index) + MAX_PERSONS + 1, country, london, salt)


def _share_family_devices(
    rng: np.random.Generator,
    identified: np.ndarray,
    device_first: np.ndarray,
    anonymous_ids: pa.Array,
    device_kind: np.ndarray,
    shares_device: np.ndarray,
) -> tuple[pa.Array, np.ndarray]:
    """Pair ~1% of identified persons: the second of each pair browses on the first one's main device."""
    candidates = np.flatnonzero(identified)
    pairs = round(len(candidates) * SHARED_DEVICE_SHARE / 2)
    if len(candidates) >= 2:
        pairs = max(pairs, 1)
    if pairs == 0:
        return anonymous_ids, device_kind
    chosen = rng.choice(candidates, size=2 * pairs, replace=False)
    owners, guests = chosen[0::2], chosen[1::2]
    device_source = np.arange(len(anonymous_ids))
    device_source[device_first[guests]] = device_first[owners]
    device_kind = device_kind[device_source]
    shares_device[chosen] = True
    return anonymous_ids.take(pa.array(device_source)), device_kind


# --- identifiers as people type them ---------------------------------------------------------------------

EMAIL_SPELLING_SHARES = np.array([0.55, 0.15, 0.05, 0.08, 0.05, 0.12])


def typed_emails(rng: np.random.Generator, canonical: pa.Array) -> pa.Array:
    """Emails as typed: mixed case, stray spaces (they all normalise back to ``canonical``)."""
    count = len(canonical)
    title = pc.utf8_title(canonical)
    spelling = rng.choice(len(EMAIL_SPELLING_SHARES), size=count, p=EMAIL_SPELLING_SHARES)
    return text.choose(
        spelling,
        [
            canonical,
            title,
            pc.utf8_upper(canonical),
            text.concat("  ", canonical, " "),
            text.concat(" ", title, "  "),
            pc.utf8_capitalize(canonical),
        ],
    )


def placeholder_emails(rng: np.random.Generator, count: int) -> tuple[pa.Array, pa.Array]:
    """(as typed, normalised) placeholder addresses that many unrelated people type."""
    spelling = rng.integers(0, len(vocab.PLACEHOLDER_EMAIL_SPELLINGS), count)
    typed = pa.array(vocab.PLACEHOLDER_EMAIL_SPELLINGS).take(pa.array(spelling))
    return typed, pc.utf8_lower(typed)


US_PHONE_FORMAT_SHARES = np.array([0.2, 0.2, 0.1, 0.08, 0.17, 0.15, 0.1])
GB_PHONE_FORMAT_SHARES = np.array([0.4, 0.2, 0.3, 0.1])


def typed_phones(rng: np.random.Generator, national: pa.Array, country: np.ndarray) -> pa.Array:
    """Phone numbers in the many formats people and systems write them (all read back to E.164)."""
    count = len(national)
    first3, mid3, last4 = (pc.utf8_slice_codeunits(national, a, b) for a, b in ((0, 3), (3, 6), (6, 10)))
    us_format = rng.choice(len(US_PHONE_FORMAT_SHARES), size=count, p=US_PHONE_FORMAT_SHARES)
    us = text.choose(
        us_format,
        [
            text.concat("+1 ", first3, " ", mid3, " ", last4),
            text.concat("(", first3, ") ", mid3, "-", last4),
            text.concat(first3, ".", mid3, ".", last4),
            text.concat("001", national),
            national,
            text.concat(first3, "-", mid3, "-", last4),
            text.concat("+1", national),
        ],
    )
    london = pc.starts_with(national, "2")

    def part(start: int, stop: int) -> pa.Array:
        return pc.utf8_slice_codeunits(national, start, stop)

    # London numbers are grouped 2-4-4 (20 7946 0958), mobiles 4-6 (7911 123456).
    grouped = pc.if_else(
        london,
        text.concat(part(0, 2), " ", part(2, 6), " ", part(6, 10)),
        text.concat(part(0, 4), " ", part(4, 10)),
    )
    gb_format = rng.choice(len(GB_PHONE_FORMAT_SHARES), size=count, p=GB_PHONE_FORMAT_SHARES)
    gb = text.choose(
        gb_format,
        [
            text.concat("+44 ", grouped),
            text.concat("0044 ", grouped),
            text.concat("+44", national),
            text.concat("0044", national),
        ],
    )
    return pc.if_else(pa.array(np.asarray(country) == 0), us, gb)
