"""Data-quality checks on the raw tables, derived from the contracts and run with Great Expectations.

``check_plan(source)`` lists the checks of one raw table; each holds GX expectations described as plain
data (``ExpectationSpec``), so building the plan does not import GX. ``run_expectations`` is the one
piece of GX glue (ephemeral context, pandas datasource, dataframe asset, whole-frame batch, suite,
validation definition). ``evaluate_checks`` fetches the frame from DuckDB, runs GX and folds the results
into one ``CheckVerdict`` per check; the Dagster asset checks only turn verdicts into results. GX's sample of
unexpected values is reported for non-personal columns only (``hide_personal_values``).

Checks (blocking ones guard the staging models; the others warn):
- required_fields_not_null (blocking): required contract fields are never NULL.
- record_key_unique (blocking): the record key is unique among rows with ``_is_duplicate = false``.
- enum_values_allowed (blocking): enum fields hold allowed values (sources with enum fields).
- timestamps_plausible (warn): timestamps lie between 1970-01-01 and now + 1 day.
- values_in_range (warn): numbers respect the contract's min/max (sources with such fields).
- quarantine_share_below_threshold (warn): quarantined / read rows of the current files, from the
  manifest (SQL), stays below ``QUARANTINE_SHARE_THRESHOLD``.

The frame holds only non-duplicate rows and the columns the expectations need; tables with more than
``MAX_CHECK_ROWS`` such rows are checked on a reproducible sample, the rows with the smallest seeded hash
of the record key (said in the metadata; see ``fetch_check_frame``).
"""

from __future__ import annotations

import dataclasses
import gc
import math
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from cx_pipeline.contracts import CONTRACTS, ContractField, SourceContract, personal_columns
from cx_pipeline.ingestion.manifest import quarantine_share
from cx_pipeline.ingestion.schema import ensure_raw_schema
from cx_pipeline.ingestion.sql import configure_connection, raw_table, scalar
from cx_pipeline.sql import Sql, compose, join, plain_identifier

MAX_CHECK_ROWS = 2_000_000
QUARANTINE_SHARE_THRESHOLD = 0.05
FUTURE_TOLERANCE = timedelta(days=1)
EARLIEST_PLAUSIBLE = datetime(1970, 1, 1, tzinfo=UTC)
SAMPLE_SEED = 42
MAX_UNEXPECTED_SHOWN = 5

QUARANTINE_CHECK = "quarantine_share_below_threshold"


@dataclass(frozen=True)
class ExpectationSpec:
    """One GX expectation as data: the class name in ``great_expectations.expectations`` and kwargs."""

    expectation: str
    kwargs: dict[str, Any]

    @property
    def columns(self) -> tuple[str, ...]:
        if "column" in self.kwargs:
            return (self.kwargs["column"],)
        return tuple(self.kwargs.get("column_list", ()))


@dataclass(frozen=True)
class CheckPlan:
    name: str
    description: str
    blocking: bool  # blocking checks fail with ERROR severity; the others with WARN
    expectations: tuple[ExpectationSpec, ...] = ()


@dataclass(frozen=True)
class ExpectationOutcome:
    spec: ExpectationSpec
    success: bool
    element_count: int | None
    unexpected_count: int | None
    unexpected_percent: float | None
    unexpected_values: tuple[str, ...]
    error: str | None = None
    # The unexpected values were dropped: they belong to a personal column (see ``hide_personal_values``).
    values_hidden: bool = False


@dataclass
class CheckVerdict:
    name: str
    passed: bool
    blocking: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _column(contract: SourceContract, name: str) -> str:
    return contract.field(name).column


def _range_text(contract_field: ContractField) -> str:
    low, high = contract_field.min_value, contract_field.max_value
    if low is not None and high is not None:
        return f"{contract_field.name} in {low:g}..{high:g}"
    if low is not None:
        return f"{contract_field.name} >= {low:g}"
    return f"{contract_field.name} <= {high:g}"


def check_plan(source: str, now: datetime | None = None) -> list[CheckPlan]:
    """The checks of ``raw.<source>``; only checks that apply to the contract are listed."""
    contract = CONTRACTS[source]
    now = now or datetime.now(UTC)
    plans = [
        CheckPlan(
            "required_fields_not_null",
            f"Required fields ({', '.join(contract.required_fields)}) are never NULL.",
            blocking=True,
            expectations=tuple(
                ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": _column(contract, name)})
                for name in contract.required_fields
            ),
        )
    ]
    key = [_column(contract, name) for name in contract.record_key]
    key_expectation = (
        ExpectationSpec("ExpectColumnValuesToBeUnique", {"column": key[0]})
        if len(key) == 1
        else ExpectationSpec("ExpectCompoundColumnsToBeUnique", {"column_list": key})
    )
    plans.append(
        CheckPlan(
            "record_key_unique",
            f"The record key ({', '.join(contract.record_key)}) is unique among non-duplicate rows.",
            blocking=True,
            expectations=(key_expectation,),
        )
    )
    enums = [f for f in contract.fields if f.allowed]
    if enums:
        plans.append(
            CheckPlan(
                "enum_values_allowed",
                "Enum fields hold allowed values: "
                + "; ".join(f"{f.name} in ({', '.join(f.allowed or ())})" for f in enums)
                + ".",
                blocking=True,
                expectations=tuple(
                    ExpectationSpec(
                        "ExpectColumnValuesToBeInSet",
                        {"column": f.column, "value_set": list(f.allowed or ())},
                    )
                    for f in enums
                ),
            )
        )
    timestamps = [f for f in contract.fields if f.type == "timestamp"]
    plans.append(
        CheckPlan(
            "timestamps_plausible",
            "Timestamps are real ISO-8601 instants between 1970-01-01 and at most 1 day in the future "
            f"({', '.join(f.name for f in timestamps)}).",
            blocking=False,
            expectations=tuple(
                ExpectationSpec(
                    "ExpectColumnValuesToBeBetween",
                    {
                        "column": f.column,
                        "min_value": EARLIEST_PLAUSIBLE,
                        "max_value": now + FUTURE_TOLERANCE,
                    },
                )
                for f in timestamps
            ),
        )
    )
    ranged = [f for f in contract.fields if f.min_value is not None or f.max_value is not None]
    if ranged:
        plans.append(
            CheckPlan(
                "values_in_range",
                "Numbers respect the contract ranges: " + "; ".join(_range_text(f) for f in ranged) + ".",
                blocking=False,
                expectations=tuple(
                    ExpectationSpec(
                        "ExpectColumnValuesToBeBetween",
                        {
                            "column": f.column,
                            **({"min_value": f.min_value} if f.min_value is not None else {}),
                            **({"max_value": f.max_value} if f.max_value is not None else {}),
                        },
                    )
                    for f in ranged
                ),
            )
        )
    plans.append(
        CheckPlan(
            QUARANTINE_CHECK,
            f"Less than {QUARANTINE_SHARE_THRESHOLD:.0%} of the rows read from the current landing files "
            "were quarantined (from raw.loaded_files).",
            blocking=False,
        )
    )
    return plans


# -- Great Expectations glue --------------------------------------------------------------------------


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_plain(v)}" for k, v in value.items())
    if isinstance(value, float) and math.isnan(value):
        return "NULL"
    if value is None or value is pd.NaT:
        return "NULL"
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    return str(value)


def _skip_batch_fingerprint() -> None:
    """Stop GX from hashing every cell of the frame for a batch marker nobody reads.

    GX's pandas engine fingerprints each batch below ``HASH_THRESHOLD`` bytes with
    ``pandas.util.hash_pandas_object`` (a full pass over every column; on pandas 3's Arrow-backed strings
    it took longer than fetching the frame: 1.5 s for web_events' 450k rows at 10k customers, ~45 % of the
    check). The fingerprint only goes into the batch markers of our ephemeral context and is never read;
    the expectations and their results do not depend on it. A threshold of 0 skips it.
    """
    from great_expectations.execution_engine import pandas_execution_engine

    if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        pandas_execution_engine.HASH_THRESHOLD = 0


def run_expectations(
    frame: pd.DataFrame, expectations: list[ExpectationSpec], name: str = "cx360"
) -> list[ExpectationOutcome]:
    """Validate ``frame`` against ``expectations`` with GX 1.x; outcomes in the order given.

    Ephemeral context -> pandas datasource -> dataframe asset -> whole-dataframe batch definition ->
    suite -> validation definition -> run. Great Expectations is imported here (it takes seconds).
    """
    if not expectations:
        return []
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    _skip_batch_fingerprint()

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
        ),
    )
    asset = context.data_sources.add_pandas(f"{name}_pandas").add_dataframe_asset(f"{name}_frame")
    batch = asset.add_batch_definition_whole_dataframe(f"{name}_whole_frame")
    suite = context.suites.add(
        gx.ExpectationSuite(
            name=f"{name}_suite",
            expectations=[
                getattr(gxe, spec.expectation)(**spec.kwargs, meta={"cx360_index": index})
                for index, spec in enumerate(expectations)
            ],
        )
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(data=batch, suite=suite, name=f"{name}_validation")
    )
    result = validation.run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_UNEXPECTED_SHOWN},
    )
    outcomes: list[ExpectationOutcome | None] = [None] * len(expectations)
    for item in result.results:
        index = int(item.expectation_config.meta["cx360_index"])
        details = dict(item.result or {})
        exception = item.exception_info or {}
        error = exception.get("exception_message") if exception.get("raised_exception") else None
        partial = details.get("partial_unexpected_list") or []
        outcomes[index] = ExpectationOutcome(
            spec=expectations[index],
            success=bool(item.success) and error is None,
            element_count=details.get("element_count"),
            unexpected_count=details.get("unexpected_count"),
            unexpected_percent=details.get("unexpected_percent"),
            unexpected_values=tuple(dict.fromkeys(_plain(v) for v in partial)),
            error=error,
        )
    missing = [expectations[i] for i, o in enumerate(outcomes) if o is None]
    if missing:
        raise RuntimeError(f"Great Expectations returned no result for {missing}")
    return [o for o in outcomes if o is not None]


def hide_personal_values(
    outcomes: list[ExpectationOutcome], personal: frozenset[str]
) -> list[ExpectationOutcome]:
    """Drop the unexpected values GX lists (``partial_unexpected_list``: raw values) of expectations on a
    personal column: they would go into Dagster's run history, which erasure cannot reach."""
    return [
        dataclasses.replace(outcome, unexpected_values=(), values_hidden=True)
        if outcome.unexpected_values and personal.intersection(outcome.spec.columns)
        else outcome
        for outcome in outcomes
    ]


# -- fetching and folding -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckFrame:
    frame: pd.DataFrame
    rows_in_table: int  # non-duplicate rows
    sampled: bool


def fetch_check_frame(
    conn: duckdb.DuckDBPyConnection, source: str, columns: list[str], max_rows: int = MAX_CHECK_ROWS
) -> CheckFrame:
    """Non-duplicate rows of ``raw.<source>`` restricted to ``columns`` (a key-hash sample if big).

    The sample is the ``max_rows`` rows with the smallest seeded hash of the record key (ties broken by
    file and line): reproducible whatever the thread count, and every delivery of a key is in it or out
    of it together, so a repeated key stays visible to the uniqueness check. It replaces DuckDB's
    ``reservoir`` sample, which runs single-threaded with ``REPEATABLE``: 21 s for 2M of web_events' 4.5M
    rows at 100k customers, against ~1.5 s. A hash prefilter keeps the top-N sort to ~5 % above
    ``max_rows`` rows; if too few rows pass it (rare), the query runs again without it.
    """
    contract = CONTRACTS[source]
    known = {f.column for f in contract.fields}
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise KeyError(f"not contract columns of {source}: {unknown}")
    table = raw_table(source)
    rows = int(scalar(conn, compose("SELECT count(*) FROM {table} WHERE NOT _is_duplicate", table=table)))
    decimals = {f.column for f in contract.fields if f.type == "decimal"}
    selected = join(
        compose("CAST({column} AS DOUBLE) AS {column}", column=plain_identifier(c))
        if c in decimals
        else plain_identifier(c)
        for c in columns
    ) or Sql("1 AS _one")
    sampled = rows > max_rows
    if not sampled:
        frame = _fetch(
            conn,
            compose("SELECT {selected} FROM {table} WHERE NOT _is_duplicate", selected=selected, table=table),
            [],
        )
        return CheckFrame(frame=frame, rows_in_table=rows, sampled=False)
    keys = join(plain_identifier(contract.field(name).column) for name in contract.record_key)
    hashed = compose(
        "SELECT {selected}, hash({keys}, {seed}) AS _q_h, _source_file AS _q_f, "
        "_source_line AS _q_l FROM {table} WHERE NOT _is_duplicate",
        selected=selected,
        keys=keys,
        seed=SAMPLE_SEED,
        table=table,
    )
    limit = int(max_rows)
    bound = _sample_hash_bound(limit, rows)
    frame = None
    for prefilter in (Sql("WHERE _q_h <= CAST(? AS UBIGINT)"), Sql("")):
        params = [str(bound)] if prefilter else []
        candidate = _fetch(
            conn,
            compose(
                "SELECT * EXCLUDE (_q_h, _q_f, _q_l) FROM ({hashed}) {prefilter} "
                "ORDER BY _q_h, _q_f, _q_l LIMIT ?",
                hashed=hashed,
                prefilter=prefilter,
            ),
            [*params, limit],
        )
        if len(candidate) == limit or not prefilter:
            frame = candidate
            break
    return CheckFrame(frame=frame, rows_in_table=rows, sampled=True)


def _sample_hash_bound(max_rows: int, rows: int) -> int:
    """Hash prefilter for the sample: ~5 % (and 1,000 rows) more than ``max_rows`` of ``rows`` pass."""
    share = min(1.0, max_rows / rows * 1.05 + 1000 / rows)
    return min(2**64 - 1, int(share * 2**64))


def _return_memory_to_os() -> None:
    """Give back the sample frame's memory once it is checked: Arrow's allocator keeps freed pages for
    reuse, and the Dagster process runs the rest of the pipeline (erasure, exports, verification) beside
    dbt's own process, so what it keeps adds to the peak of the whole run (~0.4 GB at 100k customers)."""
    gc.collect()
    pa.default_memory_pool().release_unused()


def _fetch(conn: duckdb.DuckDBPyConnection, sql: Sql, params: list) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 deprecation warnings raised inside the converters
        return _to_pandas(conn.sql(sql, params=params or None).to_arrow_table())


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """The frame DuckDB's ``.df()`` gives, through Arrow: 3-10x faster for text and timestamp columns
    (``.df()`` converts strings one by one: 0.7-2.9 s against 0.2 s for web_events' 450k rows at 10k).
    Same dtypes as ``.df()``: text ``str``, TIMESTAMPTZ ``datetime64[us, UTC]``, BIGINT ``int64`` or, with
    NULLs, ``Int64``; DECIMAL columns are cast to DOUBLE by DuckDB in the query (Arrow's own decimal cast
    rounds differently). tests/test_checks.py compares both conversions.
    """
    frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_int64(column.type) and column.null_count == 0:
            frame[name] = frame[name].astype("int64")
    return frame


def _expectation_metadata(outcome: ExpectationOutcome) -> dict[str, Any]:
    spec = outcome.spec
    entry: dict[str, Any] = {
        "expectation": spec.expectation,
        "columns": list(spec.columns),
        "success": outcome.success,
        "unexpected_count": outcome.unexpected_count,
        "unexpected_percent": None
        if outcome.unexpected_percent is None
        else round(float(outcome.unexpected_percent), 4),
        "unexpected_values": list(outcome.unexpected_values),
    }
    if outcome.values_hidden:
        entry["unexpected_values_hidden"] = "personal column: look the rows up in the table"
    for bound in ("min_value", "max_value", "value_set"):
        if bound in spec.kwargs:
            entry[bound] = _plain(spec.kwargs[bound]) if bound != "value_set" else spec.kwargs[bound]
    if outcome.error:
        entry["error"] = outcome.error
    return entry


def _fold(plan: CheckPlan, outcomes: list[ExpectationOutcome], frame: CheckFrame) -> CheckVerdict:
    failed = [o for o in outcomes if not o.success]
    unexpected = sum(int(o.unexpected_count or 0) for o in outcomes)
    rows = len(frame.frame)
    metadata: dict[str, Any] = {
        "rows_checked": rows,
        "rows_in_table": frame.rows_in_table,
        "sampled": frame.sampled,
        "unexpected_count": unexpected,
        "unexpected_percent": round(100.0 * unexpected / rows, 4) if rows else 0.0,
        "expectations": [_expectation_metadata(o) for o in outcomes],
    }
    if frame.sampled:
        metadata["sample_note"] = (
            f"checked a reproducible sample of {rows} of {frame.rows_in_table} non-duplicate rows "
            "(the rows with the smallest seeded hash of the record key)"
        )
    if failed:
        summary = "; ".join(
            f"{', '.join(o.spec.columns)}: {o.unexpected_count} unexpected"
            + (f" (e.g. {', '.join(o.unexpected_values[:3])})" if o.unexpected_values else "")
            + (" (values of a personal column are not shown)" if o.values_hidden else "")
            + (f" [error: {o.error}]" if o.error else "")
            for o in failed
        )
        description = f"{plan.description} Failed: {summary}."
    else:
        description = plan.description
    return CheckVerdict(plan.name, not failed, plan.blocking, description, metadata)


def quarantine_verdict(
    conn: duckdb.DuckDBPyConnection, source: str, threshold: float = QUARANTINE_SHARE_THRESHOLD
) -> CheckVerdict:
    quarantined, read = quarantine_share(conn, source)
    share = quarantined / read if read else 0.0
    passed = share < threshold
    description = (
        f"{quarantined} of {read} rows read from the current {source} files were quarantined "
        f"({share:.2%}; threshold {threshold:.0%})."
    )
    if not passed:
        description += " See raw.quarantine for the reasons (error_type, reason) per file and line."
    return CheckVerdict(
        QUARANTINE_CHECK,
        passed,
        False,
        description,
        {
            "rows_quarantined": quarantined,
            "rows_read": read,
            "quarantine_share": round(share, 6),
            "threshold": threshold,
        },
    )


def evaluate_checks(
    conn: duckdb.DuckDBPyConnection,
    source: str,
    selected: set[str] | None = None,
    *,
    now: datetime | None = None,
    max_rows: int = MAX_CHECK_ROWS,
    quarantine_threshold: float = QUARANTINE_SHARE_THRESHOLD,
) -> list[CheckVerdict]:
    """Run the checks of ``raw.<source>`` (all, or the names in ``selected``) and return verdicts."""
    configure_connection(conn)
    ensure_raw_schema(conn, [source])
    plans = [p for p in check_plan(source, now) if selected is None or p.name in selected]
    gx_plans = [p for p in plans if p.expectations]
    verdicts: dict[str, CheckVerdict] = {}
    if gx_plans:
        expectations = [e for p in gx_plans for e in p.expectations]
        columns = list(dict.fromkeys(c for e in expectations for c in e.columns))
        frame = fetch_check_frame(conn, source, columns, max_rows)
        outcomes = hide_personal_values(
            run_expectations(frame.frame, expectations, name=f"raw_{source}"), personal_columns(source)
        )
        position = 0
        for plan in gx_plans:
            count = len(plan.expectations)
            verdicts[plan.name] = _fold(plan, outcomes[position : position + count], frame)
            position += count
        del frame, outcomes
        _return_memory_to_os()
    for plan in plans:
        if plan.name == QUARANTINE_CHECK:
            verdicts[plan.name] = quarantine_verdict(conn, source, quarantine_threshold)
    return [verdicts[p.name] for p in plans]
