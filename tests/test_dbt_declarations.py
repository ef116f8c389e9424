"""Tables Python writes and dbt reads are declared to dbt as sources; each declaration lists exactly the
columns and types of the one Python definition of the table (privacy tables, marts.customer_clv)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
import yaml

from cx_pipeline.cx.clv_table import CLV_SCHEMA, CLV_TABLE, CLV_TABLE_COLUMNS, ensure_clv_table
from cx_pipeline.privacy.erasure import ensure_privacy_tables
from cx_pipeline.settings import DBT_PROJECT_DIR
from cx_pipeline.sql import compose, data_type

MODELS = DBT_PROJECT_DIR / "models"
DECLARATIONS = {
    "cx360_privacy": (MODELS / "marts" / "privacy" / "_privacy__sources.yml", ensure_privacy_tables),
    "cx360_python": (MODELS / "marts" / "cx" / "_cx__sources.yml", ensure_clv_table),
}


def _declared_source(path: Path, name: str) -> dict:
    (source,) = [s for s in yaml.safe_load(path.read_text(encoding="utf-8"))["sources"] if s["name"] == name]
    return source


def _types(connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> list[tuple[str, str]]:
    return connection.execute(
        "select column_name, data_type from duckdb_columns() "
        "where schema_name = ? and table_name = ? order by column_index",
        [schema, table],
    ).fetchall()


@pytest.mark.parametrize("source_name", sorted(DECLARATIONS))
def test_declared_columns_are_those_python_creates(source_name: str) -> None:
    path, ensure_tables = DECLARATIONS[source_name]
    source = _declared_source(path, source_name)
    connection = duckdb.connect()
    ensure_tables(connection)
    ensure_tables(connection)  # idempotent: dbt's plugin runs it on every connection
    for table in source["tables"]:
        created = _types(connection, source["schema"], table["name"])
        declared = [
            (
                column["name"],
                connection.execute(
                    compose("select typeof(null::{type})", type=data_type(column["data_type"]))
                ).fetchone()[0],
            )
            for column in table["columns"]
        ]
        assert created, f"{source['schema']}.{table['name']} is declared but Python does not create it"
        assert declared == created, f"{path.name}: {table['name']}"


def test_clv_declaration_is_the_table_the_asset_writes() -> None:
    source = _declared_source(DECLARATIONS["cx360_python"][0], "cx360_python")
    (table,) = [t for t in source["tables"] if t["name"] == CLV_TABLE]
    assert (source["schema"], table["config"]["meta"]["dagster"]["asset_key"]) == (
        CLV_SCHEMA,
        [CLV_SCHEMA, CLV_TABLE],
    )
    assert [column["name"] for column in table["columns"]] == list(CLV_TABLE_COLUMNS)
    tests = {(column["name"], test) for column in table["columns"] for test in column.get("data_tests", [])}
    assert {("customer_id", "not_null"), ("customer_id", "unique")} <= tests


MACRO_DEFINITION = re.compile(r"\{%-?\s*(macro|test)\s+(\w+)\s*\(([^)]*)\)")


def _defined_macros() -> dict[str, list[str]]:
    """Macro name -> argument names, from every .sql file under macros/ and tests/generic/."""
    defined: dict[str, list[str]] = {}
    for folder in (DBT_PROJECT_DIR / "macros", DBT_PROJECT_DIR / "tests" / "generic"):
        for path in sorted(folder.rglob("*.sql")):
            for kind, name, arguments in MACRO_DEFINITION.findall(path.read_text(encoding="utf-8")):
                macro = f"test_{name}" if kind == "test" else name
                defined[macro] = [a.split("=")[0].strip() for a in arguments.split(",") if a.strip()]
    return defined


def test_every_macro_is_documented_with_its_arguments() -> None:
    documented = yaml.safe_load((DBT_PROJECT_DIR / "macros" / "_macros.yml").read_text(encoding="utf-8"))
    by_name = {macro["name"]: macro for macro in documented["macros"]}
    defined = _defined_macros()
    assert len(defined) > 30
    assert sorted(by_name) == sorted(defined)
    for name, arguments in defined.items():
        assert by_name[name].get("description", "").strip(), name
        documented_arguments = by_name[name].get("arguments", [])
        assert [argument["name"] for argument in documented_arguments] == arguments, name
        assert all(argument.get("description", "").strip() for argument in documented_arguments), name
