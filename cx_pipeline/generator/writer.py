"""Landing files and ground truth on disk.

Files are written into a hidden staging folder next to their final place and moved in at the end, so a
sensor watching the landing folder never sees a half-written month.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cx_pipeline.contracts import CONTRACTS
from cx_pipeline.generator import text, vocab
from cx_pipeline.generator.config import DAY_MS, Clock
from cx_pipeline.generator.delivery import DeliveryPlan
from cx_pipeline.sql import Sql, compose, quote_literal

STAGING_NAME = ".cx360-generator-staging"
# Landing files the generator owns (and so may delete): <source>/<YYYY-MM>[-DD].<csv|jsonl>, and the next
# days' deliveries <source>/day-<YYYY-MM-DD>.<csv|jsonl> (cx_pipeline.generator.nextday).
NEXT_DAY_PREFIX = "day-"
OWNED_FILE = re.compile(r"^(day-)?\d{4}-\d{2}(-\d{2})?\.(csv|jsonl)$")
WRITE_BATCH_ROWS = 50_000  # lines materialised at once while writing a period file
IDENTIFIERS_FILE = "identifiers.csv"
PERSONS_FILE = "persons.csv"
MALFORMED_FILE = "malformed_rows.csv"
SUMMARY_FILE = "summary.json"
STATE_FILE = "state.json"  # what the next day needs: seed, clock, ids handed out, days written
CRM_STATE_FILE = "crm_contacts.csv"  # the latest version of every CRM contact, with its person
MERGES_FILE = "merges.csv"  # persons found to be one (next days' planted identify calls)
TRUTH_FILES = (IDENTIFIERS_FILE, PERSONS_FILE, MALFORMED_FILE, SUMMARY_FILE, STATE_FILE, CRM_STATE_FILE)
PERSON_COLUMNS = (
    "person_id",
    "final_stage",
    "first_name",
    "last_name",
    "country",
    "first_seen_at",
    "last_seen_at",
    "orders",
    "erased",
)
MERGE_COLUMNS = ("merged_on", "person_id", "merged_into", "email", "user_id")


def clear_owned_landing_files(landing_dir: Path) -> None:
    for source in CONTRACTS:
        folder = landing_dir / source
        if folder.is_dir():
            for path in folder.iterdir():
                if path.is_file() and OWNED_FILE.match(path.name):
                    path.unlink()


def string_bytes(lines: pa.Array | pa.ChunkedArray) -> memoryview:
    """The bytes of a string array's values, back to back (the lines of a file)."""
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    lines = lines.cast(pa.string())
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset : lines.offset + len(lines) + 1]
    data = lines.buffers()[2]
    if data is None:
        return memoryview(b"")
    return memoryview(data)[int(offsets[0]) : int(offsets[-1])]


@dataclass
class FileTally:
    rows: int = 0
    bytes: int = 0


@dataclass
class SourceTally:
    clean: int = 0
    duplicates: int = 0
    malformed: int = 0
    late: int = 0  # delivered in a later period file than the period of their event time
    files: dict[str, FileTally] = field(default_factory=dict)


class LandingWriter:
    """Appends each chunk's lines to the period files, tracking line numbers for the malformed rows."""

    def __init__(self, landing_dir: Path, clock: Clock, by_month: bool, file_prefix: str = "") -> None:
        self.landing_dir = landing_dir
        self.file_prefix = file_prefix
        self.staging = landing_dir / STAGING_NAME
        self.clock = clock
        self.by_month = by_month
        self.tallies: dict[str, SourceTally] = {source: SourceTally() for source in CONTRACTS}
        if self.staging.exists():
            shutil.rmtree(self.staging)
        for source in CONTRACTS:
            (self.staging / source).mkdir(parents=True)

    def period_of(self, epoch_ms: np.ndarray) -> np.ndarray:
        """Period number (month or day count since the start) of instants."""
        days = np.floor_divide(np.asarray(epoch_ms, dtype=np.int64), DAY_MS)
        if not self.by_month:
            return days
        year, month, _ = text.civil_dates(days)
        return year * 12 + month - 1

    def period_name(self, period: int) -> str:
        if self.by_month:
            return f"{period // 12:04d}-{period % 12 + 1:02d}"
        return text.period_names(np.array([period]), by_month=False)[0].as_py()

    def write(self, plan: DeliveryPlan) -> pa.Table:
        """Write one chunk of a source; returns the malformed rows as (source, file, line, kind)."""
        contract = CONTRACTS[plan.source]
        tally = self.tallies[plan.source]
        period = self.period_of(plan.delivery_ms)
        # Files list records in delivery order: late deliveries sit among records far newer than they are.
        order = np.lexsort((plan.delivery_ms, period))
        bounds = np.flatnonzero(np.diff(period[order])) + 1
        malformed: list[pa.Table] = []
        for rows in np.split(order, bounds):
            if not len(rows):
                continue
            name = f"{self.file_prefix}{self.period_name(int(period[rows[0]]))}.{contract.format}"
            relative = f"{plan.source}/{name}"
            file_tally = tally.files.setdefault(relative, FileTally())
            path = self.staging / relative
            header_lines = 1 if contract.format == "csv" else 0
            with path.open("ab") as handle:
                if contract.format == "csv" and file_tally.rows == 0:
                    header = text.csv_header(contract.field_names)
                    handle.write(header)
                    file_tally.bytes += len(header)
                for start in range(0, len(rows), WRITE_BATCH_ROWS):
                    batch = rows[start : start + WRITE_BATCH_ROWS]
                    file_tally.bytes += handle.write(string_bytes(plan.render(batch)))
            broken = np.flatnonzero(plan.malformed_kind[rows] >= 0)
            if len(broken):
                malformed.append(
                    pa.table(
                        {
                            "source": text.constant(plan.source, len(broken)),
                            "file": text.constant(relative, len(broken)),
                            "line": pa.array(file_tally.rows + header_lines + 1 + broken),
                            "kind": text.lookup(plan.kinds, plan.malformed_kind[rows][broken]),
                        }
                    )
                )
            file_tally.rows += len(rows)
        well_formed = plan.malformed_kind < 0
        tally.clean += int((well_formed & ~plan.duplicate).sum())
        tally.duplicates += int(plan.duplicate.sum())
        tally.malformed += int((~well_formed).sum())
        tally.late += int((well_formed & (self.period_of(plan.event_ms) < period)).sum())
        return pa.concat_tables(malformed) if malformed else _empty_malformed()

    def publish(self, overwrite: bool = True) -> None:
        """Move the staged files into the landing folder and drop the staging folder."""
        staged = [path for source in CONTRACTS for path in sorted((self.staging / source).iterdir())]
        if not overwrite:
            existing = [
                self.landing_dir / path.parent.name / path.name
                for path in staged
                if (self.landing_dir / path.parent.name / path.name).exists()
            ]
            if existing:
                raise FileExistsError(f"landing files exist already, not rewriting them: {existing[:3]}")
        for path in staged:
            target = self.landing_dir / path.parent.name
            target.mkdir(parents=True, exist_ok=True)
            path.replace(target / path.name)
        shutil.rmtree(self.staging)


def _empty_malformed() -> pa.Table:
    return pa.table(
        {
            "source": pa.array([], pa.string()),
            "file": pa.array([], pa.string()),
            "line": pa.array([], pa.int64()),
            "kind": pa.array([], pa.string()),
        }
    )


class TruthWriter:
    """The ground truth: who is who, what they did, and which rows were broken on purpose."""

    def __init__(self, truth_dir: Path) -> None:
        self.truth_dir = truth_dir
        self.staging = truth_dir / STAGING_NAME
        if self.staging.exists():
            shutil.rmtree(self.staging)
        (self.staging / "identifier_parts").mkdir(parents=True)
        self.persons_path = self.staging / PERSONS_FILE
        self.persons_path.write_bytes(text.csv_header(PERSON_COLUMNS))
        self.crm_path = self.staging / CRM_STATE_FILE
        self.crm_path.write_bytes(text.csv_header(("person_id", *CONTRACTS["crm_contacts"].field_names)))
        self.parts = 0
        self.malformed: list[pa.Table] = []

    def add_persons(self, columns: list[pa.Array]) -> None:
        with self.persons_path.open("ab") as handle:
            handle.write(string_bytes(text.csv_lines(columns)))

    def add_crm_contacts(self, columns: list[pa.Array]) -> None:
        """Latest contact versions: person_id, then the crm_contacts fields as delivered."""
        with self.crm_path.open("ab") as handle:
            handle.write(string_bytes(text.csv_lines(columns)))

    def add_identifiers(self, identifiers: pa.Table) -> None:
        pq.write_table(identifiers, self.staging / "identifier_parts" / f"part-{self.parts:05d}.parquet")
        self.parts += 1

    def add_malformed(self, rows: pa.Table) -> None:
        if rows.num_rows:
            self.malformed.append(rows)

    def finish(self, summary: dict[str, Any], state: dict[str, Any]) -> int:
        """Write the remaining truth files and move them in; returns the number of identifier rows."""
        identifier_rows = self._write_identifiers()
        (self.staging / STATE_FILE).write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        summary = {**summary, "identifiers": identifier_rows}
        malformed = pa.concat_tables([_empty_malformed(), *self.malformed])
        malformed = malformed.sort_by([("source", "ascending"), ("file", "ascending"), ("line", "ascending")])
        (self.staging / MALFORMED_FILE).write_bytes(
            text.csv_header(malformed.column_names)
            + bytes(string_bytes(text.csv_lines([c.cast(pa.string()) for c in malformed.columns])))
            if malformed.num_rows
            else text.csv_header(malformed.column_names)
        )
        (self.staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        self.truth_dir.mkdir(parents=True, exist_ok=True)
        (self.truth_dir / MERGES_FILE).unlink(missing_ok=True)  # a fresh population: nobody merged yet
        for name in TRUTH_FILES:
            (self.staging / name).replace(self.truth_dir / name)
        shutil.rmtree(self.staging)
        return identifier_rows

    def _write_identifiers(self) -> int:
        parts = str(self.staging / "identifier_parts" / "*.parquet")
        pairs = compose(
            "SELECT identifier_type, value AS identifier_value, person_id FROM read_parquet({parts})",
            parts=quote_literal(parts),
        )
        return write_identifier_truth(pairs, self.staging / IDENTIFIERS_FILE, self.staging / "duckdb_tmp")


def write_identifier_truth(pairs_query: Sql, target: Path, temp_dir: Path) -> int:
    """identifiers.csv from (identifier_type, identifier_value, person_id) rows: one row per distinct pair,
    placeholders and identifiers of several persons (family devices) flagged as shared.

    ``pairs_query`` is SQL composed by the generator itself (file paths cannot be bound as parameters).
    """
    placeholders = [("email", email) for email in vocab.PLACEHOLDER_EMAILS]
    placeholders.append(("phone", vocab.PLACEHOLDER_PHONE_E164))
    with duckdb.connect(config={"threads": 2, "memory_limit": "1GB"}) as connection:
        connection.execute("SET enable_progress_bar = false")
        connection.execute("SET temp_directory = ?", [str(temp_dir)])
        connection.execute("CREATE TEMP TABLE placeholders (identifier_type VARCHAR, value VARCHAR)")
        connection.executemany("INSERT INTO placeholders VALUES (?, ?)", placeholders)
        # COPY cannot bind parameters: the target path (built here, not taken from input) is a quoted literal.
        copied = connection.execute(
            compose(
                """
            COPY (
                WITH pairs AS (SELECT DISTINCT * FROM ({pairs_query}))
                SELECT
                    identifier_type,
                    identifier_value,
                    person_id,
                    (count(*) OVER (PARTITION BY identifier_type, identifier_value) > 1
                        OR EXISTS (
                            SELECT 1 FROM placeholders AS p
                            WHERE p.identifier_type = pairs.identifier_type
                                AND p.value = pairs.identifier_value
                        )) AS is_shared
                FROM pairs
                ORDER BY person_id, identifier_type, identifier_value
            ) TO {target} (FORMAT csv, HEADER true)
            """,
                pairs_query=pairs_query,
                target=quote_literal(str(target)),
            )
        ).fetchall()
    return int(copied[0][0])
