"""The dbt project as Dagster sees it. Nothing happens on import: the project is built, and its manifest
parsed when missing or stale (cached in ``dbt_project/target``), the first time something asks for it."""

import fcntl
import functools
import hashlib
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject
from dbt.adapters.base import BaseAdapter

from cx_pipeline.settings import DBT_PROJECT_DIR, Paths, export_warehouse_env

# What `dbt parse` reads: a change to any of these makes the cached manifest stale.
_PARSED_FOLDERS = ("models", "macros", "seeds", "snapshots", "tests", "analyses")
_PARSED_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "selectors.yml")
_FINGERPRINT_FILE = "cx360_manifest.fingerprint"
_PARSE_ARGS = ("parse", "--quiet")


def dbt_executable() -> str:
    """The ``dbt`` installed beside this Python, so dbt runs without an activated virtualenv (CLI, tests,
    ``dagster dev`` started by full path); else whichever ``dbt`` is on PATH."""
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else "dbt"


class Cx360DbtCliResource(DbtCliResource):
    """``DbtCliResource`` whose in-process dbt adapter (the one ``fetch_row_counts()`` and
    ``fetch_column_metadata()`` query once dbt has exited) only reads the warehouse and lets go of it.

    dagster-dbt opens that adapter's DuckDB connection read-only, and the profile's keyed-hash plugin
    (``cx_pipeline.privacy.dbt_plugin``) stores its macro in the warehouse on connect: a write, which a
    read-only connection refuses, so every row count and column schema was lost. Counting rows and
    listing columns needs no keyed hash, so this adapter runs without plugins (and so never loads the key).
    dbt-duckdb also keeps its connection open for the life of the process by default; a read-only
    handle left open would keep the run's later steps (and any dbt run after it) from writing the
    warehouse, so this one closes once the last fetch is done. (This overrides a private dagster-dbt hook;
    tests/test_conventions.py builds models through it and fails if an upgrade changes it.)
    """

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> BaseAdapter:
        adapter = super()._initialize_dbt_core_adapter(args)
        credentials = adapter.config.credentials
        if credentials.type == "duckdb":
            credentials.plugins = []
            credentials.keep_open = False
        return adapter


def dbt_cli_resource() -> DbtCliResource:
    """The resource every dbt command runs through: this project, this environment's dbt."""
    return Cx360DbtCliResource(project_dir=_dbt_project(), dbt_executable=dbt_executable())


@functools.cache
def _dbt_project() -> DbtProject:
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


@functools.cache
def cx360_dbt_project() -> DbtProject:
    """The dbt project with a current manifest, built on first use and then kept for the process.

    Under ``dagster dev`` the project is parsed once on start, as dagster-dbt's ``prepare_if_dev`` does;
    everywhere else only when the manifest is missing or older than the project files.
    """
    project = _dbt_project()
    prepare_dbt_manifest(force=project.preparer.using_dagster_dev())
    return project


def dbt_manifest_nodes() -> Mapping[str, Mapping[str, Any]]:
    """The manifest's nodes (models, seeds, snapshots, tests) by unique id; parses first when stale."""
    return json.loads(cx360_dbt_project().manifest_path.read_text())["nodes"]


def project_files(project_dir: Path) -> Iterable[Path]:
    """The files ``dbt parse`` reads, in a stable order."""
    for name in _PARSED_FILES:
        path = project_dir / name
        if path.is_file():
            yield path
    for folder in _PARSED_FOLDERS:
        root = project_dir / folder
        if root.is_dir():
            yield from sorted(path for path in root.rglob("*") if path.is_file())


def project_fingerprint(project_dir: Path) -> str:
    """A digest of the parsed files' names and contents (mtimes change on checkout; contents don't)."""
    digest = hashlib.sha256()
    for path in project_files(project_dir):
        digest.update(str(path.relative_to(project_dir)).encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def prepare_dbt_manifest(force: bool = False) -> bool:
    """Run ``dbt parse`` when the manifest is missing or older than the project files; True when it parsed.

    A file lock serialises concurrent callers (test workers, a CLI run beside ``dagster dev``): the first
    parses, the others find the fresh manifest and skip.
    """
    project = _dbt_project()
    target = Path(project.manifest_path).parent
    target.mkdir(parents=True, exist_ok=True)
    fingerprint_path = target / _FINGERPRINT_FILE
    with open(target / ".cx360_parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # The manifest's relation names ("cx360"."marts"."dim_customers") start with the database dbt-duckdb
        # names after the warehouse file; dagster-dbt counts rows and reads columns by those names.
        database = Paths.from_env().warehouse.stem
        fingerprint = f"{project_fingerprint(Path(project.project_dir))} database={database}"
        cached = fingerprint_path.read_text().strip() if fingerprint_path.exists() else None
        if not force and cached == fingerprint and Path(project.manifest_path).exists():
            return False
        # profiles.yml reads the warehouse from CX360_WAREHOUSE; dbt must see the path Dagster resolved.
        export_warehouse_env()
        dbt_cli_resource().cli(list(_PARSE_ARGS), target_path=project.target_path).wait()
        fingerprint_path.write_text(fingerprint + "\n")
        return True
