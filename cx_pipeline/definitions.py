"""The cx360 Dagster code location: everything under ``cx_pipeline/defs`` is loaded from there, then every
asset gets its owners and code references (``cx_pipeline.defs.ownership``)."""

from pathlib import Path

import dagster as dg

from cx_pipeline.defs.ownership import with_owners_and_code_references


@dg.definitions
def defs() -> dg.Definitions:
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return with_owners_and_code_references(loaded)
