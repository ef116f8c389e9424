"""The client side of the serving copy: where it is and how BI opens it (read-only, locked down, UTC).

Publishing lives in :mod:`cx_pipeline.serving`; see docs/serving.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from cx_pipeline.operations import ExplainedFileNotFoundError
from cx_pipeline.warehouse import locked_error

SERVING_FILE_NAME = "cx360_bi.duckdb"

# What a BI consumer needs and nothing more: no writes, no files or network, no extension downloads, and
# no way for a query to switch any of that back on.
SERVING_READONLY_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


class ServingCopyMissingError(ExplainedFileNotFoundError):
    """No serving copy has been published at the path yet."""


def serving_file(serving_dir: Path | str) -> Path:
    return Path(serving_dir) / SERVING_FILE_NAME


def open_serving_readonly(path: Path | str) -> duckdb.DuckDBPyConnection:
    """Open a published serving copy read-only and locked down, in UTC.

    Close the connection to see a newer publish: DuckDB keeps one database instance per path in a process,
    so a second connection opened while the first is still open shares the first one's (old) file.
    """
    path = Path(path)
    if not path.is_file():
        raise ServingCopyMissingError(
            f"No serving copy at {path} yet: materialize the asset serving/cx360_bi (`make run`, or "
            "`cx360 run`), or check CX360_SERVING_DIR.",
            path,
        )
    # TimeZone cannot be passed in `config` once extension autoloading is off; set it, then lock.
    unlocked = {key: value for key, value in SERVING_READONLY_CONFIG.items() if key != "lock_configuration"}
    try:
        connection = duckdb.connect(str(path), read_only=True, config=unlocked)
    except duckdb.IOException as error:
        locked = locked_error(path, error)
        if locked is not None:
            raise locked from error
        raise
    try:
        connection.execute("SET TimeZone = 'UTC'")
        connection.execute("SET lock_configuration = true")
    except BaseException:
        connection.close()
        raise
    return connection
