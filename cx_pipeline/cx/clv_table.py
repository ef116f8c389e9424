"""The table the CLV asset writes, ``marts.customer_clv``: its columns and types, defined once.

The asset (cx_pipeline/defs/cx.py) writes its predictions through :func:`clv_table_select`; dbt declares the
table as the source ``cx360_python.customer_clv`` (dbt_project/models/marts/cx/_cx__sources.yml, with data
tests; tests/test_dbt_declarations.py checks its columns against these); dbt's connection plugin creates it
empty when absent (:func:`ensure_clv_table`), so those tests have a table to read before the first CLV run.
"""

from __future__ import annotations

import duckdb

from cx_pipeline.sql import Sql, compose, data_type, join, plain_identifier, qualified_name, quote_identifier

CLV_SCHEMA = "marts"
CLV_TABLE = "customer_clv"
# Column -> DuckDB type, in table order.
CLV_TABLE_COLUMNS: dict[str, str] = {
    "customer_id": "VARCHAR",
    "frequency": "INTEGER",
    "recency": "DOUBLE",
    "T": "DOUBLE",
    "monetary": "DECIMAL(18,2)",
    "p_alive": "DOUBLE",
    "expected_purchases_12m": "DOUBLE",
    "expected_avg_order_value": "DECIMAL(18,2)",
    "predicted_clv_12m": "DECIMAL(18,2)",
    "historical_clv": "DECIMAL(18,2)",
}


def clv_table_select(frame: str) -> Sql:
    """``select`` of the table's columns, cast to their types, from the registered frame ``frame``."""
    columns = join(
        (
            compose(
                "cast({column} as {column_type}) as {column}",
                column=quote_identifier(column),
                column_type=data_type(column_type),
            )
            for column, column_type in CLV_TABLE_COLUMNS.items()
        ),
        ",\n    ",
    )
    return compose("select\n    {columns}\nfrom {frame}", columns=columns, frame=plain_identifier(frame))


def clv_table() -> Sql:
    """``"marts"."customer_clv"``."""
    return qualified_name(CLV_SCHEMA, CLV_TABLE)


def ensure_clv_table(connection: duckdb.DuckDBPyConnection) -> None:
    """``marts.customer_clv``, empty, when absent (the CLV asset replaces it on every run)."""
    columns = join(
        compose("{column} {column_type}", column=quote_identifier(column), column_type=data_type(column_type))
        for column, column_type in CLV_TABLE_COLUMNS.items()
    )
    connection.execute(compose("create schema if not exists {schema}", schema=quote_identifier(CLV_SCHEMA)))
    connection.execute(
        compose("create table if not exists {table} ({columns})", table=clv_table(), columns=columns)
    )
