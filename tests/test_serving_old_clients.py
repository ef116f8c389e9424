"""BI tools bundle older DuckDB releases: the serving copy must open in DuckDB 1.4 and 1.5.

Each old release gets its own virtualenv, built once with pip and kept in pytest's cache folder
(``.pytest_cache/d/cx360-old-duckdb/<series>``), and reads the published file in a subprocess.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.serving import ServedRelation, publish_from_warehouse
from cx_pipeline.serving_client import SERVING_READONLY_CONFIG
from cx_pipeline.warehouse import connect as connect_warehouse

# DuckDB 1.5 is the newest series before 2.0; 1.4 is the oldest that reads SERVING_STORAGE_VERSION.
OLD_DUCKDB_SERIES = ("1.4", "1.5")
RELATIONS = (
    ServedRelation("bi", "dim_customers"),
    ServedRelation("bi", "fct_touchpoints"),
    ServedRelation("marts", "fct_cx_metrics_monthly"),
)
# pip's words when it cannot reach the package index at all (as opposed to a real install failure).
_OFFLINE_MARKERS = (
    "NewConnectionError",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "Read timed out",
    "ProxyError",
)

# Runs inside the old interpreter: open like a locked-down BI tool, query, answer in JSON.
_OLD_CLIENT_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import duckdb

    served, unreadable = sys.argv[1], sys.argv[2]
    config = json.loads(sys.argv[3])
    answer = {"version": duckdb.__version__}
    connection = duckdb.connect(served, read_only=True, config=config)
    answer["tables"] = connection.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1"
    ).fetchall()
    answer["profiles"] = connection.execute(
        "SELECT count(*), count(DISTINCT customer_key), sum(orders) FROM bi.dim_customers"
    ).fetchone()
    answer["touchpoints_by_channel"] = connection.execute(
        "SELECT channel, count(*) FROM bi.fct_touchpoints GROUP BY 1 ORDER BY 1"
    ).fetchall()
    answer["monthly"] = connection.execute(
        "SELECT strftime(month, '%Y-%m'), nps::DOUBLE FROM marts.fct_cx_metrics_monthly ORDER BY 1"
    ).fetchall()
    answer["published"] = connection.execute(
        "SELECT relation, row_count, published_at::VARCHAR, cx360_version, storage_version "
        "FROM _published ORDER BY relation"
    ).fetchall()
    connection.close()
    try:
        duckdb.connect(unreadable, read_only=True).close()
        answer["reads_duckdb_2_default_format"] = True
    except Exception as error:
        answer["reads_duckdb_2_default_format"] = False
        answer["default_format_error"] = str(error)
    print(json.dumps(answer))
    """
)


def old_duckdb_python(cache_dir: Path, series: str) -> Path:
    """A Python with duckdb==<series>.* installed, built once per cache folder; skips if PyPI is offline."""
    venv = cache_dir / series
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    cache_dir.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers may ask for the same venv at once: one builds, the others wait.
    with open(cache_dir / f".{series}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            install = subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--retries=1",
                    "--timeout=30",
                    f"duckdb=={series}.*",
                ],
                capture_output=True,
                text=True,
            )
            if install.returncode != 0:
                output = install.stdout + install.stderr
                if any(marker in output for marker in _OFFLINE_MARKERS):
                    pytest.skip(f"pip cannot reach the package index to install duckdb=={series}.*")
                raise AssertionError(f"pip install duckdb=={series}.* failed:\n{output}")
            ready.touch()
    return python


def venv_cache_dir(pytestconfig: pytest.Config) -> Path:
    """pytest's cache folder, or a fixed temp folder when the cache plugin is off (-p no:cacheprovider)."""
    cache = getattr(pytestconfig, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("cx360-old-duckdb"))
    return Path(tempfile.gettempdir()) / "cx360-old-duckdb"


def build_stand_in_warehouse(warehouse: Path) -> None:
    with connect_warehouse(warehouse) as connection:
        connection.execute(
            """
            CREATE SCHEMA bi;
            CREATE SCHEMA marts;
            CREATE TABLE bi.dim_customers AS
                SELECT md5('key' || range) AS customer_key, (range % 7)::INTEGER AS orders,
                       TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_days(range::INTEGER) AS first_seen_at,
                       (range * 1.25)::DECIMAL(12, 2) AS revenue
                FROM range(1000);
            CREATE VIEW bi.fct_touchpoints AS
                SELECT customer_key, ['web', 'shop', 'support'][1 + orders % 3] AS channel
                FROM bi.dim_customers;
            CREATE TABLE marts.fct_cx_metrics_monthly AS
                SELECT DATE '2024-01-01' + to_months(range::INTEGER) AS month, 10.0 * range AS nps
                FROM range(3);
            """
        )


@pytest.mark.parametrize("series", OLD_DUCKDB_SERIES)
def test_old_duckdb_clients_read_the_serving_copy(
    series: str, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    python = old_duckdb_python(venv_cache_dir(pytestconfig), series)
    warehouse = tmp_path / "warehouse.duckdb"
    build_stand_in_warehouse(warehouse)
    result = publish_from_warehouse(warehouse, tmp_path / "serving", relations=RELATIONS)

    lock_down = json.dumps(SERVING_READONLY_CONFIG)
    client = subprocess.run(
        [str(python), "-c", _OLD_CLIENT_SCRIPT, str(result.path), str(warehouse), lock_down],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert client.returncode == 0, f"DuckDB {series} could not read the serving copy:\n{client.stderr}"
    answer = json.loads(client.stdout)

    assert answer["version"].startswith(series + ".")
    assert answer["tables"] == [
        ["bi.dim_customers"],
        ["bi.fct_touchpoints"],
        ["main._published"],
        ["marts.fct_cx_metrics_monthly"],
    ]
    assert answer["profiles"] == [1000, 1000, sum(i % 7 for i in range(1000))]
    channels = Counter(("web", "shop", "support")[(i % 7) % 3] for i in range(1000))
    assert answer["touchpoints_by_channel"] == sorted([channel, n] for channel, n in channels.items())
    assert answer["monthly"] == [["2024-01", 0.0], ["2024-02", 10.0], ["2024-03", 20.0]]
    assert [row[:2] for row in answer["published"]] == [
        ["bi.dim_customers", 1000],
        ["bi.fct_touchpoints", 1000],
        ["marts.fct_cx_metrics_monthly", 3],
    ]
    assert {row[4] for row in answer["published"]} == {"v1.4.0"}
    # The warehouse itself is in DuckDB 2.0's format: this is why the serving copy pins a storage version.
    assert answer["reads_duckdb_2_default_format"] is False, answer


def test_serving_copy_is_written_in_the_pinned_storage_version(tmp_path: Path) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    build_stand_in_warehouse(warehouse)
    result = publish_from_warehouse(warehouse, tmp_path / "serving", relations=RELATIONS)
    with duckdb.connect(str(result.path), read_only=True) as connection:
        (tags,) = connection.execute(
            "SELECT tags FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchone()
    assert tags["storage_version"].startswith("v1.4.0")
