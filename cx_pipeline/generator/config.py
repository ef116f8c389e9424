"""What to generate: the public configuration and the behaviour constants the models share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from cx_pipeline.settings import Paths

FilePeriod = Literal["month", "day"]

# Final journey stages in the order of their codes; the shares are the planned population mix.
STAGES: tuple[str, ...] = ("discovery", "consideration", "decision", "loyalty", "lapsed")
STAGE_SHARES: tuple[float, ...] = (0.35, 0.27, 0.15, 0.15, 0.08)
DISCOVERY, CONSIDERATION, DECISION, LOYALTY, LAPSED = range(len(STAGES))

# A buyer with no activity for this long is lapsed (dbt var `lapse_after_days`).
LAPSE_WINDOW_DAYS = 180
# Buyers are kept this far away from the lapse boundary, so the stage does not hinge on whether a
# model measures from end_date, end_date + 1 day or the latest touchpoint in the data.
LAPSE_MARGIN_DAYS = 7

# Persons generated per chunk. Part of the output's identity: a different chunk size draws different
# random numbers, so it is a constant and not a knob.
CHUNK_PERSONS = 25_000

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000


def _default_landing() -> Path:
    return Paths.from_env().landing


def _default_truth() -> Path:
    return Paths.from_env().truth


@dataclass(frozen=True)
class GeneratorConfig:
    """Everything that determines the generated files: the same config gives byte-identical output."""

    customers: int = 2000
    seed: int = 42
    landing_dir: Path = field(default_factory=_default_landing)
    truth_dir: Path = field(default_factory=_default_truth)
    start_date: date = date(2025, 5, 1)
    end_date: date = date(2026, 10, 31)
    file_period: FilePeriod = "month"
    malformed_share: float = 0.005

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError(f"customers must be at least 1, got {self.customers}")
        if self.file_period not in ("month", "day"):
            raise ValueError(f"file_period must be 'month' or 'day', got {self.file_period!r}")
        if not 0 <= self.malformed_share <= 0.2:
            raise ValueError(f"malformed_share must be within [0, 0.2], got {self.malformed_share}")
        # Lapsed buyers need room before the lapse window, loyal ones inside it.
        minimum_days = LAPSE_WINDOW_DAYS + 2 * LAPSE_MARGIN_DAYS + 60
        if (self.end_date - self.start_date).days < minimum_days:
            raise ValueError(
                f"the date range must span at least {minimum_days} days to hold every journey stage, "
                f"got {self.start_date} .. {self.end_date}"
            )

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        for name in ("landing_dir", "truth_dir"):
            values[name] = str(values[name])
        for name in ("start_date", "end_date"):
            values[name] = values[name].isoformat()
        return values


@dataclass(frozen=True)
class Clock:
    """The generated time range in epoch milliseconds (UTC): [start_ms, end_ms)."""

    start_ms: int
    end_ms: int

    @classmethod
    def from_config(cls, config: GeneratorConfig) -> Clock:
        start = datetime(config.start_date.year, config.start_date.month, config.start_date.day, tzinfo=UTC)
        end = datetime(config.end_date.year, config.end_date.month, config.end_date.day, tzinfo=UTC)
        end += timedelta(days=1)
        return cls(start_ms=int(start.timestamp() * 1000), end_ms=int(end.timestamp() * 1000))

    @property
    def lapse_cutoff_ms(self) -> int:
        """Activity before this instant is more than the lapse window before the end of the range."""
        return self.end_ms - LAPSE_WINDOW_DAYS * DAY_MS

    @property
    def lapsed_latest_ms(self) -> int:
        """The latest activity a lapsed buyer may have."""
        return self.lapse_cutoff_ms - LAPSE_MARGIN_DAYS * DAY_MS

    @property
    def active_earliest_ms(self) -> int:
        """The earliest last activity of a buyer who must count as active (loyal, or deciding now)."""
        return self.lapse_cutoff_ms + LAPSE_MARGIN_DAYS * DAY_MS
