"""Benchmark cx360 at several scales and write ``docs/benchmarks.md``.

    python -m benchmarks.run --scales 10000,100000,1000000 --repeats 3,1,1 --out docs/benchmarks.md

Per scale and repeat: the full build (``cx360 run`` in a subprocess, its process tree's memory sampled
every 0.2 s), the incremental run after a day-sized drop, the DuckDB floor over the same files and the
pandas baseline (under a memory cap and a time-out). Results accumulate in ``<bench-dir>/results.json``
(one entry per scale, replaced when that scale is run again), so scales can be run at different times and
``--report-only`` re-renders the report from what was measured. Generated landing folders are cached
under ``<bench-dir>/datasets`` by scale and seed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from benchmarks import datasets, pipeline, report
from benchmarks.procmon import MonitoredRun, run_monitored
from cx_pipeline.publish import write_file_atomically
from cx_pipeline.settings import PROJECT_ROOT

GIB = 1024**3


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


# ----------------------------------------------------------------------------------------------- machine


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "memory_bytes": memory,
        "cpu_model": cpu,
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()),
    }


def versions() -> dict:
    found = {"python": platform.python_version()}
    for package in (
        "duckdb",
        "dagster",
        "dagster-dbt",
        "dbt-core",
        "dbt-duckdb",
        "pandas",
        "numpy",
        "pyarrow",
    ):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ------------------------------------------------------------------------------------------- references


def _monitored_dict(run: MonitoredRun) -> dict:
    return {
        "ok": run.ok,
        "returncode": run.returncode,
        "timed_out": run.timed_out,
        "wall_seconds": run.wall_seconds,
        "peak_tree_rss": run.peak_tree_rss,
        "peak_process_hwm": run.peak_process_hwm,
        "samples": run.samples,
        "cpu_seconds": run.cpu_seconds,
    }


def run_floor(landing: Path, work: Path, pattern: str, label: str) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"{label}.json"
    out.unlink(missing_ok=True)
    database = work / f"{label}.duckdb"
    monitored = run_monitored(
        [sys.executable, "-m", "benchmarks.floor", "--landing", str(landing), "--database", str(database),
         "--pattern", pattern, "--json", str(out)],
        cwd=PROJECT_ROOT,
        log_path=work / f"{label}.log",
    )  # fmt: skip
    result = _monitored_dict(monitored)
    if monitored.ok and out.exists():
        result.update(json.loads(out.read_text()))
    else:
        result["error"] = (work / f"{label}.log").read_text(errors="replace")[-2000:]
    for path in (database, database.with_suffix(".duckdb.wal")):
        path.unlink(missing_ok=True)
    return result


def _memory_cap(limit_bytes: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def run_pandas(landing: Path, work: Path, memory_cap: int, timeout: float) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    out_json = work / "pandas.json"
    out_json.unlink(missing_ok=True)
    log_path = work / "pandas.log"
    monitored = run_monitored(
        [sys.executable, "-m", "benchmarks.pandas_baseline", "--landing", str(landing),
         "--out", str(work / "pandas_profile.parquet"), "--json", str(out_json)],
        cwd=PROJECT_ROOT,
        log_path=log_path,
        timeout=timeout,
        preexec_fn=_memory_cap(memory_cap),
    )  # fmt: skip
    result = _monitored_dict(monitored)
    text = log_path.read_text(errors="replace") if log_path.exists() else ""
    if monitored.timed_out:
        result["status"] = "timeout"
        result["error"] = f"killed after {timeout:.0f} s"
    elif monitored.ok and out_json.exists():
        result["status"] = "ok"
        result.update(json.loads(out_json.read_text()))
    elif any(word in text for word in ("MemoryError", "Unable to allocate", "bad_alloc", "Cannot allocate")):
        result["status"] = "out of memory"
        result["error"] = f"out of memory under the {memory_cap / GIB:.0f} GiB address-space cap"
    else:
        result["status"] = "error"
        result["error"] = text[-2000:]
    (work / "pandas_profile.parquet").unlink(missing_ok=True)
    return result


# ---------------------------------------------------------------------------------------------- pipeline


def _pipeline_dict(run: pipeline.PipelineRun) -> dict:
    nodes = [
        {
            "name": n.name,
            "resource_type": n.resource_type,
            "schema": n.schema,
            "materialized": n.materialized,
            "layer": pipeline.dbt_layer(n),
            "seconds": n.seconds,
            "rows": n.rows,
            "status": n.status,
        }
        for n in run.nodes
    ]
    return {
        **_monitored_dict(run.monitored),
        "ok": run.ok,
        "run_id": run.run_id,
        "status": run.status,
        "failed_steps": run.failed_steps,
        "error": run.error,
        "warning": run.warning,
        "stages": {
            name: {**asdict(stage), "rows_per_second": stage.rows_per_second}
            for name, stage in run.stages.items()
        },
        "nodes": nodes,
    }


def run_scale(args: argparse.Namespace, customers: int, repeats: int, pandas_state: dict) -> dict:
    dataset = datasets.ensure_dataset(
        args.bench_dir, customers, args.seed, log=log, regenerate_if_changed=args.regenerate
    )
    landing_records = datasets.totals(dataset.info["landing"])["records"]
    increment_records = datasets.totals(dataset.info["increment"])["records"]
    entry: dict = {"customers": customers, "seed": args.seed, "dataset": dataset.info, "repeats": []}
    for repeat in range(repeats):
        log(f"{customers:,} customers, repeat {repeat + 1}/{repeats}")
        run_dir = args.bench_dir / "runs" / f"{customers}-s{args.seed}" / f"r{repeat + 1}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        result: dict = {}

        log("  DuckDB floor ...")
        result["floor"] = run_floor(dataset.landing, run_dir / "floor", "*", "floor")
        log(f"    {result['floor']['wall_seconds']:.1f} s")

        landing = run_dir / "landing"
        datasets.link_landing(dataset.landing, landing)
        env = pipeline.run_environment(run_dir, landing, dataset.truth, args.tree)
        log("  full build (cx360 run) ...")
        full = pipeline.run_pipeline(
            "full", run_dir, env, landing_records, timeout=args.pipeline_timeout, tree=args.tree
        )
        result["full"] = _pipeline_dict(full)
        log(
            f"    {full.monitored.wall_seconds:.1f} s, peak {full.monitored.peak_tree_rss / GIB:.2f} GiB"
            + ("" if full.ok else f" FAILED: {(full.error or '').strip()[-600:]}")
        )
        if full.warning:
            log(f"    warning: {full.warning}")
        if full.ok and not args.no_incremental:
            result["increment"] = datasets.add_increment(dataset, landing)
            log("  DuckDB floor over the drop ...")
            result["floor_incremental"] = run_floor(
                landing, run_dir / "floor", datasets.INCREMENT_PATTERN, "floor_inc"
            )
            log("  incremental run (cx360 run after one day's drop) ...")
            incremental = pipeline.run_pipeline(
                "incremental", run_dir, env, increment_records, timeout=args.pipeline_timeout, tree=args.tree
            )
            result["incremental"] = _pipeline_dict(incremental)
            log(
                f"    {incremental.monitored.wall_seconds:.1f} s, "
                f"peak {incremental.monitored.peak_tree_rss / GIB:.2f} GiB"
                + ("" if incremental.ok else f" FAILED: {(incremental.error or '').strip()[-600:]}")
            )

        pandas_repeats = repeats if customers <= args.pandas_all_repeats_below else 1
        if args.no_pandas:
            result["pandas"] = {"status": "skipped", "error": "--no-pandas"}
        elif pandas_state.get("failed_at"):
            result["pandas"] = {
                "status": "skipped",
                "error": f"{pandas_state['failed_status']} already at "
                f"{pandas_state['failed_at']:,} customers",
            }
        elif repeat < pandas_repeats:
            log("  pandas baseline ...")
            result["pandas"] = run_pandas(
                dataset.landing, run_dir / "pandas", int(args.pandas_memory_gib * GIB), args.pandas_timeout
            )
            log(f"    {result['pandas']['status']}, {result['pandas']['wall_seconds']:.1f} s")
            if result["pandas"]["status"] in ("out of memory", "timeout"):
                pandas_state.update(failed_at=customers, failed_status=result["pandas"]["status"])
        if not args.keep_runs:
            for name in ("landing", "warehouse", "serving", "exports", "quarantine", "reports"):
                shutil.rmtree(run_dir / name, ignore_errors=True)
        entry["repeats"].append(result)
    return entry


# ------------------------------------------------------------------------------------------------ main


def _save(path: Path, results: dict, scale: str | None) -> None:
    """Write ``results``, keeping scales another invocation saved to the same file meanwhile."""
    if path.exists():
        on_disk = json.loads(path.read_text())
        for other, entry in on_disk.get("scales", {}).items():
            if other != scale and other not in results["scales"]:
                results["scales"][other] = entry
    write_file_atomically(path, json.dumps(results, indent=1, default=str))


def _parse_ints(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="10000,100000", help="customers per scale, comma-separated")
    parser.add_argument(
        "--repeats", default="3,1", help="repeats per scale (one number for all, or one per scale)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--chart", type=Path, help="SVG chart (default: <out stem>_time_vs_scale.svg)")
    parser.add_argument("--bench-dir", type=Path, default=PROJECT_ROOT / "data" / "bench")
    parser.add_argument("--no-incremental", action="store_true")
    parser.add_argument("--no-pandas", action="store_true")
    parser.add_argument("--pandas-memory-gib", type=float, default=20.0)
    parser.add_argument("--pandas-timeout", type=float, default=1800.0)
    parser.add_argument(
        "--pandas-all-repeats-below",
        type=int,
        default=20_000,
        help="run pandas on every repeat up to this many customers, once above",
    )
    parser.add_argument("--pipeline-timeout", type=float, default=3600.0)
    parser.add_argument(
        "--regenerate", action="store_true", help="regenerate cached data if the generator changed"
    )
    parser.add_argument("--keep-runs", action="store_true", help="keep warehouses and landing copies of runs")
    parser.add_argument("--tree", type=Path, help="run the pipeline from this existing snapshot")
    parser.add_argument(
        "--live-tree",
        action="store_true",
        help="run the pipeline from the working tree instead of a snapshot of it taken at the start",
    )
    parser.add_argument("--fresh", action="store_true", help="forget results of scales not run now")
    parser.add_argument("--report-only", action="store_true", help="re-render the report from results.json")
    parser.add_argument(
        "--merge",
        type=Path,
        action="append",
        default=[],
        help="also take the scales of another results.json (e.g. from a run with another --bench-dir)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A terminated harness unwinds, so the measured process tree is killed too (see procmon).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.bench_dir = args.bench_dir.resolve()
    args.bench_dir.mkdir(parents=True, exist_ok=True)
    results_path = args.bench_dir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"scales": {}}
    chart = args.chart or args.out.with_name(f"{args.out.stem}_time_vs_scale.svg")
    if not args.report_only:
        scales = _parse_ints(args.scales)
        repeats = _parse_ints(args.repeats)
        if len(repeats) == 1:
            repeats = repeats * len(scales)
        if len(repeats) != len(scales):
            raise SystemExit("--repeats needs one number, or one per scale")
        if args.fresh:
            results["scales"] = {}
        started = datetime.now(UTC)
        results.update(
            machine=machine_info(),
            versions=versions(),
            revision=git_revision(),
            command=" ".join(["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])]),
            started=started.isoformat(timespec="seconds"),
        )
        if args.tree is not None:
            args.tree = args.tree.resolve()
            log(f"pipeline code: the given snapshot {args.tree}")
        elif not args.live_tree:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            args.tree = pipeline.snapshot_tree(args.bench_dir / "trees" / f"tree-{stamp}-{os.getpid()}")
            log(f"pipeline code: snapshot of the working tree in {args.tree}")
        results["tree"] = str(args.tree or "working tree")
        pandas_state: dict = {}
        for customers, count in sorted(zip(scales, repeats, strict=True)):
            wall = time.perf_counter()
            entry = run_scale(args, customers, count, pandas_state)
            entry["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            entry["load_average_after"] = list(os.getloadavg())
            entry["harness_seconds"] = time.perf_counter() - wall
            entry["command"] = results["command"]
            results["scales"][str(customers)] = entry
            _save(results_path, results, str(customers))
        results["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        _save(results_path, results, None)
    for other in args.merge:
        merged = json.loads(other.read_text())
        for key in ("machine", "versions", "revision", "command", "started", "finished", "tree"):
            if key in merged:
                results.setdefault(key, merged[key])
        for scale, entry in merged.get("scales", {}).items():
            entry.setdefault("command", merged.get("command"))
            if scale in results["scales"]:  # more repeats of a scale measured by another invocation
                known = results["scales"][scale]["repeats"]
                seen = {(r.get("full") or {}).get("run_id") for r in known}
                known += [r for r in entry["repeats"] if (r.get("full") or {}).get("run_id") not in seen]
            else:
                results["scales"][scale] = entry
    if args.merge:  # keep the combined figures, so a plain --report-only renders them again
        _save(results_path, results, None)
    findings = Path(__file__).with_name("findings.md")
    text, svg = report.render(results, chart_name=chart.name, findings=findings)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    chart.parent.mkdir(parents=True, exist_ok=True)
    chart.write_text(svg)
    log(f"wrote {args.out} and {chart} (results in {results_path})")
    failed = [
        scale
        for scale, entry in results["scales"].items()
        for repeat in entry["repeats"]
        if not repeat.get("full", {}).get("ok")
    ]
    return 1 if failed and not args.report_only else 0


if __name__ == "__main__":
    sys.exit(main())
