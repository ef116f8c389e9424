"""One ``cx360 run`` in its own environment, and where its time went.

Each pipeline run gets a run folder with its own warehouse, Dagster instance (``DAGSTER_HOME`` with a copy
of the project's ``dagster.yaml``), exports, serving, quarantine and key file, and a hard-linked copy of
the cached landing folder (so the incremental drop never touches the cache).

Timings come from three places, all measured by the same clock (the machine's):

- the subprocess wall time and memory (``procmon``);
- the Dagster event log of the run (``STEP_START`` .. ``STEP_SUCCESS``/``STEP_FAILURE`` per step, and the
  asset materializations of each step, which name the stage);
- dbt's ``run_results.json`` of the build step (per-node timings; dagster-dbt writes it in a
  per-invocation folder ``dbt_project/target/cx360_dbt_models-<run id[:7]>-<uuid>/``), classified into
  layers with the ``manifest.json`` next to it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from benchmarks.procmon import MonitoredRun, run_monitored
from cx_pipeline import settings
from cx_pipeline.settings import PROJECT_ROOT

# Stage names, in report order. dbt stages are measured inside the dbt build step.
INGESTION = "ingestion (raw.*)"
INGESTION_CHECKS = "ingestion checks (raw.* asset checks)"
DBT_BUILD = "dbt build (whole step)"
DBT_STAGING = "dbt: staging models"
DBT_INTERMEDIATE = "dbt: intermediate models (other)"
DBT_IDENTITY = "dbt: identity resolution models"
DBT_CX = "dbt: CX measures models"
DBT_MARTS = "dbt: core marts"
DBT_DOWNSTREAM = "dbt: privacy, marketing & BI models"
DBT_TESTS = "dbt: data tests"
DBT_OTHER = "dbt: seeds, snapshots, other"
DBT_OVERHEAD = "dbt: start-up, parse and gaps"
PY_CX = "CX measures (Python: CLV)"
PY_PRIVACY = "privacy (erasure, verification)"
PY_PUBLISH = "publishing & exports (exports, serving, report)"
PY_OTHER = "other Python assets"
STARTUP = "start-up before the run (imports, dbt parse, definitions)"
DAGSTER_OVERHEAD = "Dagster overhead between steps, shutdown"
TOTAL = "total (process wall time)"

STAGE_ORDER = (
    INGESTION,
    INGESTION_CHECKS,
    DBT_BUILD,
    DBT_STAGING,
    DBT_INTERMEDIATE,
    DBT_IDENTITY,
    DBT_CX,
    DBT_MARTS,
    DBT_DOWNSTREAM,
    DBT_TESTS,
    DBT_OTHER,
    DBT_OVERHEAD,
    PY_CX,
    PY_PRIVACY,
    PY_PUBLISH,
    PY_OTHER,
    STARTUP,
    DAGSTER_OVERHEAD,
    TOTAL,
)
DBT_LAYERS = (
    DBT_STAGING,
    DBT_INTERMEDIATE,
    DBT_IDENTITY,
    DBT_CX,
    DBT_MARTS,
    DBT_DOWNSTREAM,
    DBT_TESTS,
    DBT_OTHER,
)

IDENTITY_MODEL_PREFIXES = (
    "int_identity_",
    "int_identifiers_",
    "int_customer_id_merges",
    "customer_identity_map",
)
CX_MODEL_PREFIXES = ("int_customer_cx_measures", "int_cx_")


@dataclass
class NodeTiming:
    unique_id: str
    name: str
    resource_type: str
    schema: str
    path: str
    materialized: str
    status: str
    started: float  # epoch seconds
    finished: float
    rows: int | None = None  # rows of the relation afterwards (tables only), filled in from the warehouse

    @property
    def seconds(self) -> float:
        return max(0.0, self.finished - self.started)


@dataclass
class StageTiming:
    name: str
    seconds: float  # wall time the stage was busy (union of its intervals)
    work_seconds: float  # sum of its parts' durations (> seconds when dbt ran nodes in parallel)
    parts: int
    rows: int | None = None
    rows_label: str = ""

    @property
    def rows_per_second(self) -> float | None:
        if not self.rows or self.seconds <= 0:
            return None
        return self.rows / self.seconds


@dataclass
class PipelineRun:
    label: str  # "full" or "incremental"
    monitored: MonitoredRun
    run_id: str | None = None
    status: str | None = None
    stages: dict[str, StageTiming] = field(default_factory=dict)
    nodes: list[NodeTiming] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    error: str | None = None
    warning: str | None = None

    @property
    def ok(self) -> bool:
        """The Dagster run succeeded (when it could be read), else the process exited 0, within time."""
        if self.monitored.timed_out:
            return False
        if self.status is not None:
            return self.status == "SUCCESS"
        return self.monitored.ok


def snapshot_tree(destination: Path) -> Path:
    """Copy the project as it is now (tracked and untracked files git does not ignore, no ``data/``).

    The pipeline then runs from the copy (``PYTHONPATH`` puts its ``cx_pipeline`` before the editable
    install; its own ``dbt_project/target``), so edits other people make to the working tree during a
    benchmark cannot change the code under test halfway, or race its dbt parse.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    if destination.exists():
        shutil.rmtree(destination)
    for relative in filter(None, listed.split("\0")):
        if relative.startswith(("data/", "dbt_project/target/")):
            continue
        source = PROJECT_ROOT / relative
        if not source.is_file():
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    # A warm checkout has dbt's partial-parse cache; dbt re-parses whatever changed since it was written.
    partial_parse = PROJECT_ROOT / "dbt_project" / "target" / "partial_parse.msgpack"
    if partial_parse.exists():
        (destination / "dbt_project" / "target").mkdir(parents=True, exist_ok=True)
        shutil.copy2(partial_parse, destination / "dbt_project" / "target" / partial_parse.name)
    return destination


def run_environment(run_dir: Path, landing: Path, truth: Path, tree: Path | None = None) -> dict[str, str]:
    home = run_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy((tree or PROJECT_ROOT) / ".dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CX360_", "DAGSTER_", "DBT_")) and key != "PYTEST_CURRENT_TEST"
    }
    env.update(
        {
            settings.DAGSTER_HOME.name: str(home),
            settings.WAREHOUSE.name: str(run_dir / "warehouse" / "cx360.duckdb"),
            settings.LANDING_DIR.name: str(landing),
            settings.TRUTH_DIR.name: str(truth),
            settings.EXPORTS_DIR.name: str(run_dir / "exports"),
            settings.SERVING_DIR.name: str(run_dir / "serving"),
            settings.QUARANTINE_DIR.name: str(run_dir / "quarantine"),
            settings.REPORTS_DIR.name: str(run_dir / "reports"),
            # The dataset was written completely before the run: nothing is still being delivered.
            settings.LANDING_SETTLE_SECONDS.name: "0",
            settings.KEY_FILE.name: str(run_dir / "secrets" / "cx360.key"),
            "DO_NOT_TRACK": "1",
            "DAGSTER_DISABLE_TELEMETRY": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    (run_dir / "warehouse").mkdir(parents=True, exist_ok=True)
    return env


def run_pipeline(
    label: str,
    run_dir: Path,
    env: dict[str, str],
    landing_records: int,
    timeout: float | None = None,
    interval: float = 0.2,
    tree: Path | None = None,
) -> PipelineRun:
    """``cx360 run`` once with ``env`` in ``tree`` (a snapshot of the code, default the project itself); then
    read its stages from Dagster's event log and dbt."""
    log_path = run_dir / f"{label}.log"
    tree = tree or PROJECT_ROOT
    monitored = run_monitored(
        [sys.executable, "-m", "cx_pipeline.cli", "run", "--no-progress"],
        env=env,
        cwd=tree,
        log_path=log_path,
        timeout=timeout,
        interval=interval,
    )
    result = PipelineRun(label=label, monitored=monitored)
    try:
        home = Path(env[settings.DAGSTER_HOME.name])
        _read_timings(result, home, run_dir, label, landing_records, env, tree)
    except Exception as error:  # the wall time and memory stand even when the details cannot be read
        result.error = f"stage timings unavailable: {type(error).__name__}: {error}"
    if result.ok and not monitored.ok:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        last = [line for line in text.splitlines() if line.strip()][-1:] or [""]
        result.warning = (
            f"the Dagster run succeeded but `cx360 run` exited {monitored.returncode} afterwards: "
            f"{last[0][:300]}"
        )
    elif not monitored.ok or not result.ok:
        text = log_path.read_text(errors="replace") if log_path.exists() else ""
        errors = [line for line in text.splitlines() if "ERROR" in line or "Error" in line][:20]
        result.error = (result.error or "") + (
            f"\ncx360 run exited {monitored.returncode}"
            + (" (timed out)" if monitored.timed_out else "")
            + ". Error lines:\n"
            + "\n".join(line[:400] for line in errors)
            + f"\n... last lines:\n{text[-1200:]}"
        )
    return result


# --------------------------------------------------------------------------------------------- Dagster


@dataclass
class _Step:
    key: str
    start: float | None = None
    end: float | None = None
    status: str = "?"
    assets: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        if self.start is None or self.end is None:
            return 0.0
        return self.end - self.start


def _read_dagster_steps(dagster_home: Path, newer_than: float) -> tuple[str, str, float, float, list[_Step]]:
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = [r for r in instance.get_runs(limit=5)]
        if not runs:
            raise RuntimeError("no Dagster run recorded")
        run = runs[0]
        steps: dict[str, _Step] = {}
        run_start = run_end = None
        kinds = dg.DagsterEventType
        run_ends = {kinds.RUN_SUCCESS.value, kinds.RUN_FAILURE.value, kinds.RUN_CANCELED.value}
        for entry in instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            kind = event.event_type_value
            if kind == kinds.RUN_START.value:
                run_start = entry.timestamp
            elif kind in run_ends:
                run_end = entry.timestamp
            if not entry.step_key:
                continue
            step = steps.setdefault(entry.step_key, _Step(entry.step_key))
            if kind == "STEP_START":
                step.start = entry.timestamp
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED"):
                step.end = entry.timestamp
                step.status = kind.removeprefix("STEP_")
            elif kind == "ASSET_MATERIALIZATION" and event.asset_key is not None:
                step.assets.append(tuple(event.asset_key.path))
        if run_start is None or run_start < newer_than - 5:
            raise RuntimeError("the latest Dagster run is older than this benchmark run")
        return run.run_id, run.status.value, run_start, run_end or run_start, list(steps.values())


def _step_stage(step: _Step) -> str:
    keys = step.assets
    if "dbt" in step.key or (len(keys) > 3 and all(len(k) == 2 for k in keys) and keys[0][0] != "raw"):
        return DBT_BUILD
    if not keys:
        if step.key.startswith("raw") and "check" in step.key:
            return INGESTION_CHECKS
        if "raw" in step.key or "ingest" in step.key:
            return INGESTION
        if step.key in ("erasure", "erasure_verification") or "privacy" in step.key:
            return PY_PRIVACY
        if "clv" in step.key:
            return PY_CX
        if step.key.startswith(("exports", "serving", "report")):
            return PY_PUBLISH
        return PY_OTHER
    first = keys[0]
    if first[0] == "raw":
        return INGESTION
    if first[0] == "privacy":
        return PY_PRIVACY
    if first[0] in ("exports", "serving", "report", "reports") or first[-1] in ("report", "cx360_report"):
        return PY_PUBLISH
    if first[-1] in ("customer_clv",) or "clv" in first[-1]:
        return PY_CX
    return PY_OTHER


# ------------------------------------------------------------------------------------------------- dbt


def _iso(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _find_invocation(run_id: str, tree: Path) -> Path | None:
    target = tree / "dbt_project" / "target"
    candidates = sorted(
        (p for p in target.glob(f"*-{run_id[:7]}-*") if (p / "run_results.json").exists()),
        key=lambda p: (p / "run_results.json").stat().st_mtime,
    )
    return candidates[-1] if candidates else None


def read_dbt_nodes(invocation: Path) -> list[NodeTiming]:
    results = json.loads((invocation / "run_results.json").read_text())
    manifest_path = invocation / "manifest.json"
    if not manifest_path.exists():
        manifest_path = invocation.parent / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"nodes": {}}
    nodes: list[NodeTiming] = []
    for result in results.get("results", []):
        unique_id = result["unique_id"]
        node = manifest.get("nodes", {}).get(unique_id, {})
        starts = [_iso(t.get("started_at")) for t in result.get("timing", [])]
        ends = [_iso(t.get("completed_at")) for t in result.get("timing", [])]
        starts = [s for s in starts if s]
        ends = [e for e in ends if e]
        if not starts or not ends:
            continue
        nodes.append(
            NodeTiming(
                unique_id=unique_id,
                name=node.get("name", unique_id.split(".")[-1]),
                resource_type=node.get("resource_type", unique_id.split(".")[0]),
                schema=node.get("schema", ""),
                path=node.get("original_file_path", ""),
                materialized=node.get("config", {}).get("materialized", ""),
                status=str(result.get("status")),
                started=min(starts),
                finished=max(ends),
            )
        )
    return nodes


def dbt_layer(node: NodeTiming) -> str:
    if node.resource_type == "test" or node.resource_type == "unit_test":
        return DBT_TESTS
    if node.resource_type != "model":
        return DBT_OTHER
    if node.name.startswith(IDENTITY_MODEL_PREFIXES) or "/identity/" in node.path:
        return DBT_IDENTITY
    if node.name.startswith(CX_MODEL_PREFIXES) or "/marts/cx/" in node.path:
        return DBT_CX
    top = node.path.split("/")[1] if node.path.count("/") >= 1 else node.schema
    if top == "staging" or node.schema == "staging":
        return DBT_STAGING
    if top == "intermediate" or node.schema == "intermediate":
        return DBT_INTERMEDIATE
    if top == "marts" and node.schema == "marts":
        return DBT_MARTS
    return DBT_DOWNSTREAM


def _union_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    total = 0.0
    current_start = current_end = None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None:
        total += current_end - current_start
    return total


# ------------------------------------------------------------------------------------------- warehouse


def _relation_rows(warehouse: Path) -> dict[tuple[str, str], int]:
    import duckdb

    if not warehouse.exists():
        return {}
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            "select schema_name, table_name, estimated_size from duckdb_tables() where database_name = "
            "current_database()"
        ).fetchall()
    return {(schema, table): int(size) for schema, table, size in rows}


# ------------------------------------------------------------------------------------------ assembling


def _read_timings(
    result: PipelineRun,
    dagster_home: Path,
    run_dir: Path,
    label: str,
    landing_records: int,
    env: dict,
    tree: Path,
) -> None:
    monitored = result.monitored
    run_id, status, run_start, _run_end, steps = _read_dagster_steps(dagster_home, monitored.started_at)
    result.run_id, result.status = run_id, status
    result.failed_steps = [s.key for s in steps if s.status == "FAILURE"]
    relation_rows = _relation_rows(Path(env[settings.WAREHOUSE.name]))
    by_stage: dict[str, list[_Step]] = {}
    for step in steps:
        by_stage.setdefault(_step_stage(step), []).append(step)
    stages: dict[str, StageTiming] = {}
    for name, members in by_stage.items():
        intervals = [(s.start, s.end) for s in members if s.start is not None and s.end is not None]
        stages[name] = StageTiming(
            name, _union_seconds(intervals), sum(s.seconds for s in members), len(members)
        )
    if INGESTION in stages:
        stages[INGESTION].rows, stages[INGESTION].rows_label = landing_records, "landing records"
    raw_rows = sum(rows for (schema, _), rows in relation_rows.items() if schema == "raw")

    invocation = _find_invocation(run_id, tree)
    if invocation is not None:
        nodes = read_dbt_nodes(invocation)
        shutil.copy(invocation / "run_results.json", run_dir / f"{label}-run_results.json")
        for node in nodes:
            node.rows = relation_rows.get((node.schema, node.name))
        result.nodes = nodes
        layers: dict[str, list[NodeTiming]] = {}
        for node in nodes:
            layers.setdefault(dbt_layer(node), []).append(node)
        for name, members in layers.items():
            table_rows = sum(n.rows or 0 for n in members)
            stage = StageTiming(
                name,
                _union_seconds((n.started, n.finished) for n in members),
                sum(n.seconds for n in members),
                len(members),
            )
            if name == DBT_STAGING:
                # Mostly views: the raw rows they expose (the cart and consent staging tables re-read theirs).
                stage.rows, stage.rows_label = raw_rows, "raw rows read"
            elif name == DBT_TESTS:
                stage.rows, stage.rows_label = None, ""
            else:
                stage.rows, stage.rows_label = table_rows or None, "rows written"
            stages[name] = stage
        if DBT_BUILD in stages:
            busy = _union_seconds((n.started, n.finished) for n in nodes)
            build = stages[DBT_BUILD]
            stages[DBT_OVERHEAD] = StageTiming(DBT_OVERHEAD, max(0.0, build.seconds - busy), 0.0, 0)
        # Keep the per-invocation folder out of the shared target/ (its run_results are copied above).
        shutil.rmtree(invocation, ignore_errors=True)
    if DBT_BUILD in stages:
        stages[DBT_BUILD].rows, stages[DBT_BUILD].rows_label = (
            sum(n.rows or 0 for n in result.nodes) or None,
            "rows written",
        )
    steps_busy = _union_seconds((s.start, s.end) for s in steps if s.start is not None and s.end is not None)
    startup = max(0.0, run_start - monitored.started_at)
    stages[STARTUP] = StageTiming(STARTUP, startup, startup, 0)
    stages[DAGSTER_OVERHEAD] = StageTiming(
        DAGSTER_OVERHEAD, max(0.0, monitored.wall_seconds - startup - steps_busy), 0.0, 0
    )
    stages[TOTAL] = StageTiming(
        TOTAL, monitored.wall_seconds, monitored.wall_seconds, len(steps), landing_records, "landing records"
    )
    customers = relation_rows.get(("marts", "dim_customers"))
    if PY_PUBLISH in stages and customers:
        stages[PY_PUBLISH].rows, stages[PY_PUBLISH].rows_label = customers, "customer profiles"
    if PY_CX in stages and relation_rows.get(("marts", "customer_clv")):
        stages[PY_CX].rows, stages[PY_CX].rows_label = (
            relation_rows[("marts", "customer_clv")],
            "rows written",
        )
    result.stages = {name: stages[name] for name in STAGE_ORDER if name in stages}
