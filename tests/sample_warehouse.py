"""Generated, loaded and dbt-built sample warehouses for the end-to-end test modules.

Building a sample (generate, ingest, ``dbt build``) is the slowest set-up in the suite, so the default sample
is built once per test session and shared: across pytest-xdist workers through a lock file in the session's
common temporary folder. Modules never write to the shared build; each takes a private copy of the warehouse
file (cheap) and runs its own dbt tests or Dagster assets on that.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from cx_pipeline.defs.dbt.project import dbt_executable
from cx_pipeline.settings import DBT_PROJECT_DIR, PROJECT_ROOT

# The default sample the identity and journey tests score against the generator's truth.
DEFAULT_PERSONS = int(os.environ.get("CX360_SAMPLE_TEST_PERSONS", "2000"))
DEFAULT_SEED = 42
# The identity map, the touchpoint/journey/profile marts and consent state, with everything upstream.
DEFAULT_SELECTION = (
    "+customer_identity_map",
    "+int_customer_id_merges",
    "+dim_customers",
    "+fct_touchpoints",
    "+fct_journey_stage_history",
    "+int_consent_current",
)
_DONE_MARKER = "build.done"


@dataclass(frozen=True)
class SampleWarehouse:
    root: Path
    warehouse: Path
    landing: Path
    truth: Path
    quarantine: Path

    @classmethod
    def under(cls, root: Path) -> SampleWarehouse:
        return cls(root, root / "cx360.duckdb", root / "landing", root / "truth", root / "quarantine")


def run_dbt(
    root: Path, warehouse: Path | None, *args: str, check: bool = True
) -> subprocess.CompletedProcess:
    """``dbt <args>`` on ``warehouse`` (None: ``CX360_WAREHOUSE`` as set); fails the test with the output
    when dbt fails, unless ``check`` is false."""
    env = dict(os.environ)
    if warehouse is not None:
        env["CX360_WAREHOUSE"] = str(warehouse)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(root / "dbt_target"),
        "--log-path",
        str(root / "dbt_logs"),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-60:])
        pytest.fail(f"dbt {args[0]} failed ({result.returncode}):\n{tail}\n{result.stderr[-2000:]}")
    return result


def ingest(warehouse: Path, landing: Path, quarantine: Path) -> None:
    """Load every source's landing files with the ingestion code."""
    from cx_pipeline.contracts import SOURCE_NAMES
    from cx_pipeline.ingestion.loader import load_source
    from cx_pipeline.warehouse import connect

    connection = connect(warehouse)
    try:
        for source in SOURCE_NAMES:
            load_source(connection, source, landing, quarantine)
    finally:
        connection.close()


def generate_and_ingest(root: Path, persons: int, seed: int) -> SampleWarehouse:
    from cx_pipeline.generator import GeneratorConfig, generate

    sample = SampleWarehouse.under(root)
    generate(
        GeneratorConfig(customers=persons, seed=seed, landing_dir=sample.landing, truth_dir=sample.truth),
        progress=False,
    )
    ingest(sample.warehouse, sample.landing, sample.quarantine)
    return sample


def session_shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this test session sees (the session's own one without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_default_sample(tmp_path_factory: pytest.TempPathFactory) -> SampleWarehouse:
    """The default sample with DEFAULT_SELECTION built (no data tests), once per session."""
    shared = session_shared_folder(tmp_path_factory)
    root = shared / f"sample-{DEFAULT_PERSONS}-s{DEFAULT_SEED}"
    with open(shared / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / _DONE_MARKER).exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            sample = generate_and_ingest(root, DEFAULT_PERSONS, DEFAULT_SEED)
            run_dbt(
                root,
                sample.warehouse,
                "build",
                "--select",
                *DEFAULT_SELECTION,
                "--exclude",
                "resource_type:test",
                "resource_type:unit_test",
            )
            (root / _DONE_MARKER).write_text("ok\n")
    return SampleWarehouse.under(root)


def query(warehouse: Path, sql: str) -> list[tuple]:
    """The rows of ``sql`` on a read-only connection to ``warehouse``."""
    from cx_pipeline.warehouse import connect

    connection = connect(warehouse, read_only=True)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def private_copy(sample: SampleWarehouse, root: Path) -> SampleWarehouse:
    """A copy of the sample's warehouse under ``root`` that one module may write to (truth is read only)."""
    root.mkdir(parents=True, exist_ok=True)
    warehouse = root / "cx360.duckdb"
    shutil.copyfile(sample.warehouse, warehouse)
    return SampleWarehouse(root, warehouse, sample.landing, sample.truth, sample.quarantine)
