"""The one home for building SQL text: quoted identifiers, quoted literals, composed statements.

Values are bound with ``?`` (or ``$name``) parameters wherever DuckDB allows it. What cannot be bound goes
through this module:

- identifiers (schema, table, column names): ``quote_identifier`` / ``qualified_name``; names that must be
  plain (from code or contracts) are allow-listed by ``plain_identifier``;
- string constants where binding is impossible (``ATTACH``/``COPY`` paths, options, regexes and JSON paths
  written into DDL or macro bodies): ``quote_literal``;
- statements: ``compose`` fills a template written in code with parts that are themselves ``Sql``
  (made by the functions here) or integers. A plain ``str`` is refused, so unquoted input cannot be
  pasted into a statement by accident.

``Sql`` is a ``str``: DuckDB executes it as it is. ``Sql("...")`` marks SQL text written in code (a
string literal, checked by ``tests/test_sql_helpers.py``), never text computed at run time.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable
from typing import LiteralString

_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DATA_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_ ]*(\(\d+(, ?\d+)?\))?(\[\])?")


class Sql(str):
    """SQL text made of code-written SQL and quoted parts only (see the module docstring)."""

    __slots__ = ()


def quote_identifier(name: str) -> Sql:
    """``name`` as a double-quoted identifier (``"`` doubled): any text, including spaces and unicode."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"an SQL identifier must be a non-empty string, got {name!r}")
    if "\x00" in name:
        raise ValueError(f"an SQL identifier cannot contain a NUL character: {name!r}")
    return Sql('"' + name.replace('"', '""') + '"')


def plain_identifier(name: str) -> Sql:
    """Allow-list then quote: only ``[A-Za-z_][A-Za-z0-9_]*`` (names from code, contracts, catalogs)."""
    if not isinstance(name, str) or not _PLAIN_IDENTIFIER.fullmatch(name):
        raise ValueError(f"refusing to use {name!r} as a SQL identifier (expected a plain name)")
    return quote_identifier(name)


def qualified_name(*parts: str) -> Sql:
    """``"catalog"."schema"."table"`` (any number of parts), each part quoted."""
    if not parts:
        raise ValueError("a qualified name needs at least one part")
    return Sql(".".join(quote_identifier(part) for part in parts))


def quote_literal(value: str) -> Sql:
    """``value`` as a single-quoted SQL string (``'`` doubled), for where a ``?`` cannot be bound."""
    if not isinstance(value, str):
        raise TypeError(f"quote_literal takes a str, got {type(value).__name__}")
    if "\x00" in value:
        raise ValueError(f"an SQL string literal cannot contain a NUL character: {value!r}")
    return Sql("'" + value.replace("'", "''") + "'")


def number(value: float) -> Sql:
    """A finite int or float as a SQL numeric literal."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value
        or abs(value) == float("inf")
    ):
        raise ValueError(f"not a finite number: {value!r}")
    return Sql(repr(value) if isinstance(value, float) else str(int(value)))


def data_type(name: str) -> Sql:
    """An allow-listed type name written in code: ``BIGINT``, ``DECIMAL(18,4)``, ``VARCHAR[]``."""
    if not isinstance(name, str) or not _DATA_TYPE.fullmatch(name):
        raise ValueError(f"refusing to use {name!r} as a SQL data type")
    return Sql(name)


def _render(name: str, part: object) -> str:
    if isinstance(part, Sql):
        return part
    if isinstance(part, int) and not isinstance(part, bool):
        return str(int(part))
    raise TypeError(
        f"SQL part {name!r} must be Sql (quote_identifier, quote_literal, compose...) or int, "
        f"got {type(part).__name__}: {part!r}"
    )


def compose(template: LiteralString, /, **parts: Sql | int) -> Sql:
    """Fill ``{name}`` fields of a code-written ``template`` with quoted parts (``{{``/``}}`` are braces).

    Every field must be a plain name given in ``parts`` and every part must be used; no conversions or
    format specs.
    """
    used: set[str] = set()
    for _, field, spec, conversion in string.Formatter().parse(template):
        if field is None:
            continue
        if not _FIELD_NAME.fullmatch(field) or spec or conversion:
            raise ValueError(f"SQL template fields must be plain names, got {{{field}}} in {template!r}")
        if field not in parts:
            raise KeyError(f"SQL template field {{{field}}} has no part")
        used.add(field)
    unused = set(parts) - used
    if unused:
        raise KeyError(f"SQL parts not used by the template: {sorted(unused)}")
    return Sql(template.format_map({name: _render(name, part) for name, part in parts.items()}))


def join(parts: Iterable[Sql], separator: LiteralString = ", ") -> Sql:
    """``parts`` (each ``Sql``) joined by a code-written ``separator``."""
    items = list(parts)
    for index, part in enumerate(items):
        _render(f"#{index}", part)
    return Sql(separator.join(items))


def identifiers(names: Iterable[str]) -> Sql:
    """``"a", "b", "c"``: a quoted column list."""
    return join(quote_identifier(name) for name in names)


def placeholders(count: int) -> Sql:
    """``?, ?, ?``: ``count`` positional parameters (for ``IN (...)`` or ``VALUES (...)``)."""
    if count < 1:
        raise ValueError("at least one placeholder is needed")
    return Sql(", ".join("?" * count))
