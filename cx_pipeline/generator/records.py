"""The shapes passed between the behaviour models and the writer."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cx_pipeline.contracts import CONTRACTS, SourceContract
from cx_pipeline.generator import text

IDENTIFIER_TYPES: tuple[str, ...] = ("crm_contact_id", "email", "phone", "user_id", "anonymous_id")


class SourceRecords:
    """Clean records of one source for one chunk: who and when, and how to write any of them as lines."""

    source: str
    person: np.ndarray  # local person index per record
    event_ms: np.ndarray  # the instant of the contract's event_time_field

    def __len__(self) -> int:
        return len(self.person)

    def render(self, rows: np.ndarray) -> pa.Array:
        """Newline-terminated lines of the records ``rows``, in that order."""
        raise NotImplementedError

    def columns_of(self, rows: np.ndarray) -> dict[str, pa.Array]:
        """Contract fields of the records ``rows`` as text columns (to break CSV records field by field)."""
        raise NotImplementedError


@dataclass
class ColumnRecords(SourceRecords):
    """Records held as one text column per contract field."""

    source: str
    columns: dict[str, pa.Array]
    person: np.ndarray
    event_ms: np.ndarray

    def __post_init__(self) -> None:
        expected = CONTRACTS[self.source].field_names
        if tuple(self.columns) != expected:
            raise ValueError(
                f"{self.source}: columns {tuple(self.columns)} differ from the contract {expected}"
            )
        lengths = {len(column) for column in self.columns.values()} | {len(self.person), len(self.event_ms)}
        if len(lengths) != 1:
            raise ValueError(f"{self.source}: columns of different lengths {lengths}")

    def columns_of(self, rows: np.ndarray) -> dict[str, pa.Array]:
        index = pa.array(np.asarray(rows, dtype=np.int64))
        return {name: column.take(index).cast(pa.string()) for name, column in self.columns.items()}

    def render(self, rows: np.ndarray) -> pa.Array:
        return serialize(CONTRACTS[self.source], self.columns_of(rows))


def serialize(contract: SourceContract, columns: dict[str, pa.Array]) -> pa.Array:
    """Newline-terminated lines: CSV in contract order, or one JSON object per line with every field."""
    if contract.format == "csv":
        plain = [f.type in ("timestamp", "integer", "decimal") for f in contract.fields]
        return text.csv_lines([columns[name] for name in contract.field_names], plain)
    members = []
    for field_ in contract.fields:
        value = columns[field_.name]
        if field_.type in ("json", "integer", "decimal"):
            members.append((field_.name, text.json_raw(value), False))
        else:
            members.append((field_.name, text.json_string(value), False))
    return text.concat(text.json_object(members), "\n")


@dataclass
class IdentifierSink:
    """Collects (identifier type, normalised value, person) of every identifier written to a landing file."""

    parts: list[pa.Table] = field(default_factory=list)

    def add(self, identifier_type: str, normalised: pa.Array, person: np.ndarray) -> None:
        if identifier_type not in IDENTIFIER_TYPES:
            raise ValueError(f"unknown identifier type {identifier_type!r}")
        present = pc.is_valid(normalised)
        table = pa.table({"value": normalised, "person": pa.array(np.asarray(person, dtype=np.int64))})
        table = table.filter(present)
        if table.num_rows:
            table = table.group_by(["value", "person"]).aggregate([])
            types = text.constant(identifier_type, table.num_rows)
            self.parts.append(table.append_column("identifier_type", types))

    def distinct(self) -> pa.Table:
        if not self.parts:
            schema = pa.schema(
                [("value", pa.string()), ("person", pa.int64()), ("identifier_type", pa.string())]
            )
            return schema.empty_table()
        return pa.concat_tables(self.parts).group_by(["identifier_type", "value", "person"]).aggregate([])


@dataclass(frozen=True)
class TimestampStyle:
    """How a source writes instants: share in local time with an offset, share with a space for ``T``."""

    offset_share: float
    space_share: float
    millis_share: float  # share of instants that carry milliseconds at all


def render_timestamps(
    rng: np.random.Generator, epoch_ms: np.ndarray, person_offsets: np.ndarray, style: TimestampStyle
) -> pa.StringArray:
    count = len(epoch_ms)
    return text.timestamp_strings(
        epoch_ms,
        person_offsets,
        rng.random(count) < style.offset_share,
        rng.random(count) < style.space_share,
    )


def with_millis(rng: np.random.Generator, epoch_ms: np.ndarray, share: float) -> np.ndarray:
    """Whole-second instants, a share of them given a millisecond part (which every form then keeps)."""
    count = len(epoch_ms)
    millis = np.where(rng.random(count) < share, rng.integers(1, 1000, count), 0)
    return np.asarray(epoch_ms, dtype=np.int64) // 1000 * 1000 + millis
