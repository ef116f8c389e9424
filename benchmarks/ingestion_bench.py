"""Ingestion micro-benchmark and equivalence proof: the loader of another checkout against this one.

Loads the same landing files with a baseline checkout of cx360 (e.g. ``git worktree add /tmp/base HEAD``)
and with the working tree, in the same process and alternating per source so both see the same machine
load, and reports records/s and CPU per source with the new/old ratio. Then it proves the outputs equal:
every ``raw.<source>`` table, ``raw.quarantine`` and ``raw.loaded_files`` (without the volatile
``duration_seconds``) as multisets of rows (``EXCEPT ALL`` both ways), plus the quarantine copies of
unreadable files byte for byte. Both loads use the same fixed clock, so ``_loaded_at`` is compared too.

    .venv/bin/python -m benchmarks.ingestion_bench --baseline /tmp/ingest-baseline \\
        --landing data/bench-s2/datasets/10000-s42/landing [--sources web_events,cart_events]

Exit status 1 if any table or quarantine copy differs.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib
import re
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from cx_pipeline.sql import Sql, compose, qualified_name, quote_literal

_ALIAS = "cx_pipeline_baseline"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def import_baseline(checkout: Path, workdir: Path):
    """The baseline's ``cx_pipeline`` package, copied under another top-level name so both load."""
    target = workdir / "baseline_pkg" / _ALIAS
    shutil.copytree(checkout / "cx_pipeline", target)
    for path in target.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\bcx_pipeline(?=[.\s])", _ALIAS, text)
        path.write_text(text, encoding="utf-8")
    sys.path.insert(0, str(target.parent))
    return importlib.import_module(f"{_ALIAS}.ingestion.loader")


def _fixed_clock():
    start = datetime(2030, 1, 1, tzinfo=UTC)
    state = {"n": 0}

    def now() -> datetime:
        state["n"] += 1
        return start + timedelta(seconds=state["n"])

    return now


def _load(loader, warehouse: Path, source: str, landing: Path, quarantine: Path) -> tuple[int, float, float]:
    conn = duckdb.connect(str(warehouse))
    try:
        wall, cpu = time.perf_counter(), _cpu()
        result = loader.load_source(conn, source, landing, quarantine, now=_fixed_clock())
        return result.rows_read, time.perf_counter() - wall, _cpu() - cpu
    finally:
        conn.close()


def _differences(old: Path, new: Path, sources: list[str]) -> list[str]:
    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute(compose("ATTACH {path} AS old (READ_ONLY)", path=quote_literal(str(old))))
    conn.execute(compose("ATTACH {path} AS new (READ_ONLY)", path=quote_literal(str(new))))
    problems = []
    tables = [*sources, "quarantine", "loaded_files"]
    for table in tables:
        drop = Sql(" EXCLUDE (duration_seconds)") if table == "loaded_files" else Sql("")
        counts = []
        for a, b in (("old", "new"), ("new", "old")):
            only = compose(
                "SELECT *{drop} FROM {a} EXCEPT ALL SELECT *{drop} FROM {b}",
                drop=drop,
                a=qualified_name(a, "raw", table),
                b=qualified_name(b, "raw", table),
            )
            counts.append(conn.execute(compose("SELECT count(*) FROM ({only})", only=only)).fetchall()[0][0])
        sizes = compose(
            "SELECT (SELECT count(*) FROM {old}), (SELECT count(*) FROM {new})",
            old=qualified_name("old", "raw", table),
            new=qualified_name("new", "raw", table),
        )
        rows = conn.execute(sizes).fetchall()[0]
        status = "identical" if counts == [0, 0] and rows[0] == rows[1] else "DIFFERENT"
        print(
            f"  {table:22} {rows[0]:>10} rows old, {rows[1]:>10} new: {status} "
            f"(only old {counts[0]}, only new {counts[1]})"
        )
        if status != "identical":
            problems.append(table)
    conn.close()
    return problems


def _compare_checks(warehouse: Path, sources: list[str]) -> list[str]:
    """The Great Expectations checks of each raw table, old and new code on the same warehouse."""
    old_quality = importlib.import_module(f"{_ALIAS}.ingestion.quality")
    new_quality = importlib.import_module("cx_pipeline.ingestion.quality")
    now = datetime(2030, 1, 1, tzinfo=UTC)
    import great_expectations  # noqa: F401  (import cost outside the timings)

    problems = []
    print(f"checks: {'source':22} {'old s':>7} {'new s':>7} {'speed-up':>8}")
    for source in sources:
        timed = {}
        for label, quality in (("old", old_quality), ("new", new_quality)):
            conn = duckdb.connect(str(warehouse))
            try:
                wall = time.perf_counter()
                verdicts = quality.evaluate_checks(conn, source, now=now)
                timed[label] = (
                    time.perf_counter() - wall,
                    [(v.name, v.passed, v.metadata) for v in verdicts],
                )
            finally:
                conn.close()
        same = timed["old"][1] == timed["new"][1]
        print(
            f"        {source:22} {timed['old'][0]:>7.2f} {timed['new'][0]:>7.2f} "
            f"{timed['old'][0] / timed['new'][0]:>7.2f}x verdicts and metadata "
            f"{'identical' if same else 'DIFFERENT'}"
        )
        if not same:
            problems.append(f"checks of {source}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, required=True, help="checkout of the baseline code")
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--sources", default="", help="comma-separated (default: all)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the warehouses here")
    parser.add_argument("--checks", action="store_true", help="also time the raw checks (old vs new code)")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cx360-ingest-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    old_loader = import_baseline(args.baseline.resolve(), workdir)
    new_loader = importlib.import_module("cx_pipeline.ingestion.loader")
    from cx_pipeline.contracts import SOURCE_NAMES

    sources = [s for s in args.sources.split(",") if s] or list(SOURCE_NAMES)
    old_db, new_db = workdir / "old.duckdb", workdir / "new.duckdb"
    for path in (old_db, new_db):
        path.unlink(missing_ok=True)
    print(
        f"{'source':22} {'records':>9} {'old s':>7} {'new s':>7} {'old rec/s':>10} {'new rec/s':>10} "
        f"{'speed-up':>8} {'old cpu':>8} {'new cpu':>8}"
    )
    total = [0, 0.0, 0.0, 0.0, 0.0]
    for index, source in enumerate(sources):
        # Alternate which loader goes first so neither always meets a warm page cache.
        order = [("old", old_loader, old_db), ("new", new_loader, new_db)]
        if index % 2:
            order.reverse()
        measured = {}
        for label, loader, db in order:
            measured[label] = _load(loader, db, source, args.landing, workdir / f"quarantine-{label}")
        rows, old_wall, old_cpu = measured["old"]
        new_rows, new_wall, new_cpu = measured["new"]
        assert rows == new_rows, (source, rows, new_rows)
        total = [
            total[0] + rows,
            total[1] + old_wall,
            total[2] + new_wall,
            total[3] + old_cpu,
            total[4] + new_cpu,
        ]
        print(
            f"{source:22} {rows:>9} {old_wall:>7.2f} {new_wall:>7.2f} {rows / old_wall:>10.0f} "
            f"{rows / new_wall:>10.0f} {old_wall / new_wall:>7.2f}x {old_cpu:>8.2f} {new_cpu:>8.2f}"
        )
    rows, old_wall, new_wall, old_cpu, new_cpu = total
    print(
        f"{'total':22} {rows:>9} {old_wall:>7.2f} {new_wall:>7.2f} {rows / old_wall:>10.0f} "
        f"{rows / new_wall:>10.0f} {old_wall / new_wall:>7.2f}x {old_cpu:>8.2f} {new_cpu:>8.2f}"
    )

    print("equivalence (multisets of rows, EXCEPT ALL both ways):")
    problems = _differences(old_db, new_db, sources)
    old_q, new_q = workdir / "quarantine-old", workdir / "quarantine-new"
    old_files = (
        sorted(p.relative_to(old_q).as_posix() for p in old_q.rglob("*") if p.is_file())
        if old_q.exists()
        else []
    )
    new_files = (
        sorted(p.relative_to(new_q).as_posix() for p in new_q.rglob("*") if p.is_file())
        if new_q.exists()
        else []
    )
    same_files = old_files == new_files and all(
        filecmp.cmp(old_q / f, new_q / f, shallow=False) for f in old_files
    )
    print(
        f"  quarantine copies: {len(old_files)} old, {len(new_files)} new: "
        f"{'identical' if same_files else 'DIFFERENT'}"
    )
    if not same_files:
        problems.append("quarantine copies")
    if args.checks:
        problems += _compare_checks(new_db, sources)
    print("RESULT:", "identical" if not problems else f"differences in {', '.join(problems)}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
