"""The DuckDB floor: DuckDB alone reads every landing file once and writes one aggregate per customer key.

Per source, every identifier column (emails lower-cased and trimmed; web identify traits' email too) is
unpivoted into (key_type, key) with the record's event time; the sources are unioned and grouped into
``count(*)`` and ``max(event time)`` per (source, key_type, key), written as a table into a fresh DuckDB
file. No validation, no deduplication, no identity graph: the least work that still touches every byte, so
``pipeline time / floor time`` is the pipeline's overhead over the raw read-and-aggregate cost.

Run as a subprocess by the harness (``python -m benchmarks.floor --landing DIR --database FILE``) so its
time and memory are measured exactly like the pipeline's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cx_pipeline.contracts import CONTRACTS
from cx_pipeline.sql import Sql, compose, identifiers, join, plain_identifier, quote_identifier, quote_literal

# Identifier columns per source (contract field names); emails are normalised, the rest taken as is.
KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "crm_contacts": ("email", "phone"),
    "web_events": ("anonymousId", "userId"),
    "cart_events": ("user_id", "email", "anonymous_id"),
    "product_rejections": ("user_id", "email"),
    "support_interactions": ("requester_email", "requester_phone"),
    "gdpr_consents": ("email", "user_id"),
    "erasure_requests": ("email", "phone", "user_id"),
    "nps_responses": ("email", "user_id"),
}
KEY_TYPES = {
    "email": "email",
    "requester_email": "email",
    "phone": "phone",
    "requester_phone": "phone",
    "user_id": "user_id",
    "userId": "user_id",
    "anonymous_id": "anonymous_id",
    "anonymousId": "anonymous_id",
}


def _files(landing: Path, source: str, pattern: str) -> list[str]:
    suffix = CONTRACTS[source].format
    return sorted(
        str(p)
        for p in (landing / source).glob(pattern)
        if p.is_file()
        and p.name.endswith(f".{suffix}")
        and not p.name.startswith(".")
        and p.stat().st_size > 0  # DuckDB cannot read the header of an empty CSV
    )


def source_sql(source: str, files: list[str]) -> Sql:
    contract = CONTRACTS[source]
    file_list = compose("[{files}]", files=join(quote_literal(f) for f in files))
    time_field = contract.event_time_field
    keys = list(KEY_FIELDS[source])
    if contract.format == "csv":
        reader = compose(
            "read_csv({files}, header = true, delim = ',', quote = '\"', escape = '\"', "
            "all_varchar = true, ignore_errors = true, parallel = true)",
            files=file_list,
        )
        select = identifiers([*keys, time_field])
    else:
        wanted = {k: "VARCHAR" for k in keys}
        wanted[time_field] = "VARCHAR"
        if source == "web_events":
            wanted["traits"] = "JSON"
        column_spec = join(
            compose("{name}: {type}", name=quote_literal(k), type=quote_literal(v)) for k, v in wanted.items()
        )
        reader = compose(
            "read_json({files}, format = 'newline_delimited', columns = {{{columns}}}, ignore_errors = true)",
            files=file_list,
            columns=column_spec,
        )
        select = identifiers([*keys, time_field])
        if source == "web_events":
            select = compose("{select}, traits ->> '$.email' as traits_email", select=select)
            keys.append("traits_email")
    normalised = join(
        compose("nullif(lower(trim({k})), '') as {k}", k=plain_identifier(k))
        if "email" in k
        else compose("nullif({k}, '') as {k}", k=plain_identifier(k))
        for k in keys
    )
    key_type_case = compose(
        "case key_type {branches} end",
        branches=join(
            (
                compose(
                    "when {key} then {type}",
                    key=quote_literal(k),
                    type=quote_literal(KEY_TYPES.get(k, "email")),
                )
                for k in keys
            ),
            " ",
        ),
    )
    return compose(
        """
        select {source} as source, {key_type_case} as key_type, key, event_time
        from (
            unpivot (
                select {normalised}, try_cast({time_field} as timestamptz) as event_time
                from (select {select} from {reader})
            )
            on {unpivot_on} into name key_type value key
        )
        """,
        source=quote_literal(source),
        key_type_case=key_type_case,
        normalised=normalised,
        time_field=quote_identifier(time_field),
        select=select,
        reader=reader,
        unpivot_on=identifiers(keys),
    )


def floor_query(landing: Path, pattern: str = "*") -> tuple[Sql, int]:
    parts = []
    file_count = 0
    for source in CONTRACTS:
        files = _files(landing, source, pattern)
        if files:
            file_count += len(files)
            parts.append(source_sql(source, files))
    if not parts:
        raise ValueError(f"no landing files under {landing} matching {pattern!r}")
    sql = compose(
        """
        create or replace table key_aggregates as
        select source, key_type, key, count(*) as records, max(event_time) as last_seen_at
        from ({union})
        group by all
        """,
        union=join(parts, "\nunion all\n"),
    )
    return sql, file_count


def run_floor(landing: Path, database: Path, pattern: str = "*", threads: int | None = None) -> dict:
    import duckdb

    database.unlink(missing_ok=True)
    started = time.perf_counter()
    with duckdb.connect(str(database)) as connection:
        connection.execute("set TimeZone = 'UTC'")
        connection.execute("set preserve_insertion_order = false")
        if threads:
            connection.execute(compose("set threads = {threads}", threads=int(threads)))
        sql, files = floor_query(landing, pattern)
        connection.execute(sql)
        keys, records = connection.execute("select count(*), sum(records) from key_aggregates").fetchone()
    return {
        "seconds": time.perf_counter() - started,
        "files": files,
        "keys": int(keys),
        "key_records": int(records or 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", required=True, type=Path)
    parser.add_argument("--database", required=True, type=Path)
    parser.add_argument("--pattern", default="*", help="file name glob within each source folder")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json", type=Path, help="write the result here")
    args = parser.parse_args(argv)
    result = run_floor(args.landing, args.database, args.pattern, args.threads)
    if args.json:
        args.json.write_text(json.dumps(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
