"""BI through SQLAlchemy (README, "Connecting BI tools"): the documented URL on a published serving copy
reflects the bi tables (what Superset's dataset set-up and pandas do), answers queries through pandas, and
keeps the lock-down: no write, no file access, no switching a setting back.

Reflection needs SQLAlchemy 2.0.x with duckdb-engine 0.17 and DuckDB 2.0: with SQLAlchemy 2.1 it fails with
``pg_catalog.pg_collation not found`` (pinned in pyproject's dev extras).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cx_pipeline.serving import ServedRelation, publish_from_warehouse
from cx_pipeline.sql import Sql, compose, quote_literal
from cx_pipeline.warehouse import connect as connect_warehouse

# The URL exactly as the README gives it; the test's absolute path goes between "duckdb:///" and "?".
LOCKED_DOWN_QUERY = (
    "?access_mode=read_only&enable_external_access=false"
    "&autoinstall_known_extensions=false&autoload_known_extensions=false&lock_configuration=true"
)


@pytest.fixture
def published(tmp_path: Path) -> Path:
    """A serving copy of a stand-in bi.dim_customers (pseudonymised keys, a stage, a TIMESTAMPTZ)."""
    warehouse = tmp_path / "warehouse.duckdb"
    with connect_warehouse(warehouse) as connection:
        connection.execute(
            "CREATE SCHEMA bi; CREATE TABLE bi.dim_customers AS "
            "SELECT md5(range::VARCHAR) AS customer_key, "
            "['discovery', 'loyalty'][1 + range % 2] AS journey_stage, "
            "TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_days(range::INTEGER) AS first_seen_at "
            "FROM range(10)"
        )
    result = publish_from_warehouse(
        warehouse, tmp_path / "serving", relations=[ServedRelation("bi", "dim_customers")]
    )
    return result.path


@pytest.fixture
def engine(published: Path) -> Iterator[object]:
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(f"duckdb:///{published}{LOCKED_DOWN_QUERY}", poolclass=NullPool)
    yield engine
    engine.dispose()


def test_reflection_lists_the_bi_tables_and_their_columns(engine) -> None:
    import sqlalchemy

    inspector = sqlalchemy.inspect(engine)
    assert inspector.get_table_names(schema="bi") == ["dim_customers"]
    columns = {c["name"]: str(c["type"]).upper() for c in inspector.get_columns("dim_customers", schema="bi")}
    assert list(columns) == ["customer_key", "journey_stage", "first_seen_at"]
    assert columns["customer_key"] == "VARCHAR" and "TIMESTAMP" in columns["first_seen_at"]
    # Constraint reflection (Table autoload, pandas' read_sql_table) works too: no REGCLASS on SQLAlchemy
    # 2.0.54 and older.
    assert inspector.get_pk_constraint("dim_customers", schema="bi")["constrained_columns"] == []
    table = sqlalchemy.Table("dim_customers", sqlalchemy.MetaData(), schema="bi", autoload_with=engine)
    assert list(table.columns.keys()) == list(columns)


def test_pandas_reads_a_query_and_a_reflected_table(engine) -> None:
    import pandas as pd

    stages = pd.read_sql(
        "SELECT journey_stage, count(*) AS customers FROM bi.dim_customers GROUP BY ALL ORDER BY 1", engine
    )
    assert stages.to_dict("records") == [
        {"journey_stage": "discovery", "customers": 5},
        {"journey_stage": "loyalty", "customers": 5},
    ]
    table = pd.read_sql_table("dim_customers", engine, schema="bi")  # reflection, as Superset does it
    assert len(table) == 10
    # TIMESTAMPTZ arrives as an aware instant (the DuckDB client converts it with pytz).
    first = table.sort_values("first_seen_at")["first_seen_at"].iloc[0]
    assert first.to_pydatetime() == datetime(2026, 1, 1, tzinfo=UTC)


def lock_down_statements(outside: Path) -> dict[str, Sql]:
    """What a BI user must not be able to do; file paths quoted as literals (``outside`` is a file)."""
    return {
        "create": Sql("CREATE TABLE bi.scratch AS SELECT 1 AS one"),
        "delete": Sql("DELETE FROM bi.dim_customers"),
        "read_csv": compose("SELECT * FROM read_csv({path})", path=quote_literal(str(outside))),
        "copy": compose("COPY bi.dim_customers TO {path}", path=quote_literal(f"{outside}.copy.csv")),
        "set": Sql("SET enable_external_access = true"),
        "attach": compose("ATTACH {path} AS other", path=quote_literal(f"{outside}.duckdb")),
    }


@pytest.mark.parametrize("statement", ["create", "delete", "read_csv", "copy", "set", "attach"])
def test_the_lock_down_holds_through_sqlalchemy(
    engine, published: Path, tmp_path: Path, statement: str
) -> None:
    import sqlalchemy

    outside = tmp_path / "outside.csv"
    outside.write_text("secret\n1\n", encoding="utf-8")
    with engine.connect() as connection, pytest.raises(sqlalchemy.exc.DBAPIError):
        connection.execute(sqlalchemy.text(lock_down_statements(outside)[statement]))
    assert not Path(f"{outside}.copy.csv").exists() and not Path(f"{outside}.duckdb").exists()
    with engine.connect() as connection:
        settings = connection.execute(
            sqlalchemy.text(
                "SELECT current_setting('access_mode'), current_setting('enable_external_access'), "
                "(SELECT count(*) FROM bi.dim_customers)"
            )
        ).one()
    assert tuple(settings) == ("read_only", False, 10)
