"""Operational faults explained: errors that say what went wrong, where, and what to do about it.

A run that dies with ``FileNotFoundError: [Errno 2] ...`` or ``IO Error: Could not write file`` leaves the
operator guessing. These helpers turn the faults a data pipeline meets in practice (a landing folder that
is not there, a file that vanished mid-run, a full disk) into errors naming the path and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
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


class LandingDirEmptyError(ExplainedFileNotFoundError):
    """The landing folder exists but holds no source file, and nobody asked for the sample data."""


class SampleWouldReplaceDataError(RuntimeError):
    """Generating the sample data would write synthetic deliveries beside a warehouse holding real ones."""

    def __init__(self, message: str, warehouse: Path) -> None:
        super().__init__(message)
        self.warehouse = warehouse


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
        "the sample data into it with `.venv/bin/cx360 generate` or `cx360 run --sample` (`make run` "
        f"does this for the project's own data/landing), or point {LANDING_DIR.name} at the folder holding "
        "your source files (<landing>/<source>/*.csv|*.jsonl, see docs/sources.md).",
        path,
    )


def landing_has_files(landing: Path) -> bool:
    """True if ``landing`` holds at least one file in a source folder (``<landing>/<source>/<file>``)."""
    return landing.is_dir() and any(path.is_file() for path in landing.glob("*/*"))


def should_generate_sample(
    landing: Path,
    *,
    is_project_default: bool,
    sample_requested: bool,
    warehouse: Path,
    count_loaded_files: Callable[[], int],
) -> bool:
    """Decide whether ``cx360 run`` writes the sample data into ``landing`` before it runs; never guess.

    The sample is written only into an empty (or missing) landing folder, and only when it is the project's
    own default folder (the two-command quick start) or the user asked for it (``--sample``). A folder the
    user named that is missing or empty is a mistake (a typo, an unmounted share): generating into it would
    publish synthetic people, and on a warehouse holding real deliveries their same-named files would
    replace the real rows. So it is an error, raised before anything is written. Even when the sample is
    wanted, a warehouse that already holds loaded files is never mixed with it.
    """
    if landing_has_files(landing):
        return False
    if not (is_project_default or sample_requested):
        if not landing.exists() or not landing.is_dir():
            require_landing_dir(landing)  # raises LandingDirMissingError naming the folder and the fix
        raise LandingDirEmptyError(
            f"The landing folder {landing.absolute()} holds no source files (<landing>/<source>/<file>), so "
            f"there is nothing to ingest. Check {LANDING_DIR.name} and that the share is mounted. To try the "
            "pipeline on synthetic data instead, run `cx360 run --sample` (writes the sample data into that "
            "folder) or unset the variable to use the project's data/landing. Nothing was changed.",
            landing,
        )
    # Only now is the warehouse opened: a landing folder with files never needs it, so a second `cx360 run`
    # reaches the run lock (and waits) instead of meeting the first run's DuckDB lock here.
    loaded_files = count_loaded_files()
    if loaded_files:
        raise SampleWouldReplaceDataError(
            f"The landing folder {landing.absolute()} is empty, but the warehouse {warehouse.absolute()} "
            f"already holds {loaded_files} loaded landing files. Writing the sample data now would "
            "mix synthetic people into it, and same-named sample files would replace real deliveries. Point "
            f"{LANDING_DIR.name} at the folder holding the deliveries, or use another warehouse "
            "(CX360_WAREHOUSE) for the sample (`make clean` removes the default one). Nothing was changed.",
            warehouse,
        )
    return True


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


# Tag of every run `cx360 run` starts: the process executing it (in process), so a run killed before its first
# event is recognised as dead too.
RUN_PID_TAG = "cx360/pid"


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
        filters=dg.RunsFilter(
            statuses=[
                dg.DagsterRunStatus.STARTED,
                dg.DagsterRunStatus.STARTING,
                # Killed between its creation and its first step: the tag names the CLI process.
                dg.DagsterRunStatus.NOT_STARTED,
            ]
        )
    )
    for run in active:
        process_ids = {
            record.dagster_event.pid
            for record in instance.all_logs(run.run_id)
            if record.dagster_event is not None and record.dagster_event.pid is not None
        }
        if run.tags.get(RUN_PID_TAG, "").isdigit():
            process_ids.add(int(run.tags[RUN_PID_TAG]))
        if process_ids and not any(_process_exists(pid) for pid in process_ids):
            instance.report_run_failed(run, message="The process running this run is gone (killed?).")
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            released.append(run.run_id)
    return released


class RunInProgressError(RuntimeError):
    """Another ``cx360 run`` holds the warehouse's run lock and the caller chose not to wait."""


def run_lock_path(warehouse: Path) -> Path:
    """The lock file of ``cx360 run`` on ``warehouse`` (beside it, so any Dagster home sees the same one)."""
    return warehouse.with_name(f".{warehouse.name}.run.lock")


@contextlib.contextmanager
def hold_run_lock(
    warehouse: Path, *, wait: bool = True, on_wait: Callable[[str], None] = print
) -> Iterator[None]:
    """Serialise ``cx360 run``s on one warehouse: a second run waits for the first (or refuses).

    An advisory ``flock`` on a file beside the warehouse: the kernel releases it when the holder's process
    ends, even by SIGKILL, so a killed run never blocks the next. The holder writes its pid and start time
    into the file so the waiting run can say whom it waits for.
    """
    path = run_lock_path(warehouse)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            message = f"Another cx360 run ({holder}) is running on {warehouse}"
            if not wait:
                raise RunInProgressError(
                    f"{message}. DuckDB admits one writer: let it finish, then run again (or run without "
                    "--no-wait to wait for it)."
                ) from None
            on_wait(f"{message}: waiting for it to finish...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}, started {datetime.now(UTC).isoformat(timespec='seconds')}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
