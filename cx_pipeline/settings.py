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


# Paths field -> (environment variable, default relative to the project root)
_PATHS: dict[str, tuple[str, str]] = {
    "warehouse": (WAREHOUSE_ENV, "data/cx360.duckdb"),
    "landing": (LANDING_ENV, "data/landing"),
    "truth": (TRUTH_ENV, "data/truth"),
    "exports": (EXPORTS_ENV, "data/exports"),
    "serving": (SERVING_ENV, "data/serving"),
    "quarantine": (QUARANTINE_ENV, "data/quarantine"),
}


def _path_from_env(variable: str, default: str) -> Path:
    path = Path((os.environ.get(variable) if variable else None) or default).expanduser()
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
            **{field: _path_from_env(variable, default) for field, (variable, default) in _PATHS.items()}
        )

    @classmethod
    def defaults(cls) -> Paths:
        """The project's own folders, whatever the environment says (the quick start writes only there)."""
        return cls(**{field: _path_from_env("", default) for field, (_, default) in _PATHS.items()})


def export_warehouse_env() -> Path:
    """Pin ``CX360_WAREHOUSE`` to an absolute path so dbt subprocesses open the same file as Dagster."""
    warehouse = Paths.from_env().warehouse
    os.environ[WAREHOUSE_ENV] = str(warehouse)
    return warehouse


EXPORTS_CSV_BOM_ENV = "CX360_EXPORTS_CSV_BOM"


def exports_csv_bom() -> bool:
    """Whether audience CSVs start with a UTF-8 byte-order mark (``CX360_EXPORTS_CSV_BOM``, default off)."""
    text = (os.environ.get(EXPORTS_CSV_BOM_ENV) or "false").strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{EXPORTS_CSV_BOM_ENV} must be true or false, got {text!r}")


LANDING_SETTLE_ENV = "CX360_LANDING_SETTLE_SECONDS"
DEFAULT_LANDING_SETTLE_SECONDS = 10.0


def landing_settle_seconds() -> float:
    """A landing file modified less than this many seconds ago may still be being written: it waits for the
    next run (``CX360_LANDING_SETTLE_SECONDS``, default 10; 0 reads every file at once)."""
    text = (os.environ.get(LANDING_SETTLE_ENV) or str(DEFAULT_LANDING_SETTLE_SECONDS)).strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise ValueError(f"{LANDING_SETTLE_ENV} must be a number of seconds >= 0, got {text!r}")
    return seconds
