"""The pseudonymisation key and the keyed hash (HMAC-SHA256) built on it.

The key never lives in code, SQL or the warehouse. It is read from, in order:

1. ``CX360_PSEUDONYMISATION_KEY`` (the key itself, as text; for secret managers and CI),
2. the file named by ``CX360_KEY_FILE`` (default ``.secrets/cx360.key`` under the project root, git-ignored),
   created with 32 random bytes on first use when absent.

In SQL the keyed hash is ``cx360_keyed_hash(value)``, a DuckDB macro in plain SQL (no Python UDF):
HMAC-SHA256 as in RFC 2104, ``sha256(opad || unhex(sha256(ipad || utf8(value))))``, where ``ipad`` and
``opad`` are the key (pre-hashed with SHA-256 when longer than 64 bytes, zero-padded to 64) XOR 0x36 and
0x5c. The pads are computed here and set as *connection variables* (``SET VARIABLE``, bound as
parameters), so neither the key nor the pads appear in any SQL text, ``target/``, log or database file.
:func:`register_udfs` sets the variables and a TEMP macro on one connection (DuckDB keeps both per
connection: a cursor is a new connection and needs its own call); dbt gets them from the profile's plugin
(:mod:`cx_pipeline.privacy.dbt_plugin`) on its connection and every cursor.

:func:`install_persistent_macro` also stores the macro (its SQL text only, no key) in the warehouse's
``main`` schema, so a connection that never called :func:`register_udfs` can still bind the staging views
that call it; evaluating it there raises :data:`MISSING_KEY_MESSAGE` instead of returning nulls.

Anyone who can run SQL on a keyed connection can read the pads (``getvariable``), and the key follows from
them: treat such a connection like the key file.

Losing the key makes existing hashes unmatchable (the suppression list stops working and BI keys change);
rotating it means re-hashing the suppression list from an old-key/new-key pair, which is impossible without
the plaintext: keep the key as carefully as the warehouse. See docs/privacy.md.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from cx_pipeline.settings import KEY_FILE, PSEUDONYMISATION_KEY
from cx_pipeline.sql import Sql, compose, plain_identifier, qualified_name, quote_literal

KEY_ENV = PSEUDONYMISATION_KEY.name
KEY_FILE_ENV = KEY_FILE.name
KEYED_HASH_FUNCTION = "cx360_keyed_hash"
# Connection variables holding the HMAC pads (BLOB, 64 bytes each); never written to the database.
IPAD_VARIABLE = "cx360_hmac_ipad"
OPAD_VARIABLE = "cx360_hmac_opad"
_BLOCK_BYTES = 64  # SHA-256 block size
MISSING_KEY_MESSAGE = (
    "cx360_keyed_hash: this DuckDB connection has no pseudonymisation key. Call "
    "cx_pipeline.privacy.keys.register_udfs(connection) on it (dbt: keep the plugin "
    "cx_pipeline.privacy.dbt_plugin in profiles.yml); see docs/privacy.md, Key management."
)
_MIN_KEY_BYTES = 16


class PseudonymisationKeyError(RuntimeError):
    """The key is missing, unreadable or too short."""


def key_file_path() -> Path:
    return KEY_FILE.read()


def _create_key_file(path: Path) -> None:
    """Write 32 random bytes (hex) to ``path`` without ever clobbering a key another process just made."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        # Atomic, and fails if the key exists: the first writer wins and everybody reads its key.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def load_key() -> bytes:
    """The key bytes from the environment or the key file (created on first use)."""
    from_env = PSEUDONYMISATION_KEY.read()
    if from_env is not None:
        key = from_env.encode()
        source = KEY_ENV
    else:
        path = key_file_path()
        if not path.exists():
            _create_key_file(path)
        try:
            key = path.read_bytes().strip()
        except OSError as error:
            raise PseudonymisationKeyError(
                f"Cannot read the pseudonymisation key file {path}: {error}"
            ) from error
        source = str(path)
    if len(key) < _MIN_KEY_BYTES:
        raise PseudonymisationKeyError(
            f"The pseudonymisation key from {source} is shorter than {_MIN_KEY_BYTES} bytes; "
            "use at least 32 random bytes (e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`)."
        )
    return key


@lru_cache(maxsize=4)
def _hasher(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod=hashlib.sha256)


def keyed_hash(value: str | None, key: bytes | None = None) -> str | None:
    """HMAC-SHA256 of ``value`` (UTF-8) as 64 lowercase hex characters; None stays None."""
    if value is None:
        return None
    hasher = _hasher(key if key is not None else load_key()).copy()
    hasher.update(value.encode("utf-8"))
    return hasher.hexdigest()


def keyed_hashes(values: Iterable[str | None], key: bytes | None = None) -> list[str | None]:
    base = _hasher(key if key is not None else load_key())
    out: list[str | None] = []
    for value in values:
        if value is None:
            out.append(None)
        else:
            hasher = base.copy()
            hasher.update(value.encode("utf-8"))
            out.append(hasher.hexdigest())
    return out


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """The HMAC-SHA256 inner and outer pads of ``key`` (RFC 2104): pre-hash keys longer than the block."""
    if len(key) > _BLOCK_BYTES:
        key = hashlib.sha256(key).digest()
    block = key.ljust(_BLOCK_BYTES, b"\0")
    return bytes(b ^ 0x36 for b in block), bytes(b ^ 0x5C for b in block)


def _pad_expression(variable: str) -> Sql:
    # The cast matters: without it an unset variable (type NULL) makes DuckDB fold the whole hash to NULL
    # before error() runs, i.e. silent nulls instead of the message.
    return compose(
        "cast(coalesce(getvariable({variable}), error({message})) as blob)",
        variable=quote_literal(variable),
        message=quote_literal(MISSING_KEY_MESSAGE),
    )


def keyed_hash_macro_sql(*, temporary: bool) -> Sql:
    """``CREATE OR REPLACE [TEMP] MACRO cx360_keyed_hash(value)``: HMAC-SHA256 in DuckDB SQL, no key inside.

    ``value`` is cast to VARCHAR and hashed as UTF-8; NULL gives NULL. The persistent variant lives in the
    database's ``main`` schema; a TEMP macro of the same name takes precedence on its connection.
    """
    return compose(
        "create or replace {kind} {macro}(value) as "
        "sha256({opad} || unhex(sha256({ipad} || encode(cast(value as varchar)))))",
        kind=Sql("temp macro") if temporary else Sql("macro"),
        macro=plain_identifier(KEYED_HASH_FUNCTION)
        if temporary
        else qualified_name("main", KEYED_HASH_FUNCTION),
        opad=_pad_expression(OPAD_VARIABLE),
        ipad=_pad_expression(IPAD_VARIABLE),
    )


def register_udfs(connection, key: bytes | None = None) -> None:
    """Make ``cx360_keyed_hash(value) -> varchar`` (HMAC-SHA256, 64 hex characters) work on ``connection``.

    Sets the pads as connection variables and creates the TEMP macro (idempotent; works on read-only
    connections). Variables and temp macros are per connection: a cursor (``connection.cursor()``) is a
    new connection and needs its own call. About 0.5 M values/s on 2 threads, like the former Python UDF:
    hash each distinct value once where it matters.
    """
    ipad, opad = hmac_pads(key if key is not None else load_key())
    # Bound as parameters: the SQL text (and anything that logs it) never holds the pads.
    connection.execute(
        compose("set variable {name} = unhex(?)", name=plain_identifier(IPAD_VARIABLE)), [ipad.hex()]
    )
    connection.execute(
        compose("set variable {name} = unhex(?)", name=plain_identifier(OPAD_VARIABLE)), [opad.hex()]
    )
    connection.execute(keyed_hash_macro_sql(temporary=True))


def install_persistent_macro(connection) -> None:
    """Store ``main.cx360_keyed_hash`` in the database (macro text only; the key stays in variables).

    Views that call the keyed hash (staging's suppression filter) then bind on any connection; without the
    key variables they fail with :data:`MISSING_KEY_MESSAGE` when a hash is actually computed.
    """
    connection.execute(keyed_hash_macro_sql(temporary=False))
