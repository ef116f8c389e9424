"""Noticing new or changed landing files without opening the warehouse (for the Dagster sensor).

The sensor must not touch DuckDB: a sensor holding the file would block a running load (DuckDB admits a
single process). It compares a snapshot of the landing folder (relative path -> size and mtime) with the
snapshot stored in its cursor; the assets themselves decide by content hash what really needs loading.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from cx_pipeline.contracts import SOURCE_NAMES
from cx_pipeline.ingestion.landing import list_landing_files
from cx_pipeline.settings import DEFAULT_LANDING_SETTLE_SECONDS

# A file modified less than this many seconds ago may still be being written: wait for the next tick (the
# default of CX360_LANDING_SETTLE_SECONDS, which the loader honours too).
SETTLE_SECONDS = DEFAULT_LANDING_SETTLE_SECONDS

Snapshot = dict[str, list[int]]  # relative path -> [size_bytes, modified_ns]


def landing_snapshot(landing_root: Path, sources: tuple[str, ...] = SOURCE_NAMES) -> Snapshot:
    snapshot: Snapshot = {}
    for source in sources:
        files, _ = list_landing_files(landing_root, source)
        for landing_file in files:
            snapshot[landing_file.relative_path] = [landing_file.size_bytes, landing_file.modified_ns]
    return snapshot


def source_of(relative_path: str) -> str:
    return relative_path.split("/", 1)[0].lower()  # source folders match case-insensitively


@dataclass(frozen=True)
class LandingChanges:
    sources: list[str]  # sources with new or changed settled files, in contract order
    changed_files: list[str]
    unsettled_files: list[str]  # changed but too recent; looked at again next tick
    cursor: Snapshot  # what the next evaluation compares with

    @property
    def run_key(self) -> str:
        digest = hashlib.sha256()
        for path in self.changed_files:
            digest.update(f"{path}:{self.cursor[path][0]}:{self.cursor[path][1]}\n".encode())
        return digest.hexdigest()[:24]


def detect_changes(
    previous: Snapshot, current: Snapshot, now_ns: int | None = None, settle_seconds: float = SETTLE_SECONDS
) -> LandingChanges:
    """Compare snapshots. Deleted files are ignored (their rows stay in raw); unsettled files keep their
    previous cursor entry so they are reported once they settle."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    settle_ns = int(settle_seconds * 1e9)
    changed: list[str] = []
    unsettled: list[str] = []
    cursor: Snapshot = {}
    for path, state in sorted(current.items()):
        if previous.get(path) == state:
            cursor[path] = state
        elif now_ns - state[1] < settle_ns:
            unsettled.append(path)
            if path in previous:
                cursor[path] = previous[path]
        else:
            changed.append(path)
            cursor[path] = state
    touched = {source_of(path) for path in changed}
    return LandingChanges(
        sources=[s for s in SOURCE_NAMES if s in touched],
        changed_files=changed,
        unsettled_files=unsettled,
        cursor=cursor,
    )


def dump_cursor(snapshot: Snapshot) -> str:
    return json.dumps(snapshot, separators=(",", ":"), sort_keys=True)


def load_cursor(cursor: str | None) -> Snapshot:
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
    except json.JSONDecodeError:
        return {}
    return {str(k): [int(v[0]), int(v[1])] for k, v in data.items()} if isinstance(data, dict) else {}
