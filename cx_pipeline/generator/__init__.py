"""Synthetic customer-360 sources with ground truth: ``generate(GeneratorConfig(...))``, then
``generate_next_days(landing, truth, days=N)`` for the days after it.

See docs/generator.md for how behaviour and messiness are modelled.
"""

from cx_pipeline.generator.config import STAGES, GeneratorConfig
from cx_pipeline.generator.nextday import DayAmounts, DaySummary, generate_next_days
from cx_pipeline.generator.run import generate
from cx_pipeline.generator.summary import FileSummary, GenerationSummary, SourceSummary

__all__ = [
    "STAGES",
    "DayAmounts",
    "DaySummary",
    "FileSummary",
    "GenerationSummary",
    "GeneratorConfig",
    "SourceSummary",
    "generate",
    "generate_next_days",
]
