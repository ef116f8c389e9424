"""cx_pipeline.sql: quoting round-trips through DuckDB, composition refuses unquoted text, and the code
base builds SQL only from code-written templates."""

from __future__ import annotations

import ast
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.sql import (
    Sql,
    compose,
    data_type,
    identifiers,
    join,
    number,
    placeholders,
    plain_identifier,
    qualified_name,
    quote_identifier,
    quote_literal,
)

ROOT = Path(__file__).resolve().parents[1]

TRICKY_NAMES = [
    "plain",
    "MixedCase",
    'with "double" quotes',
    '"',
    'ends with "',
    "with 'single' quote",
    "with space",
    "select * from x; drop table y; --",
    "dot.inside",
    "ünïcödé 名前 😀",
    "back\\slash",
]
TRICKY_TEXTS = [
    "",
    "it's",
    "''",
    "'; drop table t; --",
    'double " quote',
    "back\\slash \\' mixed",
    "line\nbreak",
    "ünïcödé 名前 😀",
    "{braces} and {{double}}",
    "$1 ? $name",
]


@pytest.fixture
def conn():
    connection = duckdb.connect()
    yield connection
    connection.close()


@pytest.mark.parametrize("name", TRICKY_NAMES)
def test_quoted_identifier_names_exactly_that_column_and_table(conn, name: str) -> None:
    table, column = quote_identifier(name), quote_identifier(name + " col")
    conn.execute(compose("create table {table} ({column} integer)", table=table, column=column))
    conn.execute(compose("insert into {table} values (?)", table=table), [7])
    assert conn.execute(compose("select {column} from {table}", column=column, table=table)).fetchall() == [
        (7,)
    ]
    names = conn.execute(
        "select table_name, column_name from information_schema.columns where table_schema = 'main'"
    ).fetchall()
    assert names == [(name, name + " col")]


def test_qualified_name_quotes_every_part(conn) -> None:
    conn.execute(compose("create schema {schema}", schema=quote_identifier('sch "1"')))
    table = qualified_name('sch "1"', "t.x")
    assert table == '"sch ""1"""."t.x"'
    conn.execute(compose("create table {table} as select 1 as one", table=table))
    assert conn.execute(compose("select one from {table}", table=table)).fetchall() == [(1,)]
    memory = qualified_name("memory", 'sch "1"', "t.x")
    assert conn.execute(compose("select count(*) from {table}", table=memory)).fetchall() == [(1,)]


@pytest.mark.parametrize("text", TRICKY_TEXTS)
def test_quoted_literal_reads_back_as_the_same_text(conn, text: str) -> None:
    assert conn.execute(compose("select {text}", text=quote_literal(text))).fetchall() == [(text,)]


def test_quoted_literal_as_a_path_in_copy(conn, tmp_path: Path) -> None:
    target = tmp_path / 'it\'s a "dir"' / "out file.csv"
    target.parent.mkdir()
    conn.execute(
        compose("copy (select 42 as answer) to {path} (format csv)", path=quote_literal(str(target)))
    )
    assert target.read_text().splitlines() == ["answer", "42"]


@pytest.mark.parametrize("bad", ["", "nul\x00byte"])
def test_identifiers_refuse_empty_and_nul(bad: str) -> None:
    with pytest.raises(ValueError):
        quote_identifier(bad)


def test_literal_refuses_nul_and_non_text() -> None:
    with pytest.raises(ValueError):
        quote_literal("a\x00b")
    with pytest.raises(TypeError):
        quote_literal(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["a", "_x1", "Customer_Id"])
def test_plain_identifier_allows_plain_names(name: str) -> None:
    assert plain_identifier(name) == f'"{name}"'


@pytest.mark.parametrize("name", ["", "1a", "a b", 'a"b', "a.b", "é", "a-b", "a;--"])
def test_plain_identifier_refuses_anything_else(name: str) -> None:
    with pytest.raises(ValueError, match="refusing"):
        plain_identifier(name)


def test_compose_refuses_plain_strings_and_checks_its_fields() -> None:
    with pytest.raises(TypeError, match="must be Sql"):
        compose("select * from {table}", table="users; drop table users")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be Sql"):
        compose("select {flag}", flag=True)  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="no part"):
        compose("select {a}, {b}", a=Sql("1"))
    with pytest.raises(KeyError, match="not used"):
        compose("select 1", a=Sql("1"))
    for template in ("select {a.b}", "select {a[0]}", "select {a!r}", "select {a:>5}", "select {}"):
        with pytest.raises(ValueError, match="plain names"):
            compose(template, a=Sql("1"))  # type: ignore[arg-type]


def test_compose_fills_fields_and_keeps_double_braces() -> None:
    sql = compose(
        "select {column}, {{'a': 1}} from {table} limit {n}",
        column=quote_identifier("x y"),
        table=qualified_name("s", "t"),
        n=5,
    )
    assert isinstance(sql, Sql)
    assert sql == 'select "x y", {\'a\': 1} from "s"."t" limit 5'


def test_join_identifiers_placeholders_number_and_types(conn) -> None:
    assert join([Sql("a"), Sql("b")], " AND ") == "a AND b"
    assert join([]) == ""
    with pytest.raises(TypeError):
        join(["a"])  # type: ignore[list-item]
    assert identifiers(["a", 'b"c']) == '"a", "b""c"'
    assert placeholders(3) == "?, ?, ?"
    with pytest.raises(ValueError):
        placeholders(0)
    assert conn.execute(compose("select {values}", values=placeholders(2)), [1, "x"]).fetchall() == [(1, "x")]
    assert number(3) == "3" and number(0.25) == "0.25" and number(-2.0) == "-2.0"
    for bad in (float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError):
            number(bad)  # type: ignore[arg-type]
    assert data_type("DECIMAL(18,4)") == "DECIMAL(18,4)"
    assert data_type("VARCHAR[]") == "VARCHAR[]"
    for bad in ("INT; drop table x", "VARCHAR)", "'x'"):
        with pytest.raises(ValueError):
            data_type(bad)


# ------------------------------------------------------------------------------ the code base's SQL


def _python_files() -> list[Path]:
    return [
        path
        for folder in ("cx_pipeline", "tests", "benchmarks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name != "sql.py" or path.parent.name != "cx_pipeline"
    ]


def _is_literal_text(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def test_sql_text_and_templates_are_written_in_code() -> None:
    """``Sql(...)`` and ``compose``/``join`` templates take string literals only: text computed at run
    time reaches SQL through quote_identifier / quote_literal / compose, never directly."""
    offending = []
    for path in _python_files():
        if path == Path(__file__).resolve():
            continue  # it feeds compose bad templates on purpose
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            name = node.func.id
            if name in {"Sql", "compose"} and node.args and not _is_literal_text(node.args[0]):
                offending.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}(...)")
            if name == "join" and len(node.args) > 1 and not _is_literal_text(node.args[1]):
                offending.append(f"{path.relative_to(ROOT)}:{node.lineno} join(..., separator)")
    assert offending == []


def test_no_s608_suppressions_left() -> None:
    marker = "noqa: " + "S608"
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _python_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if marker in line
    ]
    assert found == []
