"""Operational faults explained: errors that say what went wrong, where, and what to do about it.

A run that dies with ``FileNotFoundError: [Errno 2] ...`` or ``IO Error: Could not write file`` leaves the
operator guessing. These helpers turn the faults a data pipeline meets in practice (a landing folder that
is not there, a file that vanished mid-run, a full disk) into errors naming the path and the fix.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from cx_pipeline.settings import LANDING_DIR

# errno values meaning "no room left": a full file system, or the user's quota on it.
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# DuckDB reports write failures as duckdb.IOException (no errno), carrying the OS's text.
_DISK_FULL_MESSAGES = ("no space left on device", "disk quota exceeded")


class ExplainedFileNotFoundError(FileNotFoundError):
    """A FileNotFoundError (callers catching that keep working) whose text is the whole explanation."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(errno.ENOENT, message, str(path))
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return self.message


class LandingDirMissingError(ExplainedFileNotFoundError):
    """The landing folder the ingestion reads from does not exist (or is not a folder)."""


class FileVanishedError(ExplainedFileNotFoundError):
    """A source file was listed but was gone (moved or deleted) by the time it was read."""


class DiskFullError(OSError):
    """A write failed because the file system holding ``path`` is full."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(errno.ENOSPC, message)
        self.path = path
        self.message = message

    def __str__(self) -> str:
        return self.message


def require_landing_dir(path: Path | str) -> Path:
    """Return ``path`` if it is an existing folder, else raise an error telling how to provide one."""
    path = Path(path)
    if path.is_dir():
        return path
    problem = "is not a folder" if path.exists() else "does not exist"
    raise LandingDirMissingError(
        f"The landing folder {path.absolute()} {problem}, so there is nothing to ingest. Generate "
        "the sample data into it with `.venv/bin/cx360 generate` (`make run` does this when the folder "
        f"is missing), or point {LANDING_DIR.name} at the folder holding your source files "
        "(<landing>/<source>/*.csv|*.jsonl, "
        "see docs/sources.md).",
        path,
    )


def read_bytes_or_explain(path: Path | str) -> bytes:
    """Read a listed source file; if it vanished since the listing, say so instead of a bare ENOENT."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError as error:
        raise FileVanishedError(
            f"The source file {path.absolute()} was listed in the landing folder but was gone when it was "
            "read: something moved or deleted it during the run (an upstream sync, a cleanup job, a person). "
            "Nothing from it was loaded. Re-run the ingestion once the delivery has settled; the file "
            "is picked up again if it is back.",
            path,
        ) from error


def is_disk_full(error: BaseException) -> bool:
    """True if ``error`` (an OSError or a DuckDB error carrying the OS's message) means the disk is full."""
    if isinstance(error, OSError) and error.errno in _DISK_FULL_ERRNOS:
        return True
    text = str(error).lower()
    return any(message in text for message in _DISK_FULL_MESSAGES)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_runs_of_dead_processes(instance: Any) -> list[str]:
    """Fail runs whose process died (e.g. SIGKILL) and free their concurrency-pool slots.

    An in-process run that is killed never reports its end, so its slot in the warehouse pool stays
    claimed and the next run would wait for it forever. A run counts as dead when it is still marked
    started but the process that wrote its events no longer exists on this machine.
    """
    import dagster as dg

    released: list[str] = []
    active = instance.get_runs(
        filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING])
    )
    for run in active:
        process_ids = {
            record.dagster_event.pid
            for record in instance.all_logs(run.run_id)
            if record.dagster_event is not None and record.dagster_event.pid is not None
        }
        if process_ids and not any(_process_exists(pid) for pid in process_ids):
            instance.report_run_failed(run, message="The process running this run is gone (killed?).")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            released.append(run.run_id)
    return released
