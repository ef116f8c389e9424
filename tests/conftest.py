"""Test-wide set-up: every test session gets its own Dagster instance and warehouse, never the user's."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cx_pipeline.settings import PROJECT_ROOT


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point DAGSTER_HOME and CX360_* at a temporary folder so tests never touch data/ or .dagster_home/."""
    root = tmp_path_factory.mktemp("cx360_env")
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(PROJECT_ROOT / ".dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    overrides = {
        "DAGSTER_HOME": str(dagster_home),
        "CX360_WAREHOUSE": str(root / "warehouse" / "cx360.duckdb"),
        "CX360_LANDING_DIR": str(root / "landing"),
        "CX360_TRUTH_DIR": str(root / "truth"),
        "CX360_EXPORTS_DIR": str(root / "exports"),
        "CX360_SERVING_DIR": str(root / "serving"),
        "CX360_QUARANTINE_DIR": str(root / "quarantine"),
        "CX360_REPORTS_DIR": str(root / "reports"),
        "CX360_KEY_FILE": str(root / "secrets" / "cx360.key"),
        # Tests write their landing files moments before loading them; the settle wait has its own tests
        # (test_ingestion_unread_files).
        "CX360_LANDING_SETTLE_SECONDS": "0",
        "DO_NOT_TRACK": "1",
    }
    previous = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    yield root
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
