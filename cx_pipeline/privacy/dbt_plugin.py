"""dbt-duckdb plugin: gives every connection and cursor dbt uses the keyed hash ``cx360_keyed_hash(value)``.

Enabled in ``dbt_project/profiles.yml`` under ``plugins: [{module: cx_pipeline.privacy.dbt_plugin}]``. The key
is read when dbt starts (see :mod:`cx_pipeline.privacy.keys`). The macro is plain DuckDB SQL; the key's
HMAC pads are connection variables set here, bound as parameters, so the key never appears in compiled SQL,
``target/``, dbt's logs or the warehouse file.

dbt-duckdb opens one DuckDB connection (``configure_connection``) and runs every model on a cursor of it
(``configure_cursor``). DuckDB keeps variables and temp macros per connection, and a cursor is a new one,
so both hooks register them. ``configure_connection`` also stores the macro (text only) in the warehouse's
``main`` schema, so the staging views that call it bind on any connection: one without the key gets a
clear error when a hash is actually computed instead of silent nulls. It also creates the privacy tables
the Python assets own (``erasure.ensure_privacy_tables``, the one definition of their DDL) when they are
absent, so the staging views that filter on the suppression list, declared to dbt as the source
``cx360_privacy.suppressed_identifiers``, compile on a fresh warehouse; and the CLV asset's
``marts.customer_clv`` (``cx_pipeline/cx/clv_table.py``), so the data tests on the dbt source
``cx360_python.customer_clv`` have a table to read before the first CLV run.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from cx_pipeline.cx.clv_table import ensure_clv_table
from cx_pipeline.privacy.erasure import ensure_privacy_tables
from cx_pipeline.privacy.keys import install_persistent_macro, load_key, register_udfs


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self._key = load_key()

    def configure_connection(self, conn) -> None:
        register_udfs(conn, self._key)
        install_persistent_macro(conn)
        ensure_privacy_tables(conn)
        ensure_clv_table(conn)

    def configure_cursor(self, cursor) -> None:
        register_udfs(cursor, self._key)
