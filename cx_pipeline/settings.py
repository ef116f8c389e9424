"""Every environment variable cx360 reads: its name, type, default, accepted values and meaning.

This module is the only one that reads ``CX360_*`` variables (and ``DAGSTER_HOME``). Values are read when
asked for (:meth:`Settings.from_env`, :meth:`Paths.from_env`, or one :class:`Variable`'s ``read()``), never
at import time, so a test or a command that sets a variable sees it. A value that cannot be used raises
:class:`SettingError` naming the variable, the value and what is accepted.

Relative paths are resolved against the project root so the CLI, tests, ``dagster dev`` and dbt agree.
``CX360_WAREHOUSE`` names the DuckDB file for both the Dagster resources and dbt's ``profiles.yml``.
The README's table of variables and ``.env.example`` are generated from :data:`VARIABLES`
(``python -m cx_pipeline.settings readme-table`` / ``env-example``; tests/test_settings.py checks them).
"""

from __future__ import annotations

import math
import os
import re
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Generic, TypeVar

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# The project's own Dagster instance, and the dagster.yaml a new instance folder starts from.
PROJECT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"
DAGSTER_YAML = "dagster.yaml"

T = TypeVar("T")


class SettingError(ValueError):
    """An environment variable holds a value cx360 cannot use."""


@dataclass(frozen=True)
class Variable(Generic[T]):
    """One environment variable: ``read()`` parses its value, or its ``default`` when unset or empty."""

    name: str
    default: str
    parse: Callable[[str], T] = field(repr=False)
    accepted: str
    meaning: str
    # Never echo the value (in errors or anywhere else).
    secret: bool = False

    def value(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The value as set in ``environ`` (default: the process's environment); None when unset or empty."""
        return (os.environ if environ is None else environ).get(self.name) or None

    def read(self, environ: Mapping[str, str] | None = None) -> T:
        value = self.value(environ)
        return self._parse(self.default if value is None else value)

    def _parse(self, value: str) -> T:
        try:
            return self.parse(value.strip())
        except (ValueError, OverflowError) as error:
            # A secret's parse error may quote the value: neither is shown.
            what = f"{value!r} cannot be used: {error}"
            if self.secret:
                what = "(the value is secret) cannot be used"
            raise SettingError(f"{self.name}={what}. Accepted: {self.accepted}.") from None

    @property
    def documented_default(self) -> str:
        return f"`{self.default}`"


@dataclass(frozen=True)
class OptionalVariable(Variable[T]):
    """A variable whose absence means something of its own (``unset_means``) rather than a default value."""

    default: None  # type: ignore[assignment]
    unset_means: str = ""

    def read(self, environ: Mapping[str, str] | None = None) -> T | None:  # type: ignore[override]
        value = self.value(environ)
        return None if value is None else self._parse(value)

    @property
    def documented_default(self) -> str:
        return self.unset_means


# --- parsers: each raises ValueError saying what is wrong (Variable.read adds the name and value) ---


def project_path(text: str) -> Path:
    """``~`` expanded; a relative path is taken from the project root."""
    if not text:
        raise ValueError("the path is blank")
    path = Path(text).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


# A size as DuckDB's memory_limit takes it: a number and a unit (KB..TB of 1000^i, KiB..TiB of 1024^i, K..T
# alone mean KB..TB), or a share of the machine's memory.
_MEMORY_SIZE = re.compile(r"^(?P<number>\d+(\.\d+)?)\s*(?P<unit>[KMGT](i?B)?|%)$", re.IGNORECASE)


def _memory_limit(text: str) -> str:
    size = _MEMORY_SIZE.match(text)
    if size is None:
        raise ValueError("not a size with a unit")
    number = float(size["number"])
    if number <= 0 or (size["unit"] == "%" and number > 100):
        raise ValueError("out of range")
    return text


# DuckDB's compression methods (``force_compression``); `auto` lets DuckDB choose per column.
COMPRESSION_METHODS = (
    "auto",
    "uncompressed",
    "rle",
    "dictionary",
    "pfor",
    "bitpacking",
    "fsst",
    "alp",
    "alprd",
    "zstd",
    "roaring",
    "dict_fsst",
)


def _compression(text: str) -> str:
    method = text.lower()
    if method not in COMPRESSION_METHODS:
        raise ValueError("not a DuckDB compression method")
    return method


# GDPR Art. 12(3): without undue delay, within one month at the latest. Runs are daily, so leave a margin.
MAX_ERASURE_WINDOW = timedelta(days=21)


def _erasure_window(text: str) -> timedelta:
    try:
        hours = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(hours) or not 0 <= hours <= MAX_ERASURE_WINDOW / timedelta(hours=1):
        raise ValueError("out of range")
    return timedelta(hours=hours)


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError("not a whole number") from None
    if number < 1:
        raise ValueError("not a positive number")
    return number


_BYTE_SCAN_MODES = {
    "auto": "auto",
    "always": "always",
    "1": "always",
    "true": "always",
    "yes": "always",
    "never": "never",
    "0": "never",
    "false": "never",
    "no": "never",
}


def _byte_scan(text: str) -> str:
    mode = _BYTE_SCAN_MODES.get(text.lower())
    if mode is None:
        raise ValueError("not a byte scan mode")
    return mode


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError("not a number") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError("not a number of seconds >= 0")
    return seconds


_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _boolean(text: str) -> bool:
    value = _BOOLEANS.get(text.lower())
    if value is None:
        raise ValueError("not true or false")
    return value


# --- the variables, in the order the README lists them ---

WAREHOUSE = Variable(
    "CX360_WAREHOUSE",
    "data/cx360.duckdb",
    project_path,
    "a file path (relative to the project root, `~` expanded)",
    "the DuckDB warehouse, for Dagster and dbt (`profiles.yml`) alike",
)
LANDING_DIR = Variable(
    "CX360_LANDING_DIR",
    "data/landing",
    project_path,
    "a folder path (relative to the project root, `~` expanded)",
    "where source files arrive: `<landing>/<source>/` holds `*.csv` or `*.jsonl` files (docs/sources.md)",
)
TRUTH_DIR = Variable(
    "CX360_TRUTH_DIR",
    "data/truth",
    project_path,
    "a folder path (relative to the project root, `~` expanded)",
    "the generator's ground truth, for tests and benchmarks; the pipeline never reads it",
)
EXPORTS_DIR = Variable(
    "CX360_EXPORTS_DIR",
    "data/exports",
    project_path,
    "a folder path (relative to the project root, `~` expanded)",
    "marketing audience exports, one folder per audience",
)
SERVING_DIR = Variable(
    "CX360_SERVING_DIR",
    "data/serving",
    project_path,
    "a folder path (relative to the project root, `~` expanded)",
    "the published read-only copy for BI (`cx360_bi.duckdb`)",
)
QUARANTINE_DIR = Variable(
    "CX360_QUARANTINE_DIR",
    "data/quarantine",
    project_path,
    "a folder path (relative to the project root, `~` expanded)",
    "copies of landing files that could not be read at all (binary, compressed, unscannable)",
)
REPORTS_DIR = OptionalVariable(
    "CX360_REPORTS_DIR",
    None,
    project_path,
    "a folder path (relative to the project root, `~` expanded)",
    "where the CX report `cx_report.html` is written",
    unset_means="`reports/` beside the warehouse",
)
DEFAULT_LANDING_SETTLE_SECONDS = 10.0
LANDING_SETTLE_SECONDS = Variable(
    "CX360_LANDING_SETTLE_SECONDS",
    f"{DEFAULT_LANDING_SETTLE_SECONDS:g}",
    _seconds,
    "a number of seconds, 0 or more",
    "a landing file modified less than this many seconds ago may still be being written: it waits for the "
    "next run (as does a file that changes while it is read); `0` reads every file at once",
)
EXPORTS_CSV_BOM = Variable(
    "CX360_EXPORTS_CSV_BOM",
    "false",
    _boolean,
    "`true` (or `1`, `yes`, `on`) or `false` (or `0`, `no`, `off`)",
    "start audience CSVs with a UTF-8 byte-order mark (Excel on Windows needs it for accented names)",
)
DUCKDB_MEMORY_LIMIT = Variable(
    "CX360_DUCKDB_MEMORY_LIMIT",
    "4GB",
    _memory_limit,
    "a size with a unit (`KB`, `MB`, `GB`, `TB`, or `KiB`...`TiB`), such as `4GB` or `512MiB`, or a share of "
    "the machine's memory from `1%` to `100%`",
    "DuckDB's memory limit for the pipeline's connections (dbt's too); beyond it DuckDB spills to disk",
)
DUCKDB_FORCE_COMPRESSION = Variable(
    "CX360_DUCKDB_FORCE_COMPRESSION",
    "auto",
    _compression,
    ", ".join(f"`{method}`" for method in COMPRESSION_METHODS),
    "DuckDB's `force_compression` for every pipeline connection (dbt's too); `uncompressed` is the "
    "forensic mode in which the erasure verification's byte scan is conclusive (docs/privacy.md)",
)
ERASURE_WINDOW_HOURS = Variable(
    "CX360_ERASURE_WINDOW_HOURS",
    "0",
    _erasure_window,
    f"a number of hours from 0 to {MAX_ERASURE_WINDOW // timedelta(hours=1)}",
    "erasure requests loaded less than this many hours ago may wait for a later run, to be executed in a "
    f"batch (at most {MAX_ERASURE_WINDOW // timedelta(hours=1)}); their people leave the exports at once "
    "either way (docs/privacy.md)",
)
PRIVACY_SCAN_VALUES_PER_PASS = Variable(
    "CX360_PRIVACY_SCAN_VALUES_PER_PASS",
    "20000000",
    _positive_int,
    "a whole number of at least 1",
    "the erasure and verification table scans pack their column families (columns of one name) into "
    "passes of about this many distinct values (a family counts its largest column; a table over 5 M rows "
    "is sampled to estimate it), so a pass fits in memory and each column is read once; a larger family is "
    "split by hash (the raw tables of 100k customers take 5 passes)",
)
PRIVACY_BYTE_SCAN = Variable(
    "CX360_PRIVACY_BYTE_SCAN",
    "auto",
    _byte_scan,
    "`auto`, `always` (or `1`, `true`, `yes`), `never` (or `0`, `false`, `no`)",
    "the erasure verification's scan of the file's bytes: `auto` runs it only with "
    "`CX360_DUCKDB_FORCE_COMPRESSION=uncompressed`, where it proves something; `always` or `never`",
)
KEY_FILE = Variable(
    "CX360_KEY_FILE",
    ".secrets/cx360.key",
    project_path,
    "a file path (relative to the project root, `~` expanded)",
    "the pseudonymisation key file, created with a random key on first use (docs/privacy.md)",
)
PSEUDONYMISATION_KEY = OptionalVariable(
    "CX360_PSEUDONYMISATION_KEY",
    None,
    str,
    "at least 16 bytes, e.g. `python -c 'import secrets; print(secrets.token_hex(32))'`",
    "the pseudonymisation key itself; when set, it is used instead of the key file",
    unset_means="unset (the key file is used)",
    secret=True,
)
DAGSTER_HOME = Variable(
    "DAGSTER_HOME",
    ".dagster_home",
    project_path,
    "a folder path (relative to the project root, `~` expanded)",
    "the Dagster instance (runs, logs) of `cx360 run` and `cx360 ui`; a new one gets the project's "
    "`dagster.yaml`, and one whose `dagster.yaml` says nothing about telemetry gets it turned off",
)

VARIABLES: tuple[Variable, ...] = (
    WAREHOUSE,
    LANDING_DIR,
    TRUTH_DIR,
    EXPORTS_DIR,
    SERVING_DIR,
    QUARANTINE_DIR,
    REPORTS_DIR,
    LANDING_SETTLE_SECONDS,
    EXPORTS_CSV_BOM,
    DUCKDB_MEMORY_LIMIT,
    DUCKDB_FORCE_COMPRESSION,
    ERASURE_WINDOW_HOURS,
    PRIVACY_SCAN_VALUES_PER_PASS,
    PRIVACY_BYTE_SCAN,
    KEY_FILE,
    PSEUDONYMISATION_KEY,
    DAGSTER_HOME,
)


@dataclass(frozen=True)
class Paths:
    """Where cx360 reads and writes."""

    warehouse: Path
    landing: Path
    truth: Path
    exports: Path
    serving: Path
    quarantine: Path
    reports: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Paths:
        warehouse = WAREHOUSE.read(environ)
        return cls(
            warehouse=warehouse,
            landing=LANDING_DIR.read(environ),
            truth=TRUTH_DIR.read(environ),
            exports=EXPORTS_DIR.read(environ),
            serving=SERVING_DIR.read(environ),
            quarantine=QUARANTINE_DIR.read(environ),
            reports=REPORTS_DIR.read(environ) or warehouse.parent / "reports",
        )

    @classmethod
    def defaults(cls) -> Paths:
        """The project's own folders, whatever the environment says (the quick start writes only there)."""
        return cls.from_env(environ={})


@dataclass(frozen=True)
class Settings:
    """Every setting, read and checked at once (the pseudonymisation key stays with privacy.keys).

    A command checks them all before it starts; a function deep inside reads only the variables it needs
    (``VARIABLE.read()``), so one bad value does not break code that does not use it.
    """

    paths: Paths
    duckdb_memory_limit: str
    duckdb_force_compression: str
    erasure_window: timedelta
    privacy_scan_values_per_pass: int
    privacy_byte_scan: str
    key_file: Path
    dagster_home: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls(
            paths=Paths.from_env(environ),
            duckdb_memory_limit=DUCKDB_MEMORY_LIMIT.read(environ),
            duckdb_force_compression=DUCKDB_FORCE_COMPRESSION.read(environ),
            erasure_window=ERASURE_WINDOW_HOURS.read(environ),
            privacy_scan_values_per_pass=PRIVACY_SCAN_VALUES_PER_PASS.read(environ),
            privacy_byte_scan=PRIVACY_BYTE_SCAN.read(environ),
            key_file=KEY_FILE.read(environ),
            dagster_home=DAGSTER_HOME.read(environ),
        )

    @property
    def byte_scan_enabled(self) -> bool:
        return byte_scan_on(self.privacy_byte_scan, self.duckdb_force_compression)


def byte_scan_on(mode: str, compression: str) -> bool:
    """Whether the erasure verification scans the file's bytes (see :data:`PRIVACY_BYTE_SCAN`)."""
    return compression == "uncompressed" if mode == "auto" else mode == "always"


def export_warehouse_env() -> Path:
    """Pin the variables dbt's ``profiles.yml`` reads, so dbt subprocesses open the same file as Dagster.

    The warehouse becomes an absolute path; the DuckDB settings are written out checked, so dbt never falls
    back on the defaults repeated in ``profiles.yml``.
    """
    warehouse = WAREHOUSE.read()
    os.environ[WAREHOUSE.name] = str(warehouse)
    os.environ[DUCKDB_MEMORY_LIMIT.name] = DUCKDB_MEMORY_LIMIT.read()
    os.environ[DUCKDB_FORCE_COMPRESSION.name] = DUCKDB_FORCE_COMPRESSION.read()
    return warehouse


# Appended to a dagster.yaml that says nothing about telemetry (Dagster's default is on).
_TELEMETRY_OFF = "\n# Added by cx360 (cx_pipeline/settings.py): no usage statistics leave this machine.\n"
_TELEMETRY_OFF += "telemetry:\n  enabled: false\n"


def prepare_dagster_home() -> Path:
    """Point ``DAGSTER_HOME`` at an absolute folder (the project's by default) with telemetry off.

    A folder without ``dagster.yaml`` gets a copy of the project's (telemetry off, one warehouse step at a
    time); a ``dagster.yaml`` that does not mention telemetry gets ``telemetry: enabled: false`` appended.
    An explicit ``telemetry: enabled: true`` is the owner's choice and is left alone.
    """
    import yaml

    home = DAGSTER_HOME.read()
    os.environ[DAGSTER_HOME.name] = str(home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / DAGSTER_YAML
    if not config.exists():
        project = (PROJECT_DAGSTER_HOME / DAGSTER_YAML).read_text(encoding="utf-8")
        config.write_text(f"# Copied by cx360 from {DAGSTER_YAML} of the project's own instance.\n{project}")
        return home
    text = config.read_text(encoding="utf-8")
    settings = yaml.safe_load(text) or {}
    telemetry = settings.get("telemetry")
    if "telemetry" not in settings:
        config.write_text(text.rstrip("\n") + "\n" + _TELEMETRY_OFF, encoding="utf-8")
    elif not isinstance(telemetry, dict) or "enabled" not in telemetry:
        settings["telemetry"] = {**(telemetry if isinstance(telemetry, dict) else {}), "enabled": False}
        config.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return home


# --- the documentation generated from VARIABLES ---


def readme_table() -> str:
    """The README's table of environment variables."""
    lines = ["| Environment variable | Default | Meaning |", "| --- | --- | --- |"]
    lines += [f"| `{v.name}` | {v.documented_default} | {v.meaning} |" for v in VARIABLES]
    return "\n".join(lines) + "\n"


def env_example() -> str:
    """The text of ``.env.example``: every variable, commented out at its default."""

    def comment(text: str) -> list[str]:
        return textwrap.wrap(text.replace("`", ""), width=108, initial_indent="# ", subsequent_indent="# ")

    lines = [
        "# cx360's environment variables, each at its default",
        "# (generated from cx_pipeline/settings.py: python -m cx_pipeline.settings env-example).",
        "# cx360 does not read this file: copy it to .env, uncomment (drop the #) what you change and export",
        "# it, e.g.",
        "#   set -a; . ./.env; set +a",
        "# .env is git-ignored: it may hold the pseudonymisation key.",
    ]
    for variable in VARIABLES:
        lines += ["", *comment(variable.meaning), *comment(f"Accepted: {variable.accepted}.")]
        if variable.default is None:
            lines += [*comment(f"Default: {variable.documented_default}."), f"#{variable.name}="]
        else:
            lines.append(f"#{variable.name}={variable.default}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    documents = {"readme-table": readme_table, "env-example": env_example}
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in documents:
        print(f"usage: python -m cx_pipeline.settings {{{','.join(documents)}}}", file=sys.stderr)
        return 2
    print(documents[args[0]](), end="")
    return 0


def landing_settle_seconds() -> float:
    """See :data:`LANDING_SETTLE_SECONDS`."""
    return LANDING_SETTLE_SECONDS.read()


def exports_csv_bom() -> bool:
    """See :data:`EXPORTS_CSV_BOM`."""
    return EXPORTS_CSV_BOM.read()


if __name__ == "__main__":
    sys.exit(main())
