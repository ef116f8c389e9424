"""cx_pipeline.settings: every environment variable is declared, documented and checked in one place."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
import yaml

from cx_pipeline import settings
from cx_pipeline.settings import (
    DAGSTER_YAML,
    PROJECT_ROOT,
    VARIABLES,
    Paths,
    SettingError,
    Settings,
    Variable,
)

NAMES = {variable.name for variable in VARIABLES}
# Knobs of the test suite itself (sizes of its sample data, where a screenshot goes), not of cx360.
TEST_ONLY = re.compile(r"^CX360_\w*(TEST_PERSONS|RESILIENCE_\w+|REPORT_SCREENSHOT|UPDATE_SNAPSHOTS)$")


def _declared(variable: str) -> None:
    assert variable in NAMES, f"{variable} is read or set but not declared in cx_pipeline/settings.py"


# --- documentation: the README's table and .env.example are generated from VARIABLES ---


def test_every_variable_is_documented_once_in_the_readme_table() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \|", readme, flags=re.MULTILINE)
    assert sorted(rows) == sorted(NAMES), "README table and settings.VARIABLES list different variables"
    assert settings.readme_table() in readme, (
        "the README's table differs from settings.py: python -m cx_pipeline.settings readme-table"
    )


def test_env_example_lists_every_variable_at_its_default() -> None:
    text = (PROJECT_ROOT / ".env.example").read_text(encoding="utf-8")
    listed = re.findall(r"^#([A-Z0-9_]+)=", text, flags=re.MULTILINE)
    assert sorted(listed) == sorted(NAMES), ".env.example and settings.VARIABLES list different variables"
    assert text == settings.env_example(), (
        ".env.example differs from settings.py: python -m cx_pipeline.settings env-example > .env.example"
    )
    for variable in VARIABLES:
        assert f"\n#{variable.name}={variable.default or ''}\n" in text
    # Every line is a comment or blank: sourcing it unchanged changes nothing.
    assert all(line == "" or line.startswith("#") for line in text.splitlines())


def test_no_variable_is_used_that_settings_does_not_declare() -> None:
    sources = [*(PROJECT_ROOT / "cx_pipeline").rglob("*.py"), *(PROJECT_ROOT / "benchmarks").rglob("*.py")]
    sources += [PROJECT_ROOT / "dbt_project" / "profiles.yml", PROJECT_ROOT / "Makefile"]
    sources += [*(PROJECT_ROOT / "docs").glob("*.md"), PROJECT_ROOT / "README.md"]
    used = {
        name
        for path in sources
        for name in re.findall(r"\bCX360_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8"))
    }
    assert used, "the search found nothing: the pattern or the folders are wrong"
    for name in sorted(used - {"CX360_"}):
        _declared(name)
    tests = {
        name
        for path in (PROJECT_ROOT / "tests").glob("*.py")
        for name in re.findall(r"\bCX360_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8"))
    }
    for name in sorted(tests):
        if not TEST_ONLY.match(name):
            _declared(name)


def test_only_settings_reads_the_environment_for_cx360_variables() -> None:
    reads = re.compile(r"os\.environ\.get\(|os\.getenv\(|os\.environ\[[^]]+\](?!\s*=)")
    offenders = []
    for path in (PROJECT_ROOT / "cx_pipeline").rglob("*.py"):
        if path.name == "settings.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if reads.search(line) and '"PATH"' not in line:
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert not offenders, "read through cx_pipeline.settings instead:\n" + "\n".join(offenders)


def test_dbt_profile_defaults_are_the_settings_defaults() -> None:
    """profiles.yml repeats the defaults for dbt run by hand; Dagster exports the checked values."""
    profile = (PROJECT_ROOT / "dbt_project" / "profiles.yml").read_text(encoding="utf-8")
    defaults = dict(re.findall(r"env_var\('(\w+)', '([^']*)'\)", profile))
    assert defaults.keys() == {
        settings.WAREHOUSE.name,
        settings.DUCKDB_MEMORY_LIMIT.name,
        settings.DUCKDB_FORCE_COMPRESSION.name,
    }
    for variable in (settings.DUCKDB_MEMORY_LIMIT, settings.DUCKDB_FORCE_COMPRESSION):
        assert defaults[variable.name] == variable.default
    # dbt resolves the path from dbt_project/, settings from the project root: the same file.
    warehouse = (settings.DBT_PROJECT_DIR / defaults[settings.WAREHOUSE.name]).resolve()
    assert warehouse == settings.WAREHOUSE.read({})


# --- parsing and validation ---


def test_defaults_when_unset_or_empty() -> None:
    for environ in ({}, {variable.name: "" for variable in VARIABLES}):
        loaded = Settings.from_env(environ)
        assert loaded.paths == Paths(
            warehouse=PROJECT_ROOT / "data" / "cx360.duckdb",
            landing=PROJECT_ROOT / "data" / "landing",
            truth=PROJECT_ROOT / "data" / "truth",
            exports=PROJECT_ROOT / "data" / "exports",
            serving=PROJECT_ROOT / "data" / "serving",
            quarantine=PROJECT_ROOT / "data" / "quarantine",
            reports=PROJECT_ROOT / "data" / "reports",
        )
        assert loaded.duckdb_memory_limit == "4GB"
        assert loaded.duckdb_force_compression == "auto"
        assert loaded.erasure_window == timedelta(0)
        assert loaded.privacy_scan_values_per_pass == 20_000_000
        assert loaded.privacy_byte_scan == "auto"
        assert loaded.key_file == PROJECT_ROOT / ".secrets" / "cx360.key"
        assert loaded.dagster_home == PROJECT_ROOT / ".dagster_home"
        assert settings.PSEUDONYMISATION_KEY.read(environ) is None


def test_paths_relative_absolute_home_and_blank(tmp_path: Path) -> None:
    name = settings.LANDING_DIR.name
    assert Paths.from_env({name: "elsewhere/in"}).landing == PROJECT_ROOT / "elsewhere" / "in"
    assert Paths.from_env({name: f"  {tmp_path}  "}).landing == tmp_path
    assert Paths.from_env({name: "~/drop"}).landing == Path("~/drop").expanduser()
    with pytest.raises(SettingError, match=rf"{name}='   ' cannot be used: the path is blank\. Accepted: "):
        Paths.from_env({name: "   "})


def test_reports_go_beside_the_warehouse_unless_set(tmp_path: Path) -> None:
    warehouse = tmp_path / "w" / "cx360.duckdb"
    assert Paths.from_env({settings.WAREHOUSE.name: str(warehouse)}).reports == tmp_path / "w" / "reports"
    configured = {settings.WAREHOUSE.name: str(warehouse), settings.REPORTS_DIR.name: str(tmp_path / "r")}
    assert Paths.from_env(configured).reports == tmp_path / "r"


def test_values_are_read_when_asked_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.ERASURE_WINDOW_HOURS.name, "12")
    assert Settings.from_env().erasure_window == timedelta(hours=12)
    monkeypatch.setenv(settings.ERASURE_WINDOW_HOURS.name, "24")
    assert Settings.from_env().erasure_window == timedelta(hours=24)


@pytest.mark.parametrize("value", ["4GB", "512MB", "8GiB", "1.5 GB", "2g", "50%", "100%", "300 MiB"])
def test_memory_limits_duckdb_accepts(value: str) -> None:
    limit = settings.DUCKDB_MEMORY_LIMIT.read({settings.DUCKDB_MEMORY_LIMIT.name: value})
    connection = duckdb.connect(config={"memory_limit": limit})  # DuckDB takes it as it is
    connection.close()


@pytest.mark.parametrize("value", ["4096", "lots", "4XB", "0GB", "-1", "150%", "0%", "4 G B"])
def test_memory_limits_refused_with_the_variable_value_and_what_is_accepted(value: str) -> None:
    name = settings.DUCKDB_MEMORY_LIMIT.name
    with pytest.raises(SettingError) as error:
        settings.DUCKDB_MEMORY_LIMIT.read({name: value})
    message = str(error.value)
    assert message.startswith(f"{name}={value!r} cannot be used")
    assert "Accepted: a size with a unit" in message


@pytest.mark.parametrize("method", settings.COMPRESSION_METHODS)
def test_every_accepted_compression_method_is_one_duckdb_takes(method: str) -> None:
    name = settings.DUCKDB_FORCE_COMPRESSION.name
    assert settings.DUCKDB_FORCE_COMPRESSION.read({name: method.upper()}) == method
    duckdb.connect(config={"force_compression": method}).close()


def test_an_unknown_compression_method_is_refused() -> None:
    name = settings.DUCKDB_FORCE_COMPRESSION.name
    accepted = "Accepted: `auto`, `uncompressed`"
    with pytest.raises(SettingError, match=rf"^{name}='gzip' cannot be used: .*{accepted}"):
        settings.DUCKDB_FORCE_COMPRESSION.read({name: "gzip"})


@pytest.mark.parametrize(("value", "hours"), [("0", 0), ("48", 48), (" 1.5 ", 1.5), ("504", 504)])
def test_erasure_windows(value: str, hours: float) -> None:
    environ = {settings.ERASURE_WINDOW_HOURS.name: value}
    assert settings.ERASURE_WINDOW_HOURS.read(environ) == timedelta(hours=hours)


@pytest.mark.parametrize("value", ["-1", "soon", "505", "nan", "inf", "1e400"])
def test_erasure_windows_refused(value: str) -> None:
    name = settings.ERASURE_WINDOW_HOURS.name
    accepted = r"Accepted: a number of hours from 0 to 504\."
    with pytest.raises(SettingError, match=rf"^{name}='{value}' .*{accepted}"):
        settings.ERASURE_WINDOW_HOURS.read({name: value})
    assert math.isclose(settings.MAX_ERASURE_WINDOW / timedelta(hours=1), 504)


def test_values_per_pass() -> None:
    name = settings.PRIVACY_SCAN_VALUES_PER_PASS.name
    assert settings.PRIVACY_SCAN_VALUES_PER_PASS.read({name: "1"}) == 1
    assert settings.PRIVACY_SCAN_VALUES_PER_PASS.read({name: "5_000_000"}) == 5_000_000
    for bad in ("0", "-3", "1.5", "many"):
        with pytest.raises(SettingError, match=rf"^{name}='{bad}' .*Accepted: a whole number of at least 1"):
            settings.PRIVACY_SCAN_VALUES_PER_PASS.read({name: bad})


@pytest.mark.parametrize(
    ("mode", "compression", "enabled"),
    [
        ("auto", "auto", False),
        ("auto", "uncompressed", True),
        ("AUTO", "zstd", False),
        ("always", "auto", True),
        ("yes", "auto", True),
        ("1", "auto", True),
        ("never", "uncompressed", False),
        ("false", "uncompressed", False),
        ("0", "uncompressed", False),
    ],
)
def test_byte_scan_modes(mode: str, compression: str, enabled: bool) -> None:
    environ = {settings.PRIVACY_BYTE_SCAN.name: mode, settings.DUCKDB_FORCE_COMPRESSION.name: compression}
    assert Settings.from_env(environ).byte_scan_enabled is enabled


def test_an_unknown_byte_scan_mode_is_refused_not_taken_for_auto() -> None:
    name = settings.PRIVACY_BYTE_SCAN.name
    with pytest.raises(SettingError, match=rf"^{name}='sometimes' .*Accepted: `auto`, `always`"):
        Settings.from_env({name: "sometimes"})


def test_a_secret_value_is_never_echoed() -> None:
    secret = Variable("EXAMPLE_SECRET", "1", int, "a number", "an example", secret=True)
    with pytest.raises(SettingError) as error:
        secret.read({"EXAMPLE_SECRET": "hunter2-hunter2"})
    assert "hunter2" not in str(error.value) and "EXAMPLE_SECRET" in str(error.value)
    assert "hunter2" not in repr(settings.PSEUDONYMISATION_KEY)


def test_the_pseudonymisation_key_is_kept_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from cx_pipeline.privacy.keys import PseudonymisationKeyError, load_key

    monkeypatch.setenv(settings.PSEUDONYMISATION_KEY.name, "  " + "k" * 20 + "\n")
    assert load_key() == b"k" * 20
    monkeypatch.setenv(settings.PSEUDONYMISATION_KEY.name, "   ")  # set but blank: refused, no key file
    with pytest.raises(PseudonymisationKeyError):
        load_key()


# --- where the settings are used ---


def test_warehouse_connections_take_the_memory_limit_and_compression(monkeypatch: pytest.MonkeyPatch) -> None:
    from cx_pipeline.privacy.maintenance import connection_config
    from cx_pipeline.warehouse import warehouse_connection_config

    monkeypatch.delenv(settings.DUCKDB_FORCE_COMPRESSION.name, raising=False)
    monkeypatch.setenv(settings.DUCKDB_MEMORY_LIMIT.name, "1GB")
    assert warehouse_connection_config() == {
        "TimeZone": "UTC",
        "autoinstall_known_extensions": False,
        "memory_limit": "1GB",
    }
    assert "force_compression" not in connection_config({"threads": 1})
    monkeypatch.setenv(settings.DUCKDB_FORCE_COMPRESSION.name, "Uncompressed")
    assert warehouse_connection_config()["force_compression"] == "uncompressed"
    assert connection_config({"threads": 1}) == {"threads": 1, "force_compression": "uncompressed"}
    monkeypatch.setenv(settings.DUCKDB_MEMORY_LIMIT.name, "plenty")
    with pytest.raises(SettingError, match=settings.DUCKDB_MEMORY_LIMIT.name):
        warehouse_connection_config()


def test_dbt_gets_the_checked_values(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv(settings.WAREHOUSE.name, "relative/w.duckdb")
    monkeypatch.delenv(settings.DUCKDB_MEMORY_LIMIT.name, raising=False)
    monkeypatch.setenv(settings.DUCKDB_FORCE_COMPRESSION.name, "ZSTD")
    assert settings.export_warehouse_env() == PROJECT_ROOT / "relative" / "w.duckdb"
    assert os.environ[settings.WAREHOUSE.name] == str(PROJECT_ROOT / "relative" / "w.duckdb")
    assert os.environ[settings.DUCKDB_MEMORY_LIMIT.name] == "4GB"
    assert os.environ[settings.DUCKDB_FORCE_COMPRESSION.name] == "zstd"


def test_the_cli_stops_on_a_bad_setting_before_any_work(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from cx_pipeline.cli import main

    monkeypatch.setenv(settings.LANDING_DIR.name, str(tmp_path / "landing"))
    monkeypatch.setenv(settings.ERASURE_WINDOW_HOURS.name, "a fortnight")
    assert main(["run", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "CX360_ERASURE_WINDOW_HOURS='a fortnight' cannot be used" in error
    assert not (tmp_path / "landing").exists()  # nothing generated


def test_the_module_prints_the_readme_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert settings.main(["readme-table"]) == 0
    assert capsys.readouterr().out == settings.readme_table()
    assert settings.main(["nonsense"]) == 2


# --- Dagster's instance: telemetry off whatever DAGSTER_HOME is ---


def _telemetry_enabled(home: Path) -> bool:
    import dagster as dg
    from dagster_shared.telemetry import get_telemetry_enabled_from_dagster_yaml

    with dg.DagsterInstance.get() as instance:
        assert Path(instance.root_directory) == home
        enabled = instance.telemetry_enabled
    # Dagster's lightweight check (CLI commands) must agree with the instance's.
    assert get_telemetry_enabled_from_dagster_yaml() is enabled
    return enabled


def test_a_new_dagster_home_gets_the_project_instance_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "new" / "dagster_home"
    monkeypatch.setenv(settings.DAGSTER_HOME.name, str(home))
    assert settings.prepare_dagster_home() == home
    project = (settings.PROJECT_DAGSTER_HOME / DAGSTER_YAML).read_text(encoding="utf-8")
    copy = (home / DAGSTER_YAML).read_text(encoding="utf-8")
    assert copy.endswith(project) and yaml.safe_load(copy) == yaml.safe_load(project)
    assert _telemetry_enabled(home) is False


def test_an_instance_config_without_telemetry_gets_it_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    original = "# someone's instance\nrun_queue:\n  max_concurrent_runs: 3\n"
    (home / DAGSTER_YAML).write_text(original, encoding="utf-8")
    monkeypatch.setenv(settings.DAGSTER_HOME.name, str(home))
    monkeypatch.delenv("DAGSTER_DISABLE_TELEMETRY", raising=False)
    settings.prepare_dagster_home()
    text = (home / DAGSTER_YAML).read_text(encoding="utf-8")
    assert text.startswith(original)  # their settings and comments kept
    assert yaml.safe_load(text)["run_queue"] == {"max_concurrent_runs": 3}
    assert _telemetry_enabled(home) is False
    settings.prepare_dagster_home()  # idempotent
    assert (home / DAGSTER_YAML).read_text(encoding="utf-8") == text

    for unsaid in ("telemetry: {}\n", "telemetry:\n"):
        (home / DAGSTER_YAML).write_text(unsaid, encoding="utf-8")
        settings.prepare_dagster_home()
        written = yaml.safe_load((home / DAGSTER_YAML).read_text(encoding="utf-8"))
        assert written["telemetry"] == {"enabled": False}
        assert _telemetry_enabled(home) is False


def test_an_explicit_telemetry_choice_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / DAGSTER_YAML).write_text("telemetry:\n  enabled: true\n", encoding="utf-8")
    monkeypatch.setenv(settings.DAGSTER_HOME.name, str(home))
    settings.prepare_dagster_home()
    assert (home / DAGSTER_YAML).read_text(encoding="utf-8") == "telemetry:\n  enabled: true\n"


def test_a_relative_dagster_home_is_taken_from_the_project_root(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv(settings.DAGSTER_HOME.name, ".dagster_home")
    assert Settings.from_env().dagster_home == settings.PROJECT_DAGSTER_HOME
    # The project's own instance is the template: telemetry off there too.
    project = yaml.safe_load((settings.PROJECT_DAGSTER_HOME / DAGSTER_YAML).read_text(encoding="utf-8"))
    assert project["telemetry"] == {"enabled": False}
    assert os.environ[settings.DAGSTER_HOME.name] == ".dagster_home"  # reading changes nothing


# --- the Dagster project's configuration points at what exists ---


def test_the_code_location_has_one_name_and_the_dg_config_points_at_real_modules() -> None:
    import importlib.util
    import tomllib

    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text(encoding="utf-8"))
    [location] = [entry["python_module"] for entry in workspace["load_from"]]
    dagster, dg_project = pyproject["tool"]["dagster"], pyproject["tool"]["dg"]["project"]
    # dg warns at every load when its name differs from the workspace's (it defaults to the folder's name).
    assert location["location_name"] == dagster["code_location_name"] == dg_project["code_location_name"]
    assert location["module_name"] == dagster["module_name"]
    modules = [
        dagster["module_name"],
        dg_project["root_module"],
        dg_project.get("defs_module", "cx_pipeline.defs"),
    ]
    modules += [name.removesuffix(".*") for name in dg_project.get("registry_modules", [])]
    for module in modules:
        assert importlib.util.find_spec(module) is not None, (
            f"pyproject.toml names {module}, which does not exist"
        )
