"""Privacy: consent-gated exports, erasure (right to be forgotten), the suppression list and keyed hashes.

Kept free of Dagster imports so dbt (through :mod:`cx_pipeline.privacy.dbt_plugin`) can load it cheaply.
Rules and flows: docs/privacy.md.
"""
