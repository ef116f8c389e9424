"""Erasure deferred to the dbt build: which tables the build of the same run rebuilds, and the bookkeeping.

When the run that executes erasure requests also rebuilds dbt models, scrubbing those models' tables before
the build is wasted work: dbt replaces them from the scrubbed raw tables through staging, which filters the
suppression list. So the erasure step scrubs only what the build does *not* replace (:func:`rebuilt_relations`
tells which), and records what it left to the build (:func:`record_deferral`): the tables, and the keyed
hashes of every value it would have searched them for (identifiers, customer ids, bi pseudonyms). The
post-build verification searches every table for those hashes as well as for the suppression list, then
clears the record (:func:`clear_deferrals`). A run that fails before a passing verification leaves the
record behind; the next run either rebuilds the tables again or, if it does not run dbt, scrubs them itself
(:func:`outstanding_tables`).

A table counts as rebuilt when a dbt model writes it with a materialization that replaces the whole relation
(``table``, ``view``) *and* the model is selected in the run. Incremental models (whatever the manifest says
at run time: they keep their old rows), snapshots, seeds, tables no model writes (raw, quarantine, privacy,
leftovers of removed models, dbt temp tables) are always scrubbed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from cx_pipeline.privacy.scan import TableRef
from cx_pipeline.sql import compose, qualified_name

# Materializations that replace the relation as a whole on every build.
REPLACING_MATERIALIZATIONS = frozenset({"table", "view"})

DEFERRAL_DDL = (
    """create table if not exists privacy.deferred_erasures (
        identifier_hash varchar not null,
        request_id varchar,
        run_id varchar,
        deferred_at timestamptz not null
    )""",
    """create table if not exists privacy.deferred_tables (
        table_name varchar not null,
        run_id varchar,
        deferred_at timestamptz not null
    )""",
)


def ensure_deferral_tables(connection: duckdb.DuckDBPyConnection) -> None:
    for statement in DEFERRAL_DDL:
        connection.execute(statement)


def load_manifest_nodes(manifest_path: Path | str) -> Mapping[str, Mapping[str, Any]]:
    return json.loads(Path(manifest_path).read_text())["nodes"]


def rebuilt_relations(
    manifest_nodes: Mapping[str, Mapping[str, Any]],
    is_selected: Callable[[Mapping[str, Any]], bool],
) -> set[TableRef]:
    """The relations dbt replaces as a whole in this run: enabled models materialized as ``table`` or
    ``view`` for which ``is_selected(node)`` holds (the run's asset selection)."""
    rebuilt = set()
    for node in manifest_nodes.values():
        if node.get("resource_type") != "model":
            continue
        config = node.get("config") or {}
        if config.get("enabled") is False:
            continue
        if config.get("materialized") not in REPLACING_MATERIALIZATIONS:
            continue
        if is_selected(node):
            rebuilt.add(TableRef(node["schema"], node.get("alias") or node["name"]))
    return rebuilt


def record_deferral(
    connection: duckdb.DuckDBPyConnection,
    tables: Iterable[TableRef],
    needles: Mapping[str, str | None],
    *,
    run_id: str | None,
    at: datetime,
) -> None:
    """Remember the tables left to the build and the keyed hashes ``{hash: request_id}`` to verify them by."""
    ensure_deferral_tables(connection)
    names = sorted({str(table) for table in tables})
    if names:
        connection.execute(
            "insert into privacy.deferred_tables select unnest($names), $run_id, $at",
            {"names": names, "run_id": run_id, "at": at},
        )
    hashes = sorted(needles)
    if hashes:
        connection.execute(
            "insert into privacy.deferred_erasures select unnest($hashes), unnest($requests), $run_id, $at",
            {"hashes": hashes, "requests": [needles[h] for h in hashes], "run_id": run_id, "at": at},
        )


def deferred_needles(connection: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    ensure_deferral_tables(connection)
    rows = connection.execute(
        "select identifier_hash, min(request_id) from privacy.deferred_erasures group by 1"
    ).fetchall()
    return dict(rows)


def outstanding_tables(connection: duckdb.DuckDBPyConnection) -> set[TableRef]:
    """Tables an earlier run left to its build that no passing verification has seen since."""
    ensure_deferral_tables(connection)
    rows = connection.execute("select distinct table_name from privacy.deferred_tables").fetchall()
    refs = set()
    for (name,) in rows:
        schema, _, table = name.partition(".")
        refs.add(TableRef(schema, table))
    return refs


def has_deferrals(connection: duckdb.DuckDBPyConnection) -> bool:
    ensure_deferral_tables(connection)
    return bool(
        connection.execute(
            "select (select count(*) from privacy.deferred_tables) + "
            "(select count(*) from privacy.deferred_erasures)"
        ).fetchall()[0][0]
    )


def clear_deferrals(connection: duckdb.DuckDBPyConnection, up_to: datetime | None) -> None:
    """Forget the deferrals recorded at or before ``up_to`` (None: all): a verification has covered them."""
    ensure_deferral_tables(connection)
    for name in ("deferred_tables", "deferred_erasures"):
        table = qualified_name("privacy", name)
        if up_to is None:
            connection.execute(compose("delete from {table}", table=table))
        else:
            connection.execute(compose("delete from {table} where deferred_at <= ?", table=table), [up_to])
