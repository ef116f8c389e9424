"""SQL that turns numbered lines into contract rows: CSV and JSONL field extraction, then validation.

Input is a relation ``(n BIGINT, line VARCHAR)`` of records (``lines.read_physical_lines`` plus, for CSV,
multi-line records merged by ``csv_format.merge_multiline_records``). Output is one row per record with
its typed contract columns, ``_extra`` and the quarantine verdict; internal columns start with ``_q_`` so
they never collide with contract fields (product_rejections has a ``reason``, gdpr_consents a ``source``).

CSV fields are split in SQL: lines without a double quote with ``string_split``; other lines must match
the RFC 4180 record pattern (fields either bare without quotes, or wholly quoted with ``""`` for a quote)
and are split with a regex. Empty fields are NULL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from cx_pipeline.contracts import WEB_EVENT_CONTEXT_COLUMNS, SourceContract
from cx_pipeline.ingestion.rules import contract_violations, json_kind_sql, typed_sql, violation_columns
from cx_pipeline.ingestion.sql import raw_table
from cx_pipeline.sql import Sql, compose, join, plain_identifier, quote_identifier, quote_literal

_CSV_FIELD = r'"(?:[^"]|"")*"|[^,"]*'
CSV_RECORD_RE = rf"(?:{_CSV_FIELD})(?:,(?:{_CSV_FIELD}))*"
# Every field is preceded by a comma once ',' is prepended, so each match consumes at least one char.
CSV_FIELD_RE = rf",({_CSV_FIELD})"

PARSED_TABLE = "_cx_parsed"
REPEATED_KEYS_TABLE = "_cx_repeated_keys"


@dataclass(frozen=True)
class CsvLayout:
    """Where each contract field sits in a CSV file, from its header."""

    header: tuple[str, ...]
    positions: dict[str, int]  # contract field name -> 1-based column position
    extra: tuple[tuple[str, int], ...]  # (header name, position) of columns beyond the contract

    @property
    def column_count(self) -> int:
        return len(self.header)


_UNQUOTE = Sql("nullif(CASE WHEN starts_with(x, '\"') THEN replace(x[2:-2], '\"\"', '\"') ELSE x END, '')")
# A well-formed quoted line is split by quote parity: between the 1st and 2nd, 3rd and 4th... quote a comma
# is data, elsewhere a separator (an escaped "" toggles twice), so commas outside quotes are swapped for
# chr(31) and the line split on it: ~7x cheaper than a regex extracting each field.
_SPLIT_BY_PARITY = Sql(
    "string_split(array_to_string(list_transform(string_split(line, '\"'), "
    "lambda x, i: CASE WHEN i % 2 = 1 THEN replace(x, ',', chr(31)) ELSE x END), '\"'), chr(31))"
)


def _value_column(index: int) -> Sql:
    return quote_identifier(f"_v{index}")


def csv_values_sql(contract: SourceContract, layout: CsvLayout, records_sql: Sql) -> tuple[Sql, list]:
    """Per record: ``_q_n, _q_line, _q_line_error_type, _q_line_error, _v0.._vK, _q_extra``."""
    # Lines without quotes (nearly all) are split as they are; empty fields become NULL when picked.
    split = compose(
        """
        SELECT n AS _q_n, line AS _q_line,
          CASE
            WHEN strpos(line, '"') = 0 THEN string_split(line, ',')
            WHEN NOT regexp_full_match(line, {record_re}) THEN NULL
            WHEN strpos(line, chr(31)) = 0 THEN list_transform({by_parity}, lambda x: {unquote})
            ELSE list_transform(regexp_extract_all(',' || line, {field_re}, 1), lambda x: {unquote})
          END AS _q_vals
        FROM ({records})
        """,
        record_re=quote_literal(CSV_RECORD_RE),
        by_parity=_SPLIT_BY_PARITY,
        unquote=_UNQUOTE,
        field_re=quote_literal(CSV_FIELD_RE),
        records=records_sql,
    )
    ncols = layout.column_count
    checked = compose(
        """
        SELECT *,
          CASE
            WHEN _q_line IS NULL THEN 'blank_line'
            WHEN _q_vals IS NULL THEN 'bad_quoting'
            WHEN len(_q_vals) <> {ncols} THEN
              CASE WHEN trim(_q_line) = '' THEN 'blank_line' ELSE 'wrong_column_count' END
          END AS _q_line_error_type,
          CASE
            WHEN _q_line IS NULL THEN 'line is empty'
            WHEN _q_vals IS NULL
              THEN 'unterminated or misplaced double quote (quote whole fields, double quotes inside)'
            WHEN len(_q_vals) <> {ncols} THEN
              CASE WHEN trim(_q_line) = '' THEN 'line is empty'
              ELSE {expected} || len(_q_vals) END
          END AS _q_line_error
        FROM ({split})
        """,
        ncols=ncols,
        expected=quote_literal(f"expected {ncols} columns as in the header, found "),
        split=split,
    )
    values = []
    for index, contract_field in enumerate(contract.fields):
        position = layout.positions.get(contract_field.name)
        value = (
            compose("nullif(_q_vals[{position}], '')", position=position)
            if position
            else Sql("CAST(NULL AS VARCHAR)")
        )
        values.append(compose("{value} AS {column}", value=value, column=_value_column(index)))
    params: list = []
    if layout.extra:
        extra_values = join(
            compose("nullif(_q_vals[{position}], '')", position=position) for _, position in layout.extra
        )
        extra = compose(
            "CASE WHEN _q_line_error_type IS NULL "
            "THEN CAST(to_json(map(CAST(? AS VARCHAR[]), [{values}])) AS VARCHAR) END",
            values=extra_values,
        )
        params.append([name for name, _ in layout.extra])
    else:
        extra = Sql("CAST(NULL AS VARCHAR)")
    sql = compose(
        """
        SELECT _q_n, _q_line, _q_line_error_type, _q_line_error, {values}, {extra} AS _q_extra
        FROM ({checked})
        """,
        values=join(values),
        extra=extra,
        checked=checked,
    )
    return sql, params


def _json_path(name: str) -> str:
    return '$."' + name + '"'


def jsonl_values_sql(contract: SourceContract, records_sql: Sql) -> tuple[Sql, list]:
    """Per record: ``_q_n, _q_line, _q_line_error_type, _q_line_error, _v0.._vK, _q_extra``.

    Each line is parsed four times (validity, type, ``json_transform`` of all contract fields, its key
    list); JSON field values come back minified, so "is an object" is a prefix test rather than another
    parse. ``try(...)`` would save the validity parse but costs ~20 us per invalid line, so a file of
    garbage would crawl.
    """
    kinds = compose(
        """
        SELECT n AS _q_n, line AS _q_line,
          CASE WHEN starts_with(line, '{{') THEN CASE WHEN json_valid(line) THEN 'OBJECT' END
               WHEN json_valid(line) THEN json_type(line) END AS _q_kind
        FROM ({records})
        """,
        records=records_sql,
    )
    checked = compose(
        """
        SELECT *,
          CASE
            WHEN _q_line IS NULL THEN 'blank_line'
            WHEN _q_kind IS NULL THEN CASE WHEN trim(_q_line) = '' THEN 'blank_line' ELSE 'invalid_json' END
            WHEN _q_kind <> 'OBJECT' THEN 'not_an_object'
          END AS _q_line_error_type
        FROM ({kinds})
        """,
        kinds=kinds,
    )
    # One parse extracts every contract field: text fields as VARCHAR (numbers and nested values as their
    # JSON text), JSON fields as minified JSON; JSON null and absent keys both become NULL.
    structure = json.dumps({f.name: "JSON" if f.type == "json" else "VARCHAR" for f in contract.fields})
    # json_merge_patch with null values deletes the contract keys; what is left are the extra fields.
    # It is only run on the (few) lines with a key outside the contract: listing keys is 2x cheaper.
    patch = json.dumps(dict.fromkeys(contract.field_names))
    known = join(quote_literal(name) for name in contract.field_names)
    extracted = compose(
        """
        SELECT *,
          CASE _q_line_error_type
            WHEN 'blank_line' THEN 'line is empty'
            WHEN 'invalid_json' THEN 'line is not valid JSON'
            WHEN 'not_an_object'
              THEN 'line is a JSON ' || {kind} || ', expected an object'
          END AS _q_line_error,
          CASE WHEN _q_kind = 'OBJECT' THEN json_transform(_q_line, {structure}) END AS _q_s,
          CASE WHEN _q_kind = 'OBJECT' THEN
            CASE WHEN len(list_filter(json_keys(_q_line), lambda k: k NOT IN ({known}))) > 0
              THEN CAST(json_merge_patch(_q_line, {patch}) AS VARCHAR) END
          END AS _q_extra
        FROM ({checked})
        """,
        kind=json_kind_sql(Sql("_q_line")),
        structure=quote_literal(structure),
        known=known,
        patch=quote_literal(patch),
        checked=checked,
    )
    values = [
        compose("_q_s.{field} AS {column}", field=plain_identifier(f.name), column=_value_column(index))
        for index, f in enumerate(contract.fields)
    ]
    sql = compose(
        """
        SELECT _q_n, _q_line, _q_line_error_type, _q_line_error, {values}, _q_extra
        FROM ({extracted})
        """,
        values=join(values),
        extracted=extracted,
    )
    return sql, []


def parsed_select_sql(contract: SourceContract, values_sql: Sql) -> Sql:
    """Validate and type the output of ``csv_values_sql``/``jsonl_values_sql``.

    Columns: ``_q_n, _q_raw_record, _q_reason, _q_error_type, _q_error_field``, every raw contract
    column (typed), the web_events context columns and ``_extra`` (JSON). ``_q_reason`` is NULL for
    valid rows.
    """
    fields = contract.fields
    value_sqls = {f.name: _value_column(i) for i, f in enumerate(fields)}
    typed_sqls = {f.name: quote_identifier(f"_t{i}") for i, f in enumerate(fields)}
    violations = contract_violations(contract, value_sqls, typed_sqls)
    reason, error_type, error_field = violation_columns(violations)

    typed = join(
        compose("{typed} AS {column}", typed=typed_sql(f, value_sqls[f.name]), column=typed_sqls[f.name])
        for f in fields
    )
    flags = join(
        compose("({condition}) AS {flag}", condition=v.condition, flag=quote_identifier(f"_c{i}"))
        for i, v in enumerate(violations)
    ) or Sql("NULL AS _c_none")
    # Messages are only built for the rows that break a rule: CASE evaluates a branch for the rows that
    # reach it, and nearly all rows are fine.
    broken = join(
        (compose("coalesce({flag}, false)", flag=quote_identifier(f"_c{i}")) for i in range(len(violations))),
        " OR ",
    ) or Sql("false")
    judged = compose(
        """
        SELECT *,
          CASE WHEN _q_line_error_type IS NOT NULL THEN _q_line_error
               WHEN _q_broken THEN {reason} END AS _q_reason,
          CASE WHEN _q_line_error_type IS NOT NULL THEN _q_line_error_type
               WHEN _q_broken THEN {error_type} END AS _q_error_type,
          CASE WHEN _q_line_error_type IS NULL AND _q_broken THEN {error_field} END AS _q_error_field
        FROM (SELECT *, ({broken}) AS _q_broken
              FROM (SELECT *, {flags} FROM (SELECT *, {typed} FROM ({values}))))
        """,
        reason=reason,
        error_type=error_type,
        error_field=error_field,
        broken=broken,
        flags=flags,
        typed=typed,
        values=values_sql,
    )

    columns = [
        compose("{typed} AS {column}", typed=typed_sqls[f.name], column=plain_identifier(f.column))
        for f in fields
    ]
    context_list = Sql("NULL")
    if contract.name == "web_events":
        # One parse of the context object for all pulled-out columns.
        paths = join(quote_literal(path) for path in WEB_EVENT_CONTEXT_COLUMNS.values())
        context_list = compose(
            "json_extract_string({context}, [{paths}])", context=typed_sqls["context"], paths=paths
        )
        columns += [
            compose("_q_context[{index}] AS {column}", index=i, column=plain_identifier(column))
            for i, column in enumerate(WEB_EVENT_CONTEXT_COLUMNS, 1)
        ]
    return compose(
        """
        SELECT _q_n,
          CASE WHEN _q_reason IS NOT NULL THEN coalesce(_q_line, '') END AS _q_raw_record,
          _q_reason, _q_error_type, _q_error_field,
          {columns},
          CAST(_q_extra AS JSON) AS _extra
        FROM (SELECT *, {context_list} AS _q_context FROM ({judged}))
        """,
        columns=join(columns),
        context_list=context_list,
        judged=judged,
    )


def repeated_keys_sql(contract: SourceContract, parsed_table: str) -> Sql:
    """Keys delivered more than once among a file's valid rows, with the line of their first delivery."""
    keys = join(plain_identifier(contract.field(name).column) for name in contract.record_key)
    return compose(
        """
        SELECT {keys}, min(_q_n) AS _q_first_n FROM {parsed}
        WHERE _q_reason IS NULL GROUP BY {keys} HAVING count(*) > 1
        """,
        keys=keys,
        parsed=quote_identifier(parsed_table),
    )


def duplicate_join_sql(contract: SourceContract, repeated_table: str) -> tuple[Sql, Sql]:
    """(joins, flag) for valid parsed rows ``p``: ``_is_duplicate`` is true when an earlier line of the
    file or a non-duplicate row already in ``raw.<source>`` has the record key.

    Plain LEFT JOINs (not EXISTS, which DuckDB decorrelates into a materialised copy of the parsed rows
    plus a DISTINCT over the keys: 4x the cost). Non-duplicate raw rows are unique per key, so the joins
    cannot multiply rows; if that invariant were ever broken the loaded count would exceed the parsed
    count and the per-file accounting assertion rolls the file back. A statement does not see its own
    inserts, so this may run inside the ``INSERT INTO raw.<source>``.
    """
    columns = [plain_identifier(contract.field(name).column) for name in contract.record_key]
    joins = compose(
        "LEFT JOIN (SELECT {keys}, true AS _q_hit FROM {raw} WHERE NOT _is_duplicate) AS _q_e ON {in_raw} "
        "LEFT JOIN {repeated} AS _q_r ON {in_file}",
        keys=join(columns),
        raw=raw_table(contract.name),
        in_raw=join((compose("_q_e.{c} = p.{c}", c=c) for c in columns), " AND "),
        repeated=quote_identifier(repeated_table),
        in_file=join((compose("_q_r.{c} = p.{c}", c=c) for c in columns), " AND "),
    )
    flag = Sql("(_q_e._q_hit IS NOT NULL OR coalesce(p._q_n > _q_r._q_first_n, false))")
    return joins, flag
