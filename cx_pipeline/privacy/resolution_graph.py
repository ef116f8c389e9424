"""The erasure step's own identity graph: who a person is in the data as it stands in this run.

Erasure resolves a request to the whole person through the identity graph. The marts' map is the previous
run's: a request delivered together with the person's data (a first load, a backfill) is not in it, and a
person erased earlier whose other identifiers arrive later (a late identify call tying a new device to a
suppressed email) is not either, because staging hides suppressed records and with them the links. Both
left "remnant" customers behind.

So when the step has something to resolve (pending requests, or newly loaded rows that match the
suppression list), it first builds the identity graph of the current raw data with the project's own dbt
models and rules (``+int_identifiers_resolved``: the same guard-rails against shared devices and over-linked
identifiers), *without* the suppression filter, into ``<schema>_erasure`` schemas beside the real ones (dbt
var ``erasure_resolution``). The step resolves through it (and through the previous map, which names the
customer ids the marts still hold), then drops those schemas. No plaintext leaves the warehouse.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import duckdb

from cx_pipeline.privacy.scan import TableRef
from cx_pipeline.settings import DBT_PROJECT_DIR
from cx_pipeline.sql import compose, quote_identifier

SCHEMA_SUFFIX = "_erasure"
RESOLUTION_MAP = TableRef(f"intermediate{SCHEMA_SUFFIX}", "int_identifiers_resolved")
SELECTION = "+int_identifiers_resolved"


class ResolutionGraphError(RuntimeError):
    """dbt could not build the erasure step's identity graph; nothing was erased yet."""


def build_resolution_graph(warehouse: Path, log_dir: Path) -> None:
    """``dbt build`` of the identity models into ``<schema>_erasure`` (no tests), on ``warehouse``.

    No connection to ``warehouse`` may be open in this process (DuckDB admits one writer: dbt's).
    """
    from cx_pipeline.defs.dbt.project import dbt_executable

    log_dir.mkdir(parents=True, exist_ok=True)
    command = [
        dbt_executable(),
        "build",
        "--select",
        SELECTION,
        "--exclude-resource-type",
        "test",
        "--exclude-resource-type",
        "unit_test",
        "--vars",
        json.dumps({"erasure_resolution": True}),
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        # Its own target and log folders: the main manifest and partial parse stay as they are.
        "--target-path",
        str(log_dir / "target"),
        "--log-path",
        str(log_dir),
    ]
    environment = {**os.environ, "CX360_WAREHOUSE": str(warehouse)}
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    (log_dir / "dbt_output.log").write_text(completed.stdout + completed.stderr, encoding="utf-8")
    if completed.returncode != 0:
        tail = "\n".join(completed.stdout.splitlines()[-25:])
        raise ResolutionGraphError(
            f"dbt could not build the erasure step's identity graph ({SELECTION} into *{SCHEMA_SUFFIX} "
            f"schemas) on {warehouse}; no request was executed and nothing was deleted, so the next run "
            f"tries again. Full output: {log_dir / 'dbt_output.log'}\n{tail}"
        )


def drop_resolution_graph(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """Drop every ``<schema>_erasure`` schema (this step's, or one a killed run left); their names."""
    schemas = [
        name
        for (name,) in connection.execute(
            "select schema_name from information_schema.schemata "
            "where catalog_name = current_database() and schema_name like ?",
            [f"%{SCHEMA_SUFFIX}"],
        ).fetchall()
    ]
    for schema in schemas:
        connection.execute(compose("drop schema if exists {schema} cascade", schema=quote_identifier(schema)))
    return schemas
