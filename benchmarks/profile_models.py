"""Profile the slowest dbt models of a benchmark run with DuckDB's profiler (``EXPLAIN ANALYZE``).

    python -m benchmarks.profile_models --run data/bench/runs/100000-s42/r1 --top 6
    python -m benchmarks.profile_models --run ... --models int_identifiers_resolved,dim_customers

Needs a run kept with ``--keep-runs`` (its warehouse and key file). Takes each model's compiled SQL from the
run's ``full-run_results.json``, runs it against a *copy* of the warehouse with the profile's settings (2
threads, ``preserve_insertion_order = false``, UTC) and DuckDB's JSON profiler, and prints the total time and
the operators that took the most time, with their cardinalities. ``--set name=value`` tries a setting (e.g.
``--set threads=1`` or ``--set memory_limit=4GB``) to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from cx_pipeline.sql import compose, plain_identifier, quote_literal

DEFAULT_SETTINGS = {"threads": "2", "preserve_insertion_order": "false", "TimeZone": "UTC"}


def _operators(node: dict, depth: int = 0) -> list[tuple[float, int, str, int]]:
    """(seconds, rows out, operator, depth) of every operator in a DuckDB JSON profile tree.

    DuckDB 2.0 writes ``{"operator": [tree], "query": {...}}`` with ``type``/``timing``/``intermediate_rows``
    per node; older versions wrote ``operator_name``/``operator_timing``/``operator_cardinality``.
    """
    if "operator" in node and isinstance(node["operator"], list):
        return [found for root in node["operator"] for found in _operators(root, 1)]
    found = []
    name = node.get("type") or node.get("operator_name") or node.get("operator_type") or "?"
    timing = node.get("timing", node.get("operator_timing", 0.0)) or 0.0
    rows = node.get("intermediate_rows", node.get("operator_cardinality", 0)) or 0
    extra = node.get("extra_info") or {}
    if isinstance(extra, dict):
        detail = next(
            (
                extra[k]
                for k in ("Table", "Join Type", "Function", "Aggregates", "Conditions")
                if extra.get(k)
            ),
            "",
        )
        if detail:
            name = f"{name} [{' '.join(str(detail).split())[:70]}]"
    if depth:
        found.append((float(timing), int(rows), name.strip(), depth))
    for child in node.get("children", []):
        found += _operators(child, depth + 1)
    return found


def profile_sql(connection, sql: str, profile_path: Path) -> tuple[float, dict]:
    connection.execute("pragma enable_profiling = 'json'")
    connection.execute(compose("pragma profiling_output = {path}", path=quote_literal(str(profile_path))))
    started = time.perf_counter()
    connection.execute(f"create or replace temp table _profiled as {sql}").fetchall()
    seconds = time.perf_counter() - started
    connection.execute("pragma disable_profiling")
    return seconds, json.loads(profile_path.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a run folder kept with --keep-runs")
    parser.add_argument("--models", help="comma-separated model names (default: the slowest --top)")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--operators", type=int, default=8, help="operators to show per model")
    parser.add_argument("--set", action="append", default=[], help="extra DuckDB setting name=value")
    args = parser.parse_args(argv)

    results = json.loads((args.run / "full-run_results.json").read_text())["results"]
    models = {
        r["unique_id"].split(".")[-1]: r
        for r in results
        if r["unique_id"].startswith("model.") and r.get("compiled_code")
    }
    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
    else:
        names = sorted(models, key=lambda n: -(models[n].get("execution_time") or 0))[: args.top]

    import duckdb

    from cx_pipeline.privacy.keys import register_udfs
    from cx_pipeline.settings import KEY_FILE

    os.environ[KEY_FILE.name] = str(args.run / "secrets" / "cx360.key")

    settings = dict(DEFAULT_SETTINGS)
    for item in args.set:
        key, _, value = item.partition("=")
        settings[key.strip()] = value.strip()
    with tempfile.TemporaryDirectory(prefix="cx360-profile-") as scratch:
        copy = Path(scratch) / "cx360.duckdb"  # same name, so the compiled "cx360"."schema"."table" resolve
        shutil.copy(args.run / "warehouse" / "cx360.duckdb", copy)
        connection = duckdb.connect(str(copy))
        for key, value in settings.items():
            connection.execute(
                compose("set {key} = {value}", key=plain_identifier(key), value=quote_literal(value))
            )
        register_udfs(connection)
        print(f"settings: {settings}")
        for name in names:
            result = models.get(name)
            if result is None:
                print(f"\n{name}: not in the run's results")
                continue
            profile_path = Path(scratch) / f"{name}.json"
            seconds, profile = profile_sql(connection, result["compiled_code"], profile_path)
            operators = sorted(_operators(profile), reverse=True)[: args.operators]
            rows = connection.execute("select count(*) from _profiled").fetchone()[0]
            print(
                f"\n{name}: {seconds:.2f} s here ({result.get('execution_time', 0):.2f} s in the run), "
                f"{rows:,} rows"
            )
            for timing, cardinality, operator, depth in operators:
                print(f"  {timing:8.3f} s  {cardinality:>12,} rows  {'  ' * (depth - 1)}{operator}")
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
