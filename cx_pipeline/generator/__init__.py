"""Synthetic customer-360 sources with ground truth: ``generate(GeneratorConfig(...))``.

See docs/generator.md for how behaviour and messiness are modelled.
"""

from cx_pipeline.generator.config import STAGES, GeneratorConfig
from cx_pipeline.generator.run import generate
from cx_pipeline.generator.summary import FileSummary, GenerationSummary, SourceSummary

__all__ = ["STAGES", "FileSummary", "GenerationSummary", "GeneratorConfig", "SourceSummary", "generate"]
