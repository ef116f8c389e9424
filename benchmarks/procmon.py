"""Run a command and sample the resident memory of its whole process tree.

The tree is the child and every process below it (dbt's subprocesses included), found through the parent
ids in ``/proc`` every ``interval`` seconds. psutil is used when it is installed; otherwise ``/proc`` is
read directly (Linux), so the harness needs nothing beyond the standard library.

Two memory figures come out:

- ``peak_tree_rss``: the largest sum of RSS over the tree at one sampling instant (what the machine had to
  hold at once; pages shared between processes count once per process, so it is an upper bound);
- ``peak_process_hwm``: the largest single-process high-water mark (``VmHWM``, kernel-tracked, so it also
  catches spikes between two samples).

And ``cpu_seconds``: user + system CPU time of the tree (``getrusage(RUSAGE_CHILDREN)`` around the run, which
counts every descendant that was waited for). Unlike wall time it hardly moves when other work competes
for the cores, so it is the figure to compare on a shared machine.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

try:  # pragma: no cover - depends on the environment
    import psutil
except ImportError:  # pragma: no cover
    psutil = None

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass
class MonitoredRun:
    command: list[str]
    returncode: int | None
    wall_seconds: float
    peak_tree_rss: int  # bytes
    peak_process_hwm: int  # bytes
    peak_processes: int
    samples: int
    cpu_seconds: float = 0.0  # user + system time of the whole tree (waited-for descendants)
    timed_out: bool = False
    log_path: Path | None = None
    started_at: float = 0.0  # time.time() at launch
    rss_series: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, tree RSS)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _children_map_proc() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def _rss_and_hwm_proc(pid: int) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            status = handle.read()
    except OSError:
        return 0, 0
    rss = hwm = 0
    for line in status.splitlines():
        if line.startswith(b"VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith(b"VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    return rss, hwm


def tree_pids(root: int) -> list[int]:
    """``root`` and all of its descendants that are alive now."""
    if psutil is not None:
        try:
            parent = psutil.Process(root)
            return [root] + [child.pid for child in parent.children(recursive=True)]
        except psutil.Error:
            return []
    children = _children_map_proc()
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def tree_memory(root: int) -> tuple[int, int, int]:
    """(sum of RSS, largest VmHWM, number of processes) of the tree under ``root``."""
    total = hwm = count = 0
    for pid in tree_pids(root):
        rss, peak = _rss_and_hwm_proc(pid)
        if rss or peak:
            total += rss
            hwm = max(hwm, peak)
            count += 1
    return total, hwm, count


def run_monitored(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    log_path: Path | None = None,
    timeout: float | None = None,
    interval: float = 0.2,
    preexec_fn: Callable[[], None] | None = None,
    keep_series: bool = False,
) -> MonitoredRun:
    """Run ``command`` to completion (or ``timeout``), sampling its tree's memory every ``interval`` s.

    stdout and stderr go to ``log_path`` (or are discarded). On timeout the whole process group is killed.
    """
    log_handle = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    peak_rss = peak_hwm = peak_procs = samples = 0
    series: list[tuple[float, int]] = []
    usage_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started_wall = time.time()
    started = time.perf_counter()
    try:
        process = subprocess.Popen(
            list(command),
            env=dict(env) if env is not None else None,
            cwd=cwd,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so a timeout can end the whole tree
            preexec_fn=preexec_fn,
        )
        timed_out = False
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak_rss, peak_hwm, peak_procs, samples
            while not stop.is_set():
                rss, hwm, procs = tree_memory(process.pid)
                samples += 1
                peak_rss = max(peak_rss, rss)
                peak_hwm = max(peak_hwm, hwm)
                peak_procs = max(peak_procs, procs)
                if keep_series:
                    series.append((time.perf_counter() - started, rss))
                stop.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except BaseException:  # interrupted: do not leave the tree running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            raise
        usage_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
    finally:
        if log_path:
            log_handle.close()
    return MonitoredRun(
        command=list(command),
        returncode=process.returncode,
        wall_seconds=wall,
        peak_tree_rss=peak_rss,
        peak_process_hwm=peak_hwm,
        peak_processes=peak_procs,
        samples=samples,
        cpu_seconds=(usage_after.ru_utime - usage_before.ru_utime)
        + (usage_after.ru_stime - usage_before.ru_stime),
        timed_out=timed_out,
        log_path=log_path,
        started_at=started_wall,
        rss_series=series,
    )
