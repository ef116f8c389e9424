"""What a generation run wrote."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cx_pipeline.generator.config import GeneratorConfig


@dataclass(frozen=True)
class FileSummary:
    path: str  # relative to the landing folder, e.g. "web_events/2026-01.jsonl"
    rows: int  # data lines (a CSV header is not a row)
    bytes: int


@dataclass(frozen=True)
class SourceSummary:
    source: str
    clean: int  # well-formed records, first deliveries
    duplicates: int  # re-deliveries of a record key
    malformed: int
    late: int  # well-formed rows in a later period file than their event time
    files: tuple[FileSummary, ...]

    @property
    def rows(self) -> int:
        return self.clean + self.duplicates + self.malformed

    @property
    def bytes(self) -> int:
        return sum(file.bytes for file in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "clean": self.clean,
            "duplicates": self.duplicates,
            "malformed": self.malformed,
            "late": self.late,
            "bytes": self.bytes,
            "files": {file.path: {"rows": file.rows, "bytes": file.bytes} for file in self.files},
        }


@dataclass(frozen=True)
class GenerationSummary:
    config: GeneratorConfig
    persons: int
    stages: dict[str, int]
    erased: int
    orders: int
    identifiers: int  # rows of identifiers.csv
    sources: dict[str, SourceSummary]
    elapsed_seconds: float

    @property
    def rows(self) -> int:
        return sum(source.rows for source in self.sources.values())

    @property
    def bytes(self) -> int:
        return sum(source.bytes for source in self.sources.values())

    def to_json(self) -> dict[str, Any]:
        """Counts only (no paths, no timings): the same config gives the same summary."""
        shaping = {k: v for k, v in self.config.to_json().items() if k not in ("landing_dir", "truth_dir")}
        return {
            "seed": self.config.seed,
            "config": shaping,
            "persons": self.persons,
            "stages": self.stages,
            "erased": self.erased,
            "orders": self.orders,
            "identifiers": self.identifiers,
            "sources": {name: source.to_json() for name, source in self.sources.items()},
        }

    def describe(self) -> str:
        stages = ", ".join(f"{stage} {count:,}" for stage, count in self.stages.items())
        lines = [
            f"Generated {self.persons:,} persons (seed {self.config.seed}) in {self.elapsed_seconds:.1f} s",
            f"  stages: {stages}; {self.orders:,} orders; {self.erased:,} erasure requests",
            f"  {'source':<22}{'rows':>13}{'duplicates':>12}{'malformed':>11}{'late':>10}"
            f"{'files':>7}{'MiB':>10}",
        ]
        for name, source in self.sources.items():
            lines.append(
                f"  {name:<22}{source.rows:>13,}{source.duplicates:>12,}{source.malformed:>11,}"
                f"{source.late:>10,}{len(source.files):>7}{source.bytes / 2**20:>10.1f}"
            )
        lines.append(f"  {'total':<22}{self.rows:>13,}{'':>40}{self.bytes / 2**20:>10.1f}")
        lines.append(f"  landing: {self.config.landing_dir}")
        lines.append(f"  truth:   {self.config.truth_dir} ({self.identifiers:,} identifier rows)")
        return "\n".join(lines)
