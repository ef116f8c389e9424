"""Landing files to DuckDB ``raw``: contract validation, quarantine, manifest and data-quality checks.

Entry points (see docs/ingestion.md):

- ``load_source(conn, source, landing_root, quarantine_root)`` loads a source's new or changed files;
- ``ensure_raw_schema(conn)`` creates ``raw.<source>``, ``raw.loaded_files`` and ``raw.quarantine``;
- ``evaluate_checks(conn, source)`` runs the Great Expectations checks of ``raw.<source>``.
"""

from cx_pipeline.ingestion.loader import (
    AccountingError,
    FileLoadResult,
    SourceLoadResult,
    load_file,
    load_source,
)
from cx_pipeline.ingestion.quality import CheckVerdict, check_plan, evaluate_checks, run_expectations
from cx_pipeline.ingestion.schema import (
    MANIFEST_COLUMNS,
    MANIFEST_TABLE,
    QUARANTINE_COLUMNS,
    QUARANTINE_TABLE,
    SchemaMismatchError,
    ensure_raw_schema,
)

__all__ = [
    "MANIFEST_COLUMNS",
    "MANIFEST_TABLE",
    "QUARANTINE_COLUMNS",
    "QUARANTINE_TABLE",
    "AccountingError",
    "CheckVerdict",
    "FileLoadResult",
    "SchemaMismatchError",
    "SourceLoadResult",
    "check_plan",
    "ensure_raw_schema",
    "evaluate_checks",
    "load_file",
    "load_source",
    "run_expectations",
]
