"""The table the CLV asset writes, ``marts.customer_clv``: its columns and types, defined once.

The asset (cx_pipeline/defs/cx.py) writes its predictions through :func:`clv_table_select`; dbt declares the
table as the source ``cx360_python.customer_clv`` (dbt_project/models/marts/cx/_cx__sources.yml, with data
tests; tests/test_dbt_declarations.py checks its columns against these); dbt's connection plugin creates it
empty when absent (:func:`ensure_clv_table`), so those tests have a table to read before the first CLV run.
"""

from __future__ import annotations

import duckdb

from cx_pipeline.privacy.scan import quote as ident

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


def clv_table_select(frame: str) -> str:
    """``select`` of the table's columns, cast to their types, from the registered frame ``frame``."""
    columns = ",\n    ".join(
        f"cast({ident(column)} as {column_type}) as {ident(column)}"
        for column, column_type in CLV_TABLE_COLUMNS.items()
    )
    return f"select\n    {columns}\nfrom {ident(frame)}"


def ensure_clv_table(connection: duckdb.DuckDBPyConnection) -> None:
    """``marts.customer_clv``, empty, when absent (the CLV asset replaces it on every run)."""
    columns = ", ".join(f"{ident(column)} {column_type}" for column, column_type in CLV_TABLE_COLUMNS.items())
    connection.execute(f"create schema if not exists {ident(CLV_SCHEMA)}")
    connection.execute(f"create table if not exists {ident(CLV_SCHEMA)}.{ident(CLV_TABLE)} ({columns})")
