"""dbt-duckdb plugin: registers ``cx360_keyed_hash(varchar)`` on every connection dbt opens.

Enabled in ``dbt_project/profiles.yml`` under ``plugins: [{module: cx_pipeline.privacy.dbt_plugin}]``. The key
is read when dbt starts (see :mod:`cx_pipeline.privacy.keys`), so models call the function by name and the
key never appears in compiled SQL.
"""

from __future__ import annotations

from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from cx_pipeline.privacy.keys import load_key, register_udfs


class Plugin(BasePlugin):
    def initialize(self, plugin_config: dict[str, Any]) -> None:
        self._key = load_key()

    def configure_connection(self, conn) -> None:
        register_udfs(conn, self._key)
