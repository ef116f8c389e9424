"""Identifier normalisation (mirrors dbt_project/macros/normalize_identifiers.sql) and candidate extraction.

The suppression list stores keyed hashes of *normalised* identifiers: trimmed lower-case emails, E.164
phones, trimmed ids. Erasure and verification find identifiers anywhere (identifier columns, JSON, free text,
quarantined lines, export files) by extracting candidate tokens from text, normalising them the same way and
comparing their keyed hashes. ``TOKEN_PATTERNS`` are the same patterns the SQL scans use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Candidate tokens in free text. Emails are matched on lower-cased text; ids keep their case.
EMAIL_PATTERN = r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+"
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{2,}"
PHONE_PATTERN = r"[+(]?[0-9][0-9 ().-]{6,24}[0-9]"
# Whole values longer than this are only searched token by token.
WHOLE_VALUE_MAX_LENGTH = 200

_BLANK = re.compile(r"^\s+|\s+$")
_EXTENSION = re.compile(r"\s*(ext\.?|x|#)\s*[0-9]{1,6}\s*$", re.IGNORECASE)
_NON_DIGITS = re.compile(r"[^0-9]")
_INTERNATIONAL = re.compile(r"^[1-9][0-9]{7,14}$")
_EMAIL_DOMAIN_RE = re.compile(r"@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_EMAIL_DOMAIN_BYTES_RE = re.compile(rb"@[a-z0-9-]+(?:\.[a-z0-9-]+)+")
_LOCAL_PART = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._%+-")
_LOCAL_PART_BYTES = frozenset(_LOCAL_PART_CHAR.encode()[0] for _LOCAL_PART_CHAR in _LOCAL_PART)
_MAX_LOCAL_PART = 64
_ID_RE = re.compile(ID_PATTERN)
_PHONE_RE = re.compile(PHONE_PATTERN)


def nullif_blank(value: str | None) -> str | None:
    if value is None:
        return None
    trimmed = _BLANK.sub("", value)
    return trimmed or None


def normalize_email(value: str | None) -> str | None:
    trimmed = nullif_blank(value)
    return trimmed.lower() if trimmed is not None else None


def normalize_phone(value: str | None, country_code: str = "1") -> str | None:
    """E.164 or None, by the rules of the ``normalize_phone`` dbt macro (docs/identity.md)."""
    if value is None:
        return None
    no_extension = _EXTENSION.sub("", value)
    digits = _NON_DIGITS.sub("", no_extension)
    if re.match(r"^[^0-9]*[+]", no_extension):
        return "+" + digits if _INTERNATIONAL.match(digits) else None
    if digits.startswith("00"):
        international = digits[2:]
        return "+" + international if _INTERNATIONAL.match(international) else None
    if len(digits) == 10:
        return f"+{country_code}{digits}"
    if len(digits) == len(country_code) + 10 and digits.startswith(country_code):
        return "+" + digits
    return None


def normalize_identifier(identifier_type: str, value: str | None, country_code: str = "1") -> str | None:
    if identifier_type == "email":
        return normalize_email(value)
    if identifier_type == "phone":
        return normalize_phone(value, country_code)
    return nullif_blank(value)


def extract_emails(lowered: str) -> list[str]:
    """Emails in lower-cased text, found from each ``@`` outwards.

    ``EMAIL_PATTERN`` as a Python regex backtracks quadratically on long runs of local-part characters
    (binary data); anchoring on the ``@`` keeps it linear.
    """
    found = []
    for match in _EMAIL_DOMAIN_RE.finditer(lowered):
        start = match.start()
        while start > 0 and match.start() - start < _MAX_LOCAL_PART and lowered[start - 1] in _LOCAL_PART:
            start -= 1
        if start < match.start():
            found.append(lowered[start : match.end()])
    return found


def extract_emails_from_bytes(lowered: bytes) -> list[str]:
    """:func:`extract_emails` for lower-cased bytes (e.g. a database file)."""
    found = []
    for match in _EMAIL_DOMAIN_BYTES_RE.finditer(lowered):
        start = match.start()
        while (
            start > 0 and match.start() - start < _MAX_LOCAL_PART and lowered[start - 1] in _LOCAL_PART_BYTES
        ):
            start -= 1
        if start < match.start():
            found.append(lowered[start : match.end()].decode("ascii"))
    return found


def candidates(text: str | None, country_code: str = "1") -> set[str]:
    """Every normalised identifier that ``text`` could contain: the whole value, emails, ids, phones."""
    if not text:
        return set()
    found: set[str] = set()
    whole = nullif_blank(text)
    if whole is not None and len(whole) <= WHOLE_VALUE_MAX_LENGTH:
        found.add(whole)
        found.add(whole.lower())
        phone = normalize_phone(whole, country_code)
        if phone:
            found.add(phone)
    found.update(extract_emails(text.lower()))
    found.update(_ID_RE.findall(text))
    for match in _PHONE_RE.findall(text):
        phone = normalize_phone(match, country_code)
        if phone:
            found.add(phone)
    return found


def candidates_of_many(texts: Iterable[str | None], country_code: str = "1") -> set[str]:
    found: set[str] = set()
    for text in texts:
        found |= candidates(text, country_code)
    return found
