"""Opening the DuckDB warehouse with the settings every cx360 connection shares."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb

from cx_pipeline.settings import DUCKDB_FORCE_COMPRESSION, DUCKDB_MEMORY_LIMIT


def warehouse_connection_config() -> dict[str, Any]:
    """The DuckDB settings of every warehouse connection (dbt's profile sets the same ones).

    UTC, so timestamps mean the same in Dagster, dbt and BI (the process's zone would apply otherwise).
    DuckDB would take 80% of RAM by default; with a limit it spills to `<warehouse>.tmp/` instead, so the
    pipeline's footprint stays predictable next to other work. ``force_compression`` only when not `auto`.
    """
    config: dict[str, Any] = {
        "TimeZone": "UTC",
        "autoinstall_known_extensions": False,
        "memory_limit": DUCKDB_MEMORY_LIMIT.read(),
    }
    compression = DUCKDB_FORCE_COMPRESSION.read()
    if compression != "auto":
        config["force_compression"] = compression
    return config


# DuckDB names the holder of a conflicting lock: `... Conflicting lock is held in /usr/bin/python3 (PID 42)`.
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")
# Whole words only: "Could not read block" is not a lock conflict.
_LOCK_CONFLICT = re.compile(r"\block(ed)?\b", re.IGNORECASE)


class WarehouseLockedError(RuntimeError):
    """The DuckDB file is held by another process; DuckDB allows one writer and no readers beside it."""

    def __init__(
        self, message: str, path: Path | None = None, pid: int | None = None, program: str | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.pid = pid
        self.program = program


def locked_error(path: Path, error: BaseException) -> WarehouseLockedError | None:
    """The actionable error for DuckDB's lock conflict on ``path``, or None if ``error`` is another fault."""
    text = str(error)
    if not _LOCK_CONFLICT.search(text):
        return None
    holder = _LOCK_HOLDER.search(text)
    pid = int(holder["pid"]) if holder else None
    program = holder["program"] if holder else None
    who = f"process {pid} ({program})" if holder else "another process"
    how_to_look = f" `ps -o pid,args -p {pid}` shows what it is." if holder else ""
    return WarehouseLockedError(
        f"The DuckDB file {path.absolute()} is locked by {who}. DuckDB lets one process open a file "
        "for writing and then no other process may open it, not even read-only. To fix: let that "
        "process finish or stop it (a running pipeline or `dagster dev` materialization, dbt, a notebook "
        f"or BI tool holding the file open), then retry.{how_to_look} BI tools should read the published "
        "serving copy (data/serving/cx360_bi.duckdb, see docs/serving.md), never the warehouse. "
        f"DuckDB said: {text}",
        path,
        pid,
        program,
    )


def connect(path: Path | str, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open ``path`` with the shared settings, turning DuckDB's lock error into an actionable one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(path), read_only=read_only, config=warehouse_connection_config())
    except duckdb.IOException as error:
        locked = locked_error(path, error)
        if locked is not None:
            raise locked from error
        raise
