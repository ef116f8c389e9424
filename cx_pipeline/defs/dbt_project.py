"""The dbt project as Dagster sees it; parsed once and cached in ``dbt_project/target``."""

import os
import sys
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


def prepare_dbt_manifest(force: bool = False) -> None:
    """Run ``dbt parse`` so the manifest the dbt assets are built from matches the models on disk."""
    if force or not cx360_dbt_project.manifest_path.exists():
        cx360_dbt_project.preparer.prepare(cx360_dbt_project)
