"""BI readers keep querying the serving copy while the pipeline republishes it, and never notice.

Three reader processes (plain DuckDB opening a connection per query, plain DuckDB holding a connection
across publishes, SQLAlchemy + duckdb_engine with a connection per query) query the serving copy in a loop
while a writer process changes the warehouse and publishes it again, several times. Every answer must come
from one complete snapshot, and no reader may ever see a missing file, a lock error or a torn file.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
import traceback
from collections.abc import Callable
from multiprocessing.sharedctypes import SynchronizedArray
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from cx_pipeline.serving import ServedRelation, publish_from_warehouse
from cx_pipeline.serving_client import SERVING_READONLY_CONFIG, open_serving_readonly, serving_file
from cx_pipeline.warehouse import connect as connect_warehouse

RELATIONS = (ServedRelation("bi", "dim_customers"), ServedRelation("marts", "fct_stage_counts"))
STAGES = ("discovery", "consideration", "decision", "loyalty", "lapsed")
FIRST_GENERATION = 1
LAST_GENERATION = 5  # generations 2..5: four publishes while the readers run
# A safety net, not a sleep: the test ends as soon as every reader has seen every publish (about 5 s on an
# idle 2-core machine, 20 s when it is shared with four other busy processes).
DEADLINE_SECONDS = 30.0
READER_KINDS = ("duckdb_connection_per_query", "duckdb_held_connection", "sqlalchemy_connection_per_query")
# The holding reader reconnects after this many queries, so it too meets every generation.
QUERIES_PER_HELD_CONNECTION = 20

PROFILE_COUNT_SQL = "SELECT count(*), min(generation), max(generation) FROM bi.dim_customers"
STAGE_SUM_SQL = "SELECT sum(customers), min(generation), max(generation) FROM marts.fct_stage_counts"
PUBLISHED_SQL = "SELECT row_count FROM main._published WHERE relation = 'bi.dim_customers'"


def customers_in(generation: int) -> int:
    return 400 + 173 * generation


def build_generation(warehouse: Path, generation: int) -> None:
    """Stand-ins for bi.dim_customers and an aggregate of it; the row counts differ per generation."""
    with connect_warehouse(warehouse) as connection:
        connection.execute("CREATE SCHEMA IF NOT EXISTS bi; CREATE SCHEMA IF NOT EXISTS marts")
        connection.execute(
            "CREATE OR REPLACE TABLE bi.dim_customers AS SELECT md5(range::VARCHAR) AS customer_key, "
            "?::INTEGER AS generation, (?::VARCHAR[])[1 + range % 5] AS journey_stage FROM range(?)",
            [generation, list(STAGES), customers_in(generation)],
        )
        connection.execute(
            "CREATE OR REPLACE TABLE marts.fct_stage_counts AS SELECT journey_stage, "
            "any_value(generation) AS generation, count(*) AS customers FROM bi.dim_customers GROUP BY 1"
        )


def snapshot_problems(profiles: tuple, stages: tuple, published: tuple) -> list[str]:
    """What is inconsistent between three answers read through one connection (empty if nothing)."""
    (profile_count, profile_gen_min, profile_gen_max) = profiles
    (stage_sum, stage_gen_min, stage_gen_max) = stages
    generations = {profile_gen_min, profile_gen_max, stage_gen_min, stage_gen_max}
    problems = []
    if len(generations) != 1:
        problems.append(f"mixed generations {sorted(generations)}")
    elif profile_count != customers_in(profile_gen_min):
        problems.append(f"{profile_count} profiles in generation {profile_gen_min}")
    if profile_count != stage_sum:
        problems.append(f"{profile_count} profiles but stage counts sum to {stage_sum}")
    if published[0] != profile_count:
        problems.append(f"_published says {published[0]} profiles, the table has {profile_count}")
    return problems


def _duckdb_answers(connection: Any) -> tuple[tuple, tuple, tuple]:
    return (
        connection.execute(PROFILE_COUNT_SQL).fetchone(),
        connection.execute(STAGE_SUM_SQL).fetchone(),
        connection.execute(PUBLISHED_SQL).fetchone(),
    )


def _reader(
    kind: str, path: str, index: int, seen: SynchronizedArray, stop: Event, results: multiprocessing.Queue
) -> None:
    """Query in a loop until told to stop; report counts, errors and inconsistencies at the end."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(
        f"duckdb:///{path}",
        # No pool: each checkout is a fresh DuckDB connection, so it opens the newest published file.
        poolclass=NullPool,
        connect_args={"read_only": True, "config": dict(SERVING_READONLY_CONFIG)},
    )

    def sqlalchemy_answers() -> tuple[tuple, tuple, tuple]:
        with engine.connect() as connection:
            return tuple(
                tuple(connection.execute(sqlalchemy.text(sql)).one())
                for sql in (PROFILE_COUNT_SQL, STAGE_SUM_SQL, PUBLISHED_SQL)
            )  # type: ignore[return-value]

    stats: dict[str, Any] = {"kind": kind, "queries": 0, "generations": [], "errors": [], "problems": []}
    held, held_generation, held_queries = None, None, 0
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            if kind == "duckdb_connection_per_query":
                with open_serving_readonly(path) as connection:
                    answers = _duckdb_answers(connection)
            elif kind == "sqlalchemy_connection_per_query":
                answers = sqlalchemy_answers()
            else:
                if held is None:
                    held, held_generation, held_queries = open_serving_readonly(path), None, 0
                answers = _duckdb_answers(held)
                held_queries += 1
        except Exception:
            stats["errors"].append(traceback.format_exc(limit=3))
            continue
        stats["queries"] += 1
        stats["problems"] += snapshot_problems(*answers)
        generation = answers[0][1]
        if generation not in stats["generations"]:
            stats["generations"].append(generation)
        if held is not None:
            # A held connection keeps its file even after it is replaced: its snapshot never changes.
            if held_generation not in (None, generation):
                stats["problems"].append(f"held connection moved from {held_generation} to {generation}")
            held_generation = generation
            if held_queries >= QUERIES_PER_HELD_CONNECTION:
                held.close()
                held = None
        with seen.get_lock():
            seen[index] = max(seen[index], generation)
    if held is not None:
        held.close()
    results.put(stats)


def _writer(
    warehouse: str, serving_dir: str, seen: SynchronizedArray, stop: Event, results: multiprocessing.Queue
) -> None:
    """Publish generation after generation, each once every reader has read the one before."""
    outcome: dict[str, Any] = {"kind": "writer", "publishes": 0, "errors": []}
    try:
        for generation in range(FIRST_GENERATION + 1, LAST_GENERATION + 1):
            _wait_until(lambda g=generation: min(seen) >= g - 1, what=f"readers to see {generation - 1}")
            build_generation(Path(warehouse), generation)
            publish_from_warehouse(warehouse, serving_dir, relations=RELATIONS)
            outcome["publishes"] += 1
        _wait_until(lambda: min(seen) >= LAST_GENERATION, what=f"readers to see {LAST_GENERATION}")
    except Exception:
        outcome["errors"].append(traceback.format_exc())
    finally:
        stop.set()
        results.put(outcome)


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.005)


def test_readers_never_see_a_missing_locked_or_torn_copy_while_it_is_republished(tmp_path: Path) -> None:
    warehouse, serving_dir = tmp_path / "warehouse.duckdb", tmp_path / "serving"
    build_generation(warehouse, FIRST_GENERATION)
    publish_from_warehouse(warehouse, serving_dir, relations=RELATIONS)
    path = str(serving_file(serving_dir))

    # spawn, not fork: a forked child would inherit this process's DuckDB state and threads.
    context = multiprocessing.get_context("spawn")
    seen = context.Array("i", [0] * len(READER_KINDS))
    stop = context.Event()
    results = context.Queue()
    readers = [
        context.Process(target=_reader, args=(kind, path, index, seen, stop, results), name=kind)
        for index, kind in enumerate(READER_KINDS)
    ]
    writer = context.Process(target=_writer, args=(str(warehouse), str(serving_dir), seen, stop, results))
    started = time.monotonic()
    for process in [*readers, writer]:
        process.start()
    try:
        reports = [results.get(timeout=DEADLINE_SECONDS + 30) for _ in range(len(readers) + 1)]
    except queue.Empty:
        pytest.fail("a reader or the writer did not report back in time")
    finally:
        stop.set()
        for process in [*readers, writer]:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    elapsed = time.monotonic() - started

    by_kind = {report["kind"]: report for report in reports}
    assert by_kind["writer"]["errors"] == []
    assert by_kind["writer"]["publishes"] == LAST_GENERATION - FIRST_GENERATION
    every_generation = list(range(FIRST_GENERATION, LAST_GENERATION + 1))
    for kind in READER_KINDS:
        report = by_kind[kind]
        assert report["errors"] == [], f"{kind} failed:\n" + "\n".join(report["errors"][:3])
        assert report["problems"] == [], f"{kind} saw inconsistent snapshots: {report['problems'][:5]}"
        assert sorted(report["generations"]) == every_generation, f"{kind} missed a publish"
        assert report["queries"] >= len(every_generation)
    assert elapsed < DEADLINE_SECONDS + 10
    # Nothing half-written is left behind next to the published file.
    assert sorted(p.name for p in serving_dir.iterdir() if not p.name.endswith("publish-lock")) == [
        "cx360_bi.duckdb"
    ]
