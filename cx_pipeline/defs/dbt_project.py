"""The dbt project as Dagster sees it; parsed once and cached in ``dbt_project/target``."""

import fcntl
import hashlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from dagster_dbt import DbtProject

from cx_pipeline.settings import DBT_PROJECT_DIR, export_warehouse_env

export_warehouse_env()

# dagster-dbt looks for `dbt` on PATH; the one installed beside this Python works without an
# activated virtualenv (CLI, tests, `dagster dev` started by full path).
_python_bin = str(Path(sys.executable).parent)
if _python_bin not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _python_bin + os.pathsep + os.environ.get("PATH", "")

cx360_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# `dagster dev` re-parses on start; CLI runs and tests call `prepare_dbt_manifest()` first.
cx360_dbt_project.prepare_if_dev()

# What `dbt parse` reads: a change to any of these makes the cached manifest stale.
_PARSED_FOLDERS = ("models", "macros", "seeds", "snapshots", "tests", "analyses")
_PARSED_FILES = ("dbt_project.yml", "profiles.yml", "packages.yml", "selectors.yml")
_FINGERPRINT_FILE = "cx360_manifest.fingerprint"


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
    target = Path(cx360_dbt_project.manifest_path).parent
    target.mkdir(parents=True, exist_ok=True)
    fingerprint_path = target / _FINGERPRINT_FILE
    with open(target / ".cx360_parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        fingerprint = project_fingerprint(Path(cx360_dbt_project.project_dir))
        cached = fingerprint_path.read_text().strip() if fingerprint_path.exists() else None
        if not force and cached == fingerprint and Path(cx360_dbt_project.manifest_path).exists():
            return False
        cx360_dbt_project.preparer.prepare(cx360_dbt_project)
        fingerprint_path.write_text(fingerprint + "\n")
        return True
