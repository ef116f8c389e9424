"""Resilience of whole `cx360 run`s (issue #8): idempotent re-runs, daily drops equal to a full rebuild,
and crash safety (SIGKILL during ingestion and during the dbt build). See docs/operations.md.

One small day-file sample (CX360_RESILIENCE_PERSONS persons, default 200) is split by file date into three
drops. Warehouse "full" loads every file in one run and is the reference; every other warehouse must end
with the same fingerprints (cx_pipeline.resilience.table_fingerprints: a content hash per table without the
volatile columns). Every run is a real `cx360 run` subprocess with its own CX360_* folders and Dagster home
and one shared pseudonymisation key, so the keyed hashes agree between warehouses.

The drop-by-drop warehouse builds `int_touchpoints_unioned` incrementally from its second run on (only the new
landing files are read) while the reference builds it once from everything: equal fingerprints prove the
incremental build end to end. tests/test_incremental.py checks the same in about a minute on a hand-made
sample.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from cx_pipeline.resilience import (
    DERIVED_SCHEMAS,
    PIPELINE_SCHEMAS,
    VOLATILE_COLUMNS,
    fingerprint_differences,
    half_loaded_files,
    rows_per_day,
    table_fingerprints,
)
from cx_pipeline.settings import PROJECT_ROOT
from cx_pipeline.sql import Sql, compose

# Each test runs the whole pipeline several times (about 50 minutes here): `make test-resilience`.
pytestmark = [pytest.mark.resilience, pytest.mark.xdist_group("pipeline_runs")]

PERSONS = int(os.environ.get("CX360_RESILIENCE_PERSONS", "200"))
SEED = 11
# The generator needs at least 254 days to hold every journey stage; it writes one file per source and day.
START, END = date(2026, 1, 1), date(2026, 9, 15)
# Drop 1: every file dated before the first cut, drop 2: before the second, drop 3: the rest. Ingestion
# pays ~0.3 s per file here, so drop 1's day files are merged into one file per source (see _merge_files).
DROP_CUTS = ("2026-09-01", "2026-09-08")
LOCK_RETRIES = 3
RUN_TIMEOUT_SECONDS = float(os.environ.get("CX360_RESILIENCE_RUN_TIMEOUT", "1800"))
# Columns that name this machine's folders rather than data (the quarantine copy of an unreadable file).
ENVIRONMENT_COLUMNS = frozenset({"quarantine_copy", "status_reason"})
COMPARED_OUTSIDE = VOLATILE_COLUMNS | ENVIRONMENT_COLUMNS


@dataclass
class Sample:
    landing: Path
    key_file: Path
    drops: list[list[str]]  # relative paths of landing files, per drop

    @property
    def all_files(self) -> list[str]:
        return [path for drop in self.drops for path in drop]


@dataclass
class Warehouse:
    """One isolated pipeline installation: warehouse, landing, Dagster home and output folders."""

    root: Path
    sample: Sample
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        dagster_home = self.root / "dagster_home"
        dagster_home.mkdir(parents=True, exist_ok=True)
        shutil.copy(PROJECT_ROOT / ".dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
        (self.root / "warehouse").mkdir(exist_ok=True)
        self.landing.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "DAGSTER_HOME": str(dagster_home),
            "CX360_WAREHOUSE": str(self.warehouse),
            "CX360_LANDING_DIR": str(self.landing),
            "CX360_TRUTH_DIR": str(self.root / "truth"),
            "CX360_EXPORTS_DIR": str(self.root / "exports"),
            "CX360_SERVING_DIR": str(self.serving_dir),
            "CX360_QUARANTINE_DIR": str(self.root / "quarantine"),
            "CX360_REPORTS_DIR": str(self.root / "reports"),
            "CX360_KEY_FILE": str(self.sample.key_file),
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "cx360.duckdb"

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def serving_dir(self) -> Path:
        return self.root / "serving"

    @property
    def dagster_home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    def deliver(self, relative_paths: list[str]) -> None:
        for relative in relative_paths:
            target = self.landing / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.sample.landing / relative, target)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "cx_pipeline.cli", "run", "--no-progress"]

    def run(self) -> float:
        """One complete `cx360 run`; returns its wall time."""
        started = time.monotonic()
        for _ in range(LOCK_RETRIES):
            log = self.root / f"run-{time.time_ns()}.log"
            with log.open("w") as out:
                result = subprocess.run(
                    self.command(),
                    env=self.env,
                    cwd=PROJECT_ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=RUN_TIMEOUT_SECONDS,
                    check=False,
                )
            if _succeeded(result.returncode, log) or not _lost_manifest_lock(log):
                break
        if not _succeeded(result.returncode, log):
            pytest.fail(f"cx360 run failed ({result.returncode}) in {self.root}:\n{_tail(log)}")
        return time.monotonic() - started

    def start(self) -> tuple[subprocess.Popen, Path]:
        """Start `cx360 run` in its own process group, so a crash can take down dbt's subprocess too."""
        log = self.root / f"run-{time.time_ns()}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                self.command(),
                env=self.env,
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return process, log

    def fingerprints(self, schemas=PIPELINE_SCHEMAS, exclude=COMPARED_OUTSIDE) -> dict[str, str]:
        from cx_pipeline.privacy.keys import register_udfs
        from cx_pipeline.warehouse import connect

        with connect(self.warehouse, read_only=True) as connection:
            # Staging views call the keyed-hash UDF dbt registers on its connections: register it with the
            # same key (load_key reads CX360_KEY_FILE).
            previous = os.environ.get("CX360_KEY_FILE")
            os.environ["CX360_KEY_FILE"] = str(self.sample.key_file)
            try:
                register_udfs(connection)
            finally:
                if previous is None:
                    os.environ.pop("CX360_KEY_FILE", None)
                else:
                    os.environ["CX360_KEY_FILE"] = previous
            return table_fingerprints(connection, schemas, exclude=exclude)

    def query(self, check: Callable) -> object:
        from cx_pipeline.warehouse import connect

        with connect(self.warehouse, read_only=True) as connection:
            return check(connection)


def _succeeded(returncode: int, log: Path) -> bool:
    """The Dagster run succeeded. `cx360 run` then prints a warehouse summary that can fail on its own (it
    names dim_customers columns); that is the CLI's business, not the pipeline's."""
    text = log.read_text(errors="replace")
    return returncode == 0 or re.search(r"^Dagster run \S+ succeeded\.$", text, re.M) is not None


def _lost_manifest_lock(log: Path) -> bool:
    """Every `cx360 run` re-parses dbt into dbt_project/target under a file lock that dagster-dbt gives up
    on after 60 s: runs started at the same time on a loaded machine fail at start-up. Retry those."""
    return "manifest.concurrent-update-lock" in log.read_text(errors="replace")


def _tail(log: Path, lines: int = 60) -> str:
    text = log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in text if "ASSET_CHECK_EVALUATION_PLANNED" not in line)[-6000:]


def _file_day(relative: str) -> str:
    return Path(relative).name[:10]


def _mergeable(path: Path) -> bool:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(data) and data.endswith(b"\n") and not data.startswith(b"\xef\xbb\xbf")


def _merge_files(landing: Path, relative_paths: list[str]) -> list[str]:
    """Concatenate the clean day files of each source into one file named after its first day (CSV: when
    the header matches the first file's); odd files (other header, encoding, no final newline) stay alone.
    The same merged files go to every warehouse, so the comparisons hold; late records stay late."""
    kept: list[str] = []
    by_source: dict[str, list[str]] = {}
    for relative in relative_paths:
        by_source.setdefault(relative.split("/", 1)[0], []).append(relative)
    for files in by_source.values():
        first = landing / files[0]
        if not _mergeable(first):
            kept += files
            continue
        header = first.read_bytes().split(b"\n", 1)[0] if first.suffix == ".csv" else None
        merged = [first.read_bytes()]
        for relative in files[1:]:
            path = landing / relative
            data = path.read_bytes() if _mergeable(path) else None
            if data is None or (header is not None and data.split(b"\n", 1)[0] != header):
                kept.append(relative)
                continue
            merged.append(data.split(b"\n", 1)[1] if header is not None else data)
            path.unlink()
        first.write_bytes(b"".join(merged))
        kept.append(files[0])
    return sorted(kept)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    from cx_pipeline.generator import GeneratorConfig, generate

    root = tmp_path_factory.mktemp("resilience_sample")
    landing = root / "landing"
    generate(
        GeneratorConfig(
            customers=PERSONS,
            seed=SEED,
            landing_dir=landing,
            truth_dir=root / "truth",
            start_date=START,
            end_date=END,
            file_period="day",
        ),
        progress=False,
    )
    files = sorted(p.relative_to(landing).as_posix() for p in landing.glob("*/*") if p.is_file())
    drops: list[list[str]] = [[], [], []]
    for relative in files:
        day = _file_day(relative)
        drops[sum(day >= cut for cut in DROP_CUTS)].append(relative)
    drops[0] = _merge_files(landing, drops[0])
    assert all(drops), f"every drop needs files: {[len(d) for d in drops]}"
    return Sample(landing=landing, key_file=root / "secrets" / "cx360.key", drops=drops)


@dataclass
class Reference:
    warehouse: Warehouse
    fingerprints: dict[str, str]
    touchpoints_per_day: dict[str, int]
    seconds: float


def _touchpoints_per_day(warehouse: Warehouse) -> dict[str, int]:
    return warehouse.query(lambda c: rows_per_day(c, "marts", "fct_touchpoints", "occurred_at"))


@pytest.fixture(scope="module")
def full_build(sample: Sample, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """Every file delivered at once, one uninterrupted run: the reference the other tests compare with."""
    warehouse = Warehouse(tmp_path_factory.mktemp("full"), sample)
    warehouse.deliver(sample.all_files)
    seconds = warehouse.run()
    assert warehouse.query(half_loaded_files) == []
    return Reference(warehouse, warehouse.fingerprints(), _touchpoints_per_day(warehouse), seconds)


def _assert_same(
    expected: dict[str, str], actual: dict[str, str], schemas: tuple[str, ...], what: str
) -> None:
    def keep(fingerprints: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in fingerprints.items() if k.split(".", 1)[0] in schemas}

    differences = fingerprint_differences(keep(expected), keep(actual))
    assert not differences, f"{what}: {len(differences)} relation(s) differ:\n" + "\n".join(differences)


def test_rerun_and_redelivery_change_nothing(full_build: Reference) -> None:
    """Idempotency: a second run on the same files changes no table in any schema; a file delivered again
    (the same content under a new name) or merely touched changes nothing in the marts."""
    warehouse = full_build.warehouse
    warehouse.run()
    _assert_same(full_build.fingerprints, warehouse.fingerprints(), PIPELINE_SCHEMAS, "re-run")

    resent = next(p for p in warehouse.sample.all_files if p.startswith("web_events/"))
    copy = warehouse.landing / resent.replace(".jsonl", "-resent.jsonl")
    shutil.copy(warehouse.landing / resent, copy)
    touched = next(p for p in warehouse.sample.all_files if p.startswith("cart_events/"))
    os.utime(warehouse.landing / touched)
    warehouse.run()

    after = warehouse.fingerprints()
    _assert_same(full_build.fingerprints, after, ("marts", "marketing", "bi"), "re-delivery")
    resent_rows = warehouse.query(
        lambda c: c.execute(
            "select count(*), count(*) filter (where _is_duplicate) from raw.web_events "
            "where _source_file = ?",
            [copy.relative_to(warehouse.landing).as_posix()],
        ).fetchall()[0]
    )
    assert resent_rows[0] > 0 and resent_rows[0] == resent_rows[1], resent_rows


def test_daily_drops_equal_a_full_rebuild(sample: Sample, full_build: Reference, tmp_path_factory) -> None:
    """Three daily drops loaded incrementally give the same derived tables as one load of every file; late
    and out-of-order events land on their own day."""
    warehouse = Warehouse(tmp_path_factory.mktemp("drops"), sample)
    delivered: list[str] = []
    for number, drop in enumerate(sample.drops, start=1):
        delivered += drop
        warehouse.deliver(drop)
        warehouse.run()
        manifest = warehouse.query(
            lambda c: c.execute(
                "select count(*), count(distinct run_id) from raw.loaded_files where superseded_at is null"
            ).fetchall()[0]
        )
        # Each file loaded once, by the run after its drop: earlier files were skipped, not re-read.
        assert manifest == (len(delivered), number), manifest
        assert warehouse.query(half_loaded_files) == []

    late_rows = warehouse.query(
        lambda c: c.execute(
            "select count(*) from raw.web_events "
            "where strftime(event_timestamp::timestamptz, '%Y-%m-%d') < ? and _source_file >= ?",
            [DROP_CUTS[0], f"web_events/{DROP_CUTS[0]}"],
        ).fetchall()[0][0]
    )
    assert late_rows > 0, "the sample should deliver some events of drop 1's days in later drops"

    _assert_same(full_build.fingerprints, warehouse.fingerprints(), DERIVED_SCHEMAS, "daily drops")
    assert _touchpoints_per_day(warehouse) == full_build.touchpoints_per_day


def _newest_run_db(dagster_home: Path) -> Path | None:
    runs = [p for p in (dagster_home / "history" / "runs").glob("*.db") if p.name != "index.db"]
    return max(runs, key=lambda p: p.stat().st_mtime) if runs else None


def _count_events(dagster_home: Path, since: float, where: Sql) -> int:
    database = _newest_run_db(dagster_home)
    if database is None or database.stat().st_ctime < since:
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as events:
            return events.execute(
                compose("select count(*) from event_logs where {where}", where=where)
            ).fetchone()[0]
    except sqlite3.Error:
        return 0


def _slots_of_newest_run(dagster_home: Path) -> tuple[str | None, list[str]]:
    """The newest run's id and the `duckdb_warehouse` pool slots it still holds. A SIGKILLed run never ends,
    so its slot stays claimed until the next `cx360 run` marks it failed and frees it
    (`cx_pipeline.operations.release_runs_of_dead_processes`)."""
    import dagster as dg

    database = _newest_run_db(dagster_home)
    run_id = database.stem if database else None
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        held = [
            f"slot held by step {slot.step_key} of run {run_id}"
            for slot in instance.event_log_storage.get_concurrency_info("duckdb_warehouse").claimed_slots
            if slot.run_id == run_id
        ]
    return run_id, held


def _killed_runs_left_behind(dagster_home: Path, run_ids: list[str]) -> list[str]:
    """What the killed runs still hold after a later run: unfinished runs and claimed pool slots."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        claimed = instance.event_log_storage.get_concurrency_info("duckdb_warehouse").claimed_slots
        problems = [
            f"slot held by step {slot.step_key} of killed run {slot.run_id}"
            for slot in claimed
            if slot.run_id in run_ids
        ]
        for run_id in run_ids:
            run = instance.get_run_by_id(run_id)
            if run is not None and not run.is_finished:
                problems.append(f"killed run {run_id} is still {run.status.value}")
    return problems


def _kill_when(warehouse: Warehouse, where: Sql, at_least: int, what: str) -> int:
    """Start a run and SIGKILL its whole process group once the run's event log has ``at_least`` matching
    events; returns how many had happened."""
    for _ in range(LOCK_RETRIES):
        started = time.time()
        process, log = warehouse.start()
        try:
            deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
            while time.monotonic() < deadline:
                seen = _count_events(warehouse.dagster_home, started, where)
                if seen >= at_least:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=60)
                    return seen
                if process.poll() is not None:
                    break
                time.sleep(0.2)
            else:
                pytest.fail(f"no {what} within {RUN_TIMEOUT_SECONDS} s")
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=60)
        if not _lost_manifest_lock(log):
            pytest.fail(f"the run ended ({process.returncode}) before {what}:\n{_tail(log)}")
    pytest.fail(f"could not start a run for {what}: dbt manifest lock")


# Per-file log lines of the ingestion assets (load_source's log=context.log.info).
INGESTION_FILE_LOGGED = Sql(
    "dagster_event_type is null and step_key like 'raw\\_\\_%' escape '\\' "
    "and json_extract(event, '$.user_message') like '%: %, %, read %'"
)
DBT_MODEL_MATERIALIZED = Sql("dagster_event_type = 'ASSET_MATERIALIZATION' and step_key like '%dbt%'")


def _serving_fingerprints(warehouse: Warehouse) -> dict[str, str]:
    from cx_pipeline.serving_client import open_serving_readonly, serving_file

    connection = open_serving_readonly(serving_file(warehouse.serving_dir))
    try:
        return table_fingerprints(connection, ("bi", "marts", "main"), exclude=COMPARED_OUTSIDE)
    finally:
        connection.close()


def test_crash_during_ingestion_and_dbt_build(
    sample: Sample, full_build: Reference, tmp_path_factory
) -> None:
    """SIGKILL a run during ingestion and during the dbt build: the serving copy published by the previous
    successful run stays intact, no file is half-loaded, and the next run ends where an uninterrupted run
    ends. (The previous publish must come from this warehouse: the erasure step republishes the serving copy
    from the warehouse before dbt runs, so a copy brought in from elsewhere would be replaced.)"""
    warehouse = Warehouse(tmp_path_factory.mktemp("crash"), sample)
    warehouse.deliver(sample.drops[0])
    warehouse.run()
    served = _serving_fingerprints(warehouse)
    assert served, "the first run should publish a serving copy"
    warehouse.deliver(sample.drops[1] + sample.drops[2])

    _kill_when(warehouse, INGESTION_FILE_LOGGED, 5, "ingestion of new files")
    # A kill inside a step leaves the run's warehouse pool slot claimed (between two steps it may hold none):
    # the next run must free it itself, or it would wait forever.
    killed_during_ingestion, _ = _slots_of_newest_run(warehouse.dagster_home)
    assert _serving_fingerprints(warehouse) == served
    assert warehouse.query(half_loaded_files) == []
    loaded_after_kill = warehouse.query(
        lambda c: c.execute("select count(*) from raw.loaded_files").fetchall()[0][0]
    )
    assert len(sample.drops[0]) < loaded_after_kill < len(sample.all_files), loaded_after_kill

    _kill_when(warehouse, DBT_MODEL_MATERIALIZED, 3, "dbt model materializations")
    killed_during_dbt, held = _slots_of_newest_run(warehouse.dagster_home)
    assert held, "a run killed inside the dbt step should still hold its pool slot"
    assert _serving_fingerprints(warehouse) == served
    assert warehouse.query(half_loaded_files) == []

    warehouse.run()
    _assert_same(full_build.fingerprints, warehouse.fingerprints(), PIPELINE_SCHEMAS, "after two crashes")
    assert warehouse.query(half_loaded_files) == []
    # Each run after a kill started without help: it marked the killed run failed and freed its slot.
    killed = [killed_during_ingestion, killed_during_dbt]
    left_behind = _killed_runs_left_behind(warehouse.dagster_home, killed)
    assert not left_behind, left_behind
