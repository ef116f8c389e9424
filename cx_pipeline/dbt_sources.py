"""Render the dbt sources YAML of the raw tables from the contracts: ``python -m cx_pipeline.dbt_sources``.

Each dbt source (``crm``, ``segment``, ...) groups raw tables under ``models/staging/<source>/`` in
``_<source>__sources.yml``; its columns, types and descriptions are exactly ``contracts.raw_table_columns``
and ``contracts.raw_column_descriptions``, so the YAML cannot drift from what ingestion creates. A test
checks that the committed files equal this output (``make contracts`` rewrites them and docs/sources.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from cx_pipeline.contracts import CONTRACTS, raw_column_descriptions, raw_table_columns
from cx_pipeline.settings import PROJECT_ROOT

STAGING_MODELS_DIR = PROJECT_ROOT / "dbt_project" / "models" / "staging"
# Raw tables live in this schema; the Dagster ingestion asset of raw table ``t`` is keyed ``raw/t``.
RAW_SCHEMA = "raw"


@dataclass(frozen=True)
class DbtSource:
    name: str
    description: str
    tables: tuple[str, ...]

    @property
    def path(self) -> Path:
        return STAGING_MODELS_DIR / self.name / f"_{self.name}__sources.yml"


DBT_SOURCES: tuple[DbtSource, ...] = (
    DbtSource("crm", "HubSpot-like CRM export", ("crm_contacts",)),
    DbtSource("privacy", "GDPR consent log and erasure requests", ("gdpr_consents", "erasure_requests")),
    DbtSource("segment", "Segment Spec web and app events", ("web_events",)),
    DbtSource(
        "shop", "Shop backend: carts, orders and product rejections", ("cart_events", "product_rejections")
    ),
    DbtSource("support", "Zendesk-like support ticket export", ("support_interactions",)),
    DbtSource("surveys", "NPS survey answers", ("nps_responses",)),
)


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(text, ensure_ascii=False)


def _sentence(text: str) -> str:
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def column_description(source: str, column: str) -> str:
    """The column's meaning plus the rules ingestion enforces on it (allowed values, range, required)."""
    parts = [_sentence(raw_column_descriptions(source)[column])]
    field = next((f for f in CONTRACTS[source].fields if f.column == column), None)
    if field is not None:
        if field.allowed:
            parts.append(f"One of: {', '.join(field.allowed)}.")
        if field.min_value is not None and field.max_value is not None:
            parts.append(f"From {field.min_value:g} to {field.max_value:g}.")
        elif field.min_value is not None:
            parts.append(f"At least {field.min_value:g}.")
        if field.required:
            parts.append("Required.")
    return " ".join(parts)


def render_source_yaml(dbt_source: DbtSource) -> str:
    lines = [
        "# Generated from cx_pipeline/contracts.py by `python -m cx_pipeline.dbt_sources` (make contracts);",
        "# do not edit by hand.",
        "version: 2",
        "",
        "sources:",
        f"  - name: {dbt_source.name}",
        f"    description: {_quoted(dbt_source.description + ', loaded by the Dagster ingestion assets.')}",
        f"    schema: {RAW_SCHEMA}",
        "    config:",
        "      # Freshness thresholds for `dbt source freshness`: dbt_project.yml, under sources:.",
        "      loaded_at_field: _loaded_at",
        "    tables:",
    ]
    for table in dbt_source.tables:
        lines += [
            f"      - name: {table}",
            f"        description: {_quoted(CONTRACTS[table].description)}",
            "        config:",
            "          meta:",
            "            dagster:",
            f'              asset_key: ["{RAW_SCHEMA}", "{table}"]',
            "        columns:",
        ]
        for column, duckdb_type in raw_table_columns(table).items():
            lines += [
                f"          - name: {column}",
                f"            data_type: {duckdb_type.lower()}",
                f"            description: {_quoted(column_description(table, column))}",
            ]
    return "\n".join(lines) + "\n"


def write_sources_yaml() -> list[Path]:
    written = []
    for dbt_source in DBT_SOURCES:
        dbt_source.path.write_text(render_source_yaml(dbt_source), encoding="utf-8")
        written.append(dbt_source.path)
    return written


if __name__ == "__main__":
    for written_path in write_sources_yaml():
        print(written_path)
