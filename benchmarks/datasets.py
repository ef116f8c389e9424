"""Generated landing folders, cached by scale and seed, and the day-sized incremental drop.

Layout under the bench folder (default ``data/bench``, git-ignored with the rest of ``data/``)::

    datasets/<customers>-s<seed>/landing/<source>/*.csv|*.jsonl   the full history (generator output)
    datasets/<customers>-s<seed>/truth/...                        the generator's ground truth
    datasets/<customers>-s<seed>/increment/landing/<source>/day-<date>.<ext>   the next day's drop
    datasets/<customers>-s<seed>/increment/truth/...              the truth including that day
    datasets/<customers>-s<seed>/dataset.json                     config, sizes, generation times

A dataset is only reused when ``dataset.json`` exists (it is written last) and records the same
generator settings and drop method, so an interrupted generation is redone rather than half-used.

The incremental drop is the next day of the same population (``cx360 generate --next-day`` on a copy of the
truth): ~1 % of the customers active again, a few new persons, late events, CRM corrections, merging
identify calls, consent changes and erasure requests (``INCREMENT_ERASURES_LARGE`` of them from
``LARGE_SCALE`` customers on), in new files ``<source>/day-<day after end_date>.<ext>`` that are linked into
the run's landing copy, as a daily delivery would land.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cx_pipeline.contracts import CONTRACTS

INCREMENT_METHOD = "next-day"  # recorded in dataset.json: caches made another way are regenerated
INCREMENT_ACTIVE_SHARE = 0.01
LARGE_SCALE = 100_000
INCREMENT_ERASURES_LARGE = 50  # erasure requests in the drop from LARGE_SCALE customers on
INCREMENT_PATTERN = "day-*"  # the drop's files in the run's landing copy
GENERATOR_VERSION_FILES = (
    "config.py",
    "run.py",
    "journeys.py",
    "engagement.py",
    "accounts.py",
    "delivery.py",
    "nextday.py",
)


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
        return date.fromisoformat(self.info["increment_day"])


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


def _generate_next_day(customers: int, root: Path, log: Path) -> float:
    """The drop: the day after the base as new files in ``increment/landing``, on a copy of the truth."""
    increment = root / "increment"
    if increment.exists():
        shutil.rmtree(increment)
    shutil.copytree(root / "truth", increment / "truth")
    started = time.perf_counter()
    command = [
        *cx360_command(),
        "generate",
        "--next-day",
        "--landing",
        str(increment / "landing"),
        "--truth",
        str(increment / "truth"),
        "--active-share",
        str(INCREMENT_ACTIVE_SHARE),
        "--erasures",
        str(increment_erasures(customers)),
    ]
    with log.open("ab") as handle:
        completed = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"cx360 generate --next-day failed for {customers} customers; see {log}")
    return time.perf_counter() - started


def increment_erasures(customers: int) -> int:
    """Erasure requests in the drop: ~50 at the large scales, the generator's small default below."""
    from cx_pipeline.generator.nextday import DayAmounts

    return INCREMENT_ERASURES_LARGE if customers >= LARGE_SCALE else DayAmounts().erasures


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
        if info.get("increment_method") != INCREMENT_METHOD:
            log(f"  dataset {customers:,}: cached with another incremental drop, regenerating")
            info_path.unlink()
        elif info.get("generator_fingerprint") == fingerprint or not regenerate_if_changed:
            changed = info.get("generator_fingerprint") != fingerprint
            note = " (the generator changed since; pass --regenerate to refresh)" if changed else ""
            log(f"  dataset {customers:,} customers (seed {seed}): cached in {root}{note}")
            return Dataset(customers, seed, root, info)
        else:
            log(f"  dataset {customers:,}: the generator changed since it was cached, regenerating")
            info_path.unlink()
    root.mkdir(parents=True, exist_ok=True)
    generation_log = root / "generate.log"
    log(f"  generating {customers:,} customers (seed {seed}) into {root} ...")
    seconds = _generate(customers, seed, root / "landing", root / "truth", generation_log)
    log(f"  generating the incremental drop (the next day, {increment_erasures(customers)} erasures) ...")
    increment_seconds = _generate_next_day(customers, root, generation_log)
    state = json.loads((root / "increment" / "truth" / "state.json").read_text())
    info = {
        "customers": customers,
        "seed": seed,
        "start_date": state["start_date"],
        "end_date": state["base_end_date"],
        "generation_seconds": seconds,
        "increment_method": INCREMENT_METHOD,
        "increment_day": state["end_date"],
        "increment_planted": state["days"][-1]["planted"],
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
    """Link the drop's files (``<source>/day-<date>.<ext>``) into ``landing``; returns their stats."""
    written: dict[str, dict[str, int]] = {}
    for source, contract in CONTRACTS.items():
        parts = sorted((dataset.increment_landing / source).glob(f"{INCREMENT_PATTERN}.{contract.format}"))
        records = size = 0
        for part in parts:  # a source without records that day has no file, as a real feed would
            target = landing / source / part.name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(part, target)
            except OSError:
                shutil.copy2(part, target)
            size += target.stat().st_size
            records += count_lines(target) - (1 if contract.format == "csv" else 0)
        written[source] = {"files": len(parts), "bytes": size, "records": records}
    return written


def totals(stats: dict[str, dict[str, int]]) -> dict[str, int]:
    return {key: sum(s[key] for s in stats.values()) for key in ("files", "bytes", "records")}
