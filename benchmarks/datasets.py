"""Generated landing folders, cached by scale and seed, and the day-sized incremental drop.

Layout under the bench folder (default ``data/bench``, git-ignored with the rest of ``data/``)::

    datasets/<customers>-s<seed>/landing/<source>/*.csv|*.jsonl   the full history (generator output)
    datasets/<customers>-s<seed>/truth/...                        the generator's ground truth
    datasets/<customers>-s<seed>/increment/landing/...            the next day's drop, before renaming
    datasets/<customers>-s<seed>/dataset.json                     config, sizes, generation times

A dataset is only reused when ``dataset.json`` exists (it is written last) and records the same
generator settings, so an interrupted generation is redone rather than half-used.

The incremental drop: the generator has no "one more day for the same population" mode (its random
streams depend on the date range, so extending ``--end-date`` changes every record), so the drop is a
second, independent generation with ~1 % of the customers (another seed, same window), whose files are
concatenated per source into ``<source>/<day after end_date>-incremental.<ext>`` in the run's landing copy.
That is about 1 % of the volume under new file names, as a daily delivery would land; its records spread
over the whole window like late and re-delivered data, and its identifiers partly collide with the
existing population the way returning customers do.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from cx_pipeline.contracts import CONTRACTS

INCREMENT_SHARE = 0.01
INCREMENT_SEED_OFFSET = 1_000_003
GENERATOR_VERSION_FILES = ("config.py", "run.py", "journeys.py", "engagement.py", "delivery.py")


@dataclass(frozen=True)
class Dataset:
    customers: int
    seed: int
    root: Path
    info: dict

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def truth(self) -> Path:
        return self.root / "truth"

    @property
    def increment_landing(self) -> Path:
        return self.root / "increment" / "landing"

    @property
    def end_date(self) -> date:
        return date.fromisoformat(self.info["end_date"])

    @property
    def increment_day(self) -> date:
        return self.end_date + timedelta(days=1)


def cx360_command() -> list[str]:
    """The ``cx360`` CLI of the running interpreter (works without an activated virtualenv)."""
    script = Path(sys.executable).parent / "cx360"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "cx_pipeline.cli"]


def landing_stats(landing: Path) -> dict[str, dict[str, int]]:
    """Per source: files, bytes and records (data lines; CSV headers excluded)."""
    stats: dict[str, dict[str, int]] = {}
    for source, contract in CONTRACTS.items():
        files = sorted(p for p in (landing / source).glob("*") if p.is_file() and not p.name.startswith("."))
        records = size = 0
        for path in files:
            size += path.stat().st_size
            records += count_lines(path) - (1 if contract.format == "csv" else 0)
        stats[source] = {"files": len(files), "bytes": size, "records": records}
    return stats


def count_lines(path: Path) -> int:
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(16 * 1024 * 1024):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (0 if last == b"\n" else 1)


def _generate(customers: int, seed: int, landing: Path, truth: Path, log: Path) -> float:
    if landing.exists():
        shutil.rmtree(landing)
    if truth.exists():
        shutil.rmtree(truth)
    started = time.perf_counter()
    command = [
        *cx360_command(),
        "generate",
        "--customers",
        str(customers),
        "--seed",
        str(seed),
        "--landing",
        str(landing),
        "--truth",
        str(truth),
        "--no-progress",
    ]
    with log.open("ab") as handle:
        completed = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"cx360 generate failed for {customers} customers; see {log}")
    return time.perf_counter() - started


def _generator_fingerprint() -> dict:
    """Sizes and mtimes of the generator's main modules: a changed generator invalidates cached data."""
    import cx_pipeline.generator as generator

    folder = Path(generator.__file__).parent
    return {
        name: (folder / name).stat().st_size for name in GENERATOR_VERSION_FILES if (folder / name).exists()
    }


def ensure_dataset(
    bench_dir: Path, customers: int, seed: int, log=print, regenerate_if_changed: bool = False
) -> Dataset:
    """The cached dataset for (customers, seed), generated (with its incremental drop) if missing."""
    root = bench_dir / "datasets" / f"{customers}-s{seed}"
    info_path = root / "dataset.json"
    fingerprint = _generator_fingerprint()
    if info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("generator_fingerprint") == fingerprint or not regenerate_if_changed:
            changed = info.get("generator_fingerprint") != fingerprint
            note = " (the generator changed since; pass --regenerate to refresh)" if changed else ""
            log(f"  dataset {customers:,} customers (seed {seed}): cached in {root}{note}")
            return Dataset(customers, seed, root, info)
        log(f"  dataset {customers:,}: the generator changed since it was cached, regenerating")
        info_path.unlink()
    root.mkdir(parents=True, exist_ok=True)
    generation_log = root / "generate.log"
    log(f"  generating {customers:,} customers (seed {seed}) into {root} ...")
    seconds = _generate(customers, seed, root / "landing", root / "truth", generation_log)
    increment_customers = max(1, round(customers * INCREMENT_SHARE))
    increment_seed = seed + INCREMENT_SEED_OFFSET
    log(f"  generating the incremental drop ({increment_customers:,} customers, seed {increment_seed}) ...")
    increment_seconds = _generate(
        increment_customers,
        increment_seed,
        root / "increment" / "landing",
        root / "increment" / "truth",
        generation_log,
    )
    summary_path = root / "truth" / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    config = summary.get("config", {})
    info = {
        "customers": customers,
        "seed": seed,
        "start_date": config.get("start_date", "2025-05-01"),
        "end_date": config.get("end_date", "2026-10-31"),
        "generation_seconds": seconds,
        "increment_customers": increment_customers,
        "increment_seed": increment_seed,
        "increment_generation_seconds": increment_seconds,
        "landing": landing_stats(root / "landing"),
        "increment": landing_stats(root / "increment" / "landing"),
        "generator_fingerprint": fingerprint,
    }
    info_path.write_text(json.dumps(info, indent=2))
    log(f"  generated in {seconds:.1f} s (+ {increment_seconds:.1f} s for the drop)")
    return Dataset(customers, seed, root, info)


def link_landing(source_root: Path, target_root: Path) -> None:
    """A copy of a landing folder made of hard links (instant; the pipeline only reads landing files)."""
    if target_root.exists():
        shutil.rmtree(target_root)
    for path in sorted(source_root.rglob("*")):
        relative = path.relative_to(source_root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        target = target_root / relative
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, target)
        except OSError:
            shutil.copy2(path, target)


def add_increment(dataset: Dataset, landing: Path) -> dict[str, dict[str, int]]:
    """Write the drop into ``landing`` as ``<source>/<day>-incremental.<ext>``; returns its stats."""
    day = dataset.increment_day.isoformat()
    written: dict[str, dict[str, int]] = {}
    for source, contract in CONTRACTS.items():
        parts = sorted(p for p in (dataset.increment_landing / source).glob(f"*.{contract.format}"))
        if not parts:  # nothing of this source in the drop (tiny scales): no file, as a real feed would
            written[source] = {"files": 0, "bytes": 0, "records": 0}
            continue
        target = landing / source / f"{day}-incremental.{contract.format}"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as out:
            for index, part in enumerate(parts):
                with part.open("rb") as handle:
                    if contract.format == "csv" and index > 0:
                        handle.readline()  # one header for the whole file
                    shutil.copyfileobj(handle, out, 16 * 1024 * 1024)
                out.flush()
                if out.tell() and _last_byte(target) != b"\n":
                    out.write(b"\n")
        records = count_lines(target) - (1 if contract.format == "csv" and target.stat().st_size else 0)
        written[source] = {"files": 1, "bytes": target.stat().st_size, "records": records}
    return written


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)


def totals(stats: dict[str, dict[str, int]]) -> dict[str, int]:
    return {key: sum(s[key] for s in stats.values()) for key in ("files", "bytes", "records")}
