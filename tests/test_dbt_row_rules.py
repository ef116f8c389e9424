"""The ``row_rules`` generic test (dbt_project/tests/generic/row_rules.sql) passes on clean data and names
every broken rule, with its failing rows, when the Segment staging view breaks them."""

from __future__ import annotations

from pathlib import Path

import duckdb
from sample_warehouse import generate_and_ingest, run_dbt

from cx_pipeline.sql import compose, qualified_name

SELECT_TEST = "stg_segment__event_deliveries,test_name:row_rules"


def test_row_rules_pass_then_name_each_broken_rule(tmp_path: Path) -> None:
    sample = generate_and_ingest(tmp_path, 40, 3)
    run_dbt(tmp_path, sample.warehouse, "run", "--select", "stg_segment__event_deliveries")
    run_dbt(tmp_path, sample.warehouse, "test", "--select", SELECT_TEST)

    with duckdb.connect(str(sample.warehouse)) as connection:
        first, second, third = connection.execute(
            "select rowid from raw.web_events where not _is_duplicate order by rowid limit 3"
        ).fetchall()
        connection.execute("update raw.web_events set type = 'screen' where rowid = ?", [first[0]])
        connection.execute("update raw.web_events set event_timestamp = null where rowid = ?", [second[0]])
        # Two more unflagged deliveries of one message: the ingestion never leaves this, the test must see it.
        connection.execute(
            "insert into raw.web_events select * replace (false as _is_duplicate) "
            "from raw.web_events where rowid = ?",
            [third[0]],
        )
        connection.execute(
            "insert into raw.web_events select * replace (false as _is_duplicate) "
            "from raw.web_events where rowid = ?",
            [third[0]],
        )

    result = run_dbt(
        tmp_path, sample.warehouse, "test", "--select", SELECT_TEST, "--store-failures", check=False
    )
    assert result.returncode != 0, result.stdout[-3000:]

    with duckdb.connect(str(sample.warehouse), read_only=True) as connection:
        (schema, table) = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema like '%dbt_test__audit' and table_name like 'row_rules%'"
        ).fetchone()
        failures = connection.execute(
            compose(
                "select rule, column_name, failing_rows from {table} order by all",
                table=qualified_name(schema, table),
            )
        ).fetchall()
    assert failures == [
        ("accepted_values", "event_type", 1),
        ("not_null", "occurred_at", 1),
        ("unique", "message_id", 2),
    ]
