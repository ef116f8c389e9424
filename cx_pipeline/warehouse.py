"""Opening the DuckDB warehouse with the settings every cx360 connection shares."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

# Every connection runs in UTC so timestamps mean the same in Dagster, dbt and BI (see FIELD_NOTES).
WAREHOUSE_CONNECTION_CONFIG: dict[str, Any] = {
    "TimeZone": "UTC",
    "autoinstall_known_extensions": False,
}


class WarehouseLockedError(RuntimeError):
    """The DuckDB file is held by another process; DuckDB allows one writer and no readers beside it."""


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open ``path`` with the shared settings, turning DuckDB's lock error into an actionable one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(path), read_only=read_only, config=dict(WAREHOUSE_CONNECTION_CONFIG))
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise WarehouseLockedError(
                f"The warehouse {path} is locked by another process ({error}). DuckDB allows a single "
                "writer and no other process may open the file meanwhile: stop the other process "
                "(a running pipeline, `dagster dev` materialization, a BI tool or a notebook holding it "
                "open), or point BI tools at the published serving copy instead."
            ) from error
        raise
