"""Publishing the BI serving copy: what is served, the atomic swap, crashes, full disks, the asset."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster_duckdb import DuckDBResource

from cx_pipeline import publish, serving
from cx_pipeline.operations import DiskFullError
from cx_pipeline.serving import (
    PUBLISHED_TABLE,
    SERVED_RELATIONS,
    DirectIdentifierError,
    PublishBusyError,
    ServedRelation,
    find_identifier_columns,
    publish_from_warehouse,
)
from cx_pipeline.serving_client import ServingCopyMissingError, open_serving_readonly, serving_file
from cx_pipeline.settings import PROJECT_ROOT
from cx_pipeline.sql import Sql, compose, qualified_name, quote_identifier
from cx_pipeline.warehouse import connect as connect_warehouse

DIM_CUSTOMERS = [ServedRelation("bi", "dim_customers")]


def execute(warehouse: Path, sql: str) -> None:
    with connect_warehouse(warehouse) as connection:
        connection.execute(sql)


def profiles_table(rows: int) -> Sql:
    """SQL for a stand-in bi.dim_customers of ``rows`` pseudonymised profiles."""
    return compose(
        "CREATE SCHEMA IF NOT EXISTS bi; CREATE OR REPLACE TABLE bi.dim_customers AS "
        "SELECT md5(range::VARCHAR) AS customer_key, "
        "['discovery', 'loyalty'][1 + range % 2] AS journey_stage FROM range({rows})",
        rows=int(rows),
    )


def served_count(path: Path, relation: str = "bi.dim_customers") -> int:
    with open_serving_readonly(path) as connection:
        return connection.execute(
            compose("SELECT count(*) FROM {relation}", relation=qualified_name(*relation.split(".")))
        ).fetchone()[0]


def leftovers(serving_dir: Path) -> list[str]:
    return sorted(p.name for p in serving_dir.glob(".cx360_bi.duckdb.publishing-*"))


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """Stand-ins for the models while they land: bi (pseudonymised), aggregate marts, and a profile
    table with direct identifiers that must never be served."""
    path = tmp_path / "warehouse.duckdb"
    execute(
        path,
        compose(
            """{profiles};
        CREATE VIEW bi.fct_touchpoints AS
            SELECT customer_key, 'web' AS channel FROM bi.dim_customers WHERE journey_stage = 'loyalty';
        CREATE TABLE bi.scratch_not_listed AS SELECT 1 AS one;
        CREATE SCHEMA marts;
        CREATE TABLE marts.fct_cx_metrics_monthly AS SELECT DATE '2024-01-01' AS month, 31.5 AS nps;
        CREATE TABLE marts.dim_customers AS
            SELECT 'C' || range AS customer_id, 'p' || range || '@example.com' AS email FROM range(100);
        """,
            profiles=profiles_table(100),
        ),
    )
    return path


def test_publish_serves_the_allowlist_and_reports_what_is_missing(warehouse: Path, tmp_path: Path) -> None:
    result = publish_from_warehouse(warehouse, tmp_path / "serving")

    assert result.path == serving_file(tmp_path / "serving")
    assert result.row_counts == {
        "bi.dim_customers": 100,
        "bi.fct_touchpoints": 50,
        "marts.fct_cx_metrics_monthly": 1,
    }
    assert set(result.skipped) == {r.qualified_name for r in SERVED_RELATIONS} - set(result.row_counts)
    assert result.unlisted_bi_relations == ("bi.scratch_not_listed",)
    assert result.size_bytes == result.path.stat().st_size > 0
    with open_serving_readonly(result.path) as connection:
        tables = connection.execute(
            "SELECT table_schema || '.' || table_name, table_type FROM information_schema.tables ORDER BY 1"
        ).fetchall()
        published = connection.execute(
            compose(
                "SELECT relation, row_count, source_warehouse, cx360_version, published_at "
                "FROM {published} ORDER BY relation",
                published=quote_identifier(PUBLISHED_TABLE),
            )
        ).fetchall()
    # Views are materialized (the serving file has no warehouse to point into); marts.dim_customers,
    # which has emails, and unlisted relations are not there.
    assert tables == [
        ("bi.dim_customers", "BASE TABLE"),
        ("bi.fct_touchpoints", "BASE TABLE"),
        (f"main.{PUBLISHED_TABLE}", "BASE TABLE"),
        ("marts.fct_cx_metrics_monthly", "BASE TABLE"),
    ]
    assert [(relation, rows) for relation, rows, *_ in published] == list(result.row_counts.items())
    assert {row[2] for row in published} == {warehouse.name}  # no machine path for BI users to read
    assert {row[3] for row in published} == {serving.cx360_version()} and serving.cx360_version() != "unknown"
    assert {row[4] for row in published} == {result.published_at}


def test_each_publish_is_a_new_file_and_open_readers_keep_their_snapshot(
    warehouse: Path, tmp_path: Path
) -> None:
    serving_dir = tmp_path / "serving"
    first = publish_from_warehouse(warehouse, serving_dir, relations=DIM_CUSTOMERS)
    first_inode = first.path.stat().st_ino
    reader = open_serving_readonly(first.path)

    execute(warehouse, profiles_table(250))
    second = publish_from_warehouse(warehouse, serving_dir, relations=DIM_CUSTOMERS)

    assert second.path.stat().st_ino != first_inode  # replaced by rename, never rewritten in place
    assert reader.execute("SELECT count(*) FROM bi.dim_customers").fetchone() == (100,)
    reader.close()  # DuckDB shares one instance per path in a process: close before reconnecting
    assert served_count(second.path) == 250
    assert leftovers(serving_dir) == []


def test_serving_connections_are_read_only_and_locked_down(warehouse: Path, tmp_path: Path) -> None:
    result = publish_from_warehouse(warehouse, tmp_path / "serving", relations=DIM_CUSTOMERS)
    with open_serving_readonly(result.path) as connection:
        assert connection.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
        with pytest.raises(duckdb.Error, match="read-only"):
            connection.execute("DELETE FROM bi.dim_customers")
        with pytest.raises(duckdb.Error, match="disabled"):
            connection.execute("SELECT * FROM read_csv(?)", [str(warehouse)])
        with pytest.raises(duckdb.Error, match="locked"):
            connection.execute("SET enable_external_access = true")


def test_opening_a_serving_copy_that_was_never_published_says_how_to_publish(tmp_path: Path) -> None:
    with pytest.raises(ServingCopyMissingError, match=r"materialize the asset serving/cx360_bi"):
        open_serving_readonly(tmp_path / "serving" / "cx360_bi.duckdb")


@pytest.mark.parametrize(
    "column",
    ["email", "requester_email", "email_normalized", "email_address", "Email", "phone", "requester_phone",
     "phone_e164", "mobile_number", "first_name",
     "lastName", "full_name", "name", "street_address", "postal_code", "contact_id", "user_id",
     "anonymousId", "web_user_id", "date_of_birth", "ip_address"],
)  # fmt: skip
def test_direct_identifier_column_names_are_flagged(column: str) -> None:
    assert find_identifier_columns([column]) == [column]


@pytest.mark.parametrize(
    "column",
    ["customer_key", "email_hash", "phone_hmac", "email_domain", "has_email", "has_phone", "emails_sent",
     "product_name", "journey_stage", "customer_id", "nps", "user_count", "phone_share", "channel",
     "consent_email_marketing", "email_touchpoint_count", "phone_tickets", "crm_contact_id_count",
     "first_touch_campaign_name", "sessions_mobile"],
)  # fmt: skip
def test_pseudonymised_and_aggregate_column_names_pass(column: str) -> None:
    assert find_identifier_columns([column]) == []


def test_publish_fails_loudly_on_an_identifier_column_and_keeps_the_old_copy(
    warehouse: Path, tmp_path: Path
) -> None:
    serving_dir = tmp_path / "serving"
    publish_from_warehouse(warehouse, serving_dir, relations=DIM_CUSTOMERS)
    execute(warehouse, "ALTER TABLE bi.dim_customers ADD COLUMN requester_phone VARCHAR")

    with pytest.raises(DirectIdentifierError, match=r"bi\.dim_customers\.requester_phone"):
        publish_from_warehouse(warehouse, serving_dir, relations=DIM_CUSTOMERS)
    assert served_count(serving_file(serving_dir)) == 100
    assert leftovers(serving_dir) == []


def test_publish_fails_loudly_on_email_addresses_under_an_innocent_name(
    warehouse: Path, tmp_path: Path
) -> None:
    serving_dir = tmp_path / "serving"
    execute(
        warehouse,
        "CREATE TABLE bi.fct_touchpoints_notes AS SELECT 'write to jo.doe@example.org please' AS note",
    )
    relations = [ServedRelation("bi", "fct_touchpoints_notes")]
    with pytest.raises(DirectIdentifierError, match=r"bi\.fct_touchpoints_notes\.note \(1 values\)"):
        publish_from_warehouse(warehouse, serving_dir, relations=relations)
    assert not serving_file(serving_dir).exists()
    assert leftovers(serving_dir) == []


def test_publish_removes_temp_files_left_by_killed_runs(warehouse: Path, tmp_path: Path) -> None:
    serving_dir = tmp_path / "serving"
    serving_dir.mkdir()
    stale = [
        serving_dir / ".cx360_bi.duckdb.publishing-999-abc",
        serving_dir / ".cx360_bi.duckdb.publishing-999-abc.wal",
    ]
    for path in stale:
        path.write_bytes(b"half a file")

    result = publish_from_warehouse(warehouse, serving_dir, relations=DIM_CUSTOMERS)

    assert sorted(result.removed_temp_files) == sorted(stale)
    assert leftovers(serving_dir) == []


def test_a_second_publisher_waits_for_the_first_and_then_gives_up_clearly(
    warehouse: Path, tmp_path: Path
) -> None:
    serving_dir = tmp_path / "serving"
    serving_dir.mkdir()
    with (
        serving._publish_lock(serving_dir, 1.0),
        connect_warehouse(warehouse, read_only=True) as source,
        pytest.raises(PublishBusyError, match=f"PID {os.getpid()}"),
    ):
        serving.publish_serving_copy(
            source, serving_dir, source_label="w", relations=DIM_CUSTOMERS, lock_timeout_seconds=0.2
        )


# A publisher in its own process, so the test can SIGKILL it in the middle of writing.
_PUBLISHER = """
import sys
from cx_pipeline.serving import ServedRelation, publish_from_warehouse
publish_from_warehouse(sys.argv[1], sys.argv[2], relations=[ServedRelation("bi", "dim_customers")])
"""


def test_a_publish_killed_mid_write_leaves_the_published_copy_intact(warehouse: Path, tmp_path: Path) -> None:
    serving_dir = tmp_path / "serving"
    publish_from_warehouse(warehouse, serving_dir, relations=DIM_CUSTOMERS)
    # A view big enough that writing its copy takes seconds: the kill lands while the temp file grows.
    execute(
        warehouse,
        "DROP VIEW bi.fct_touchpoints; DROP TABLE bi.dim_customers; CREATE VIEW bi.dim_customers AS "
        "SELECT md5(range::VARCHAR) AS customer_key, 'loyalty' AS journey_stage FROM range(50000000)",
    )
    publisher = subprocess.Popen(
        [sys.executable, "-c", _PUBLISHER, str(warehouse), str(serving_dir)],
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    try:
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 2**20 for p in serving_dir.glob(".cx360_bi.duckdb.publishing-*")):
            assert publisher.poll() is None, "the publisher ended before it could be killed"
            assert time.monotonic() < deadline, "the publisher never started writing"
            time.sleep(0.01)
        publisher.send_signal(signal.SIGKILL)
    finally:
        publisher.kill()
        publisher.wait(timeout=30)
    assert publisher.returncode == -signal.SIGKILL

    assert leftovers(serving_dir), "the killed publisher should have left its temp file behind"
    assert served_count(serving_file(serving_dir)) == 100  # the last good copy, intact and readable

    execute(warehouse, "DROP VIEW bi.dim_customers; " + profiles_table(300))
    result = publish_from_warehouse(warehouse, serving_dir, relations=DIM_CUSTOMERS)
    assert result.removed_temp_files
    assert leftovers(serving_dir) == []
    assert served_count(result.path) == 300


@pytest.fixture
def tiny_file_system(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, so a real write really fails with ENOSPC (needs root; skipped elsewhere)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command; test_disk_full_is_reported_when_the_flush_fails covers this")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the injected ENOSPC test covers this"
        )
    try:
        yield mount_point
    finally:
        # Lazy: a connection a failed test left open must not turn the failure into a teardown error.
        subprocess.run(["umount", "--lazy", str(mount_point)], check=True)


def test_disk_full_while_publishing_keeps_the_old_copy_and_names_the_path(
    warehouse: Path, tiny_file_system: Path
) -> None:
    serving_dir = tiny_file_system / "serving"
    publish_from_warehouse(warehouse, serving_dir, relations=DIM_CUSTOMERS)
    execute(warehouse, profiles_table(400_000))  # about 8 MiB in the serving file: does not fit

    with pytest.raises(DiskFullError) as raised:
        publish_from_warehouse(warehouse, serving_dir, relations=DIM_CUSTOMERS)

    message = str(raised.value)
    assert message.startswith("Disk full while publishing")
    assert str(serving_dir) in message and "unchanged" in message
    assert raised.value.path == serving_dir
    assert served_count(serving_file(serving_dir)) == 100
    assert leftovers(serving_dir) == []


def test_disk_full_is_reported_when_the_flush_fails(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serving_dir = tmp_path / "serving"
    publish_from_warehouse(warehouse, serving_dir, relations=DIM_CUSTOMERS)
    execute(warehouse, profiles_table(200))

    def full_disk(path: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(publish, "fsync_path", full_disk)
    with pytest.raises(DiskFullError, match=f"Disk full while publishing.*{serving_dir}"):
        publish_from_warehouse(warehouse, serving_dir, relations=DIM_CUSTOMERS)
    monkeypatch.undo()

    assert served_count(serving_file(serving_dir)) == 100
    assert leftovers(serving_dir) == []


def test_serving_asset_publishes_from_the_warehouse_resource(
    warehouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cx_pipeline.defs.serving import cx360_bi_asset

    cx360_bi = cx360_bi_asset()
    monkeypatch.setenv("CX360_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("CX360_SERVING_DIR", str(tmp_path / "served"))
    result = dg.materialize([cx360_bi], resources={"duckdb": DuckDBResource(database=str(warehouse))})

    assert result.success
    (materialization,) = result.asset_materializations_for_node("serving__cx360_bi")
    metadata = materialization.metadata
    assert metadata["path"].value == str(tmp_path / "served" / "cx360_bi.duckdb")
    assert metadata["size_bytes"].value == (tmp_path / "served" / "cx360_bi.duckdb").stat().st_size
    assert metadata["row_counts"].value == {
        "bi.dim_customers": 100,
        "bi.fct_touchpoints": 50,
        "marts.fct_cx_metrics_monthly": 1,
    }
    assert next(record.data for record in metadata["tables"].value.records) == {
        "relation": "bi.dim_customers",
        "rows": 100,
    }
    assert metadata["publish_seconds"].value > 0
    assert "marts.fct_retention_cohorts" in metadata["skipped_missing_relations"].value
    assert metadata["warning"].value.startswith("Not in the warehouse yet")
    assert metadata["unlisted_bi_relations"].value == ["bi.scratch_not_listed"]


def test_serving_asset_depends_on_the_models_it_serves() -> None:
    from cx_pipeline.defs.dbt.project import dbt_manifest_nodes
    from cx_pipeline.defs.serving import cx360_bi_asset, served_asset_keys

    cx360_bi = cx360_bi_asset()
    spec = next(iter(cx360_bi.specs))
    assert spec.key == dg.AssetKey(["serving", "cx360_bi"])
    assert spec.group_name == "serving"
    expected = served_asset_keys(SERVED_RELATIONS, dbt_manifest_nodes())
    assert {dep.asset_key for dep in spec.deps} == set(expected)
    assert len(expected) == len(SERVED_RELATIONS)
    assert cx360_bi.op.pool == "duckdb_warehouse"


def test_served_relations_map_to_the_models_that_write_them_even_when_aliased() -> None:
    from cx_pipeline.defs.serving import served_asset_keys

    manifest_nodes = {
        "model.cx360.bi_dim_customers": {
            "resource_type": "model",
            "schema": "bi",
            "name": "bi_dim_customers",
            "alias": "dim_customers",
        },
        "model.cx360.fct_churn_monthly": {
            "resource_type": "model",
            "schema": "marts",
            "name": "fct_churn_monthly",
            "alias": "fct_churn_monthly",
        },
        "test.cx360.not_null_x": {"resource_type": "test", "schema": "bi", "name": "dim_customers"},
    }
    relations = [
        ServedRelation("bi", "dim_customers"),
        ServedRelation("marts", "fct_churn_monthly"),
        ServedRelation("marts", "not_built_yet"),
    ]
    assert served_asset_keys(relations, manifest_nodes) == [
        dg.AssetKey(["bi", "dim_customers"]),
        dg.AssetKey(["marts", "fct_churn_monthly"]),
        dg.AssetKey(["marts", "not_built_yet"]),
    ]


def test_the_documented_sqlalchemy_url_opens_the_copy_read_only_and_locked_down(
    warehouse: Path, tmp_path: Path
) -> None:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    result = publish_from_warehouse(warehouse, tmp_path / "serving", relations=DIM_CUSTOMERS)
    # The URL exactly as docs/serving.md gives it, with this test's absolute path.
    engine = sqlalchemy.create_engine(
        f"duckdb:///{result.path}"
        "?access_mode=read_only&enable_external_access=false"
        "&autoinstall_known_extensions=false&autoload_known_extensions=false&lock_configuration=true",
        poolclass=NullPool,
    )
    with engine.connect() as connection:
        settings = connection.execute(
            sqlalchemy.text(
                "SELECT current_setting('access_mode'), current_setting('enable_external_access'), "
                "current_setting('lock_configuration'), (SELECT count(*) FROM bi.dim_customers)"
            )
        ).one()
    engine.dispose()
    assert tuple(settings) == ("read_only", False, True, 100)


def test_comments_reach_the_serving_copy_so_bi_tools_show_them(tmp_path: Path) -> None:
    """Issue #22.4: 0 of 185 served columns carried a comment although dbt describes every one."""
    warehouse = tmp_path / "warehouse.duckdb"
    with connect_warehouse(warehouse) as connection:
        connection.execute(
            "CREATE SCHEMA bi;"
            "CREATE TABLE bi.dim_customers AS SELECT 'k1' AS customer_key, 'x' AS journey_stage;"
            "COMMENT ON TABLE bi.dim_customers IS 'One row per customer (it''s pseudonymised)';"
            "COMMENT ON COLUMN bi.dim_customers.customer_key IS 'Keyed hash of customer_id';"
        )
    result = publish_from_warehouse(
        warehouse, tmp_path / "serving", relations=[ServedRelation("bi", "dim_customers")]
    )
    with open_serving_readonly(result.path) as copy:
        table = copy.execute(
            "SELECT comment FROM duckdb_tables() WHERE schema_name = 'bi' AND table_name = 'dim_customers'"
        ).fetchall()
        columns = dict(
            copy.execute(
                "SELECT column_name, comment FROM duckdb_columns() "
                "WHERE schema_name = 'bi' AND table_name = 'dim_customers'"
            ).fetchall()
        )
    assert table == [("One row per customer (it's pseudonymised)",)]
    assert columns == {"customer_key": "Keyed hash of customer_id", "journey_stage": None}
