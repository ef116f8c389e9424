"""Where cx360 reads and writes. Every path can be overridden by one environment variable.

``CX360_WAREHOUSE`` names the DuckDB file for both the Dagster resources and dbt's ``profiles.yml``.
Relative paths are resolved against the project root so the CLI, tests, ``dagster dev`` and dbt agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"

WAREHOUSE_ENV = "CX360_WAREHOUSE"
LANDING_ENV = "CX360_LANDING_DIR"
TRUTH_ENV = "CX360_TRUTH_DIR"
EXPORTS_ENV = "CX360_EXPORTS_DIR"
SERVING_ENV = "CX360_SERVING_DIR"
QUARANTINE_ENV = "CX360_QUARANTINE_DIR"


def _path_from_env(variable: str, default: str) -> Path:
    path = Path(os.environ.get(variable) or default).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


@dataclass(frozen=True)
class Paths:
    warehouse: Path
    landing: Path
    truth: Path
    exports: Path
    serving: Path
    quarantine: Path

    @classmethod
    def from_env(cls) -> Paths:
        return cls(
            warehouse=_path_from_env(WAREHOUSE_ENV, "data/cx360.duckdb"),
            landing=_path_from_env(LANDING_ENV, "data/landing"),
            truth=_path_from_env(TRUTH_ENV, "data/truth"),
            exports=_path_from_env(EXPORTS_ENV, "data/exports"),
            serving=_path_from_env(SERVING_ENV, "data/serving"),
            quarantine=_path_from_env(QUARANTINE_ENV, "data/quarantine"),
        )


def export_warehouse_env() -> Path:
    """Pin ``CX360_WAREHOUSE`` to an absolute path so dbt subprocesses open the same file as Dagster."""
    warehouse = Paths.from_env().warehouse
    os.environ[WAREHOUSE_ENV] = str(warehouse)
    return warehouse
