"""A wrong landing folder is refused before anything is written (issue #22.1).

Before the fix, `CX360_LANDING_DIR=/typo cx360 run` created the folder, wrote 2,000 synthetic people into
it, rewrote data/truth/ and built the warehouse, exports and BI copy from them; on a warehouse holding real
deliveries, the same-named sample files replaced the real files' rows. The sample is now written only into
the project's own empty data/landing (the quick start) or when asked with `--sample`, and never beside a
warehouse that already holds loaded files.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster_duckdb import DuckDBResource
from ingestion_fixtures import GOOD_LANDING, copy_landing

from cx_pipeline import cli
from cx_pipeline.defs.ingestion import RAW_ASSETS
from cx_pipeline.ingestion.loader import load_source
from cx_pipeline.operations import (
    LandingDirEmptyError,
    LandingDirMissingError,
    SampleWouldReplaceDataError,
    should_generate_sample,
)
from cx_pipeline.settings import Paths
from cx_pipeline.warehouse import connect


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every cx360 folder under tmp_path; the landing folder is not created."""
    for variable, name in {
        "CX360_LANDING_DIR": "landing",
        "CX360_TRUTH_DIR": "truth",
        "CX360_WAREHOUSE": "cx360.duckdb",
        "CX360_EXPORTS_DIR": "exports",
        "CX360_SERVING_DIR": "serving",
        "CX360_QUARANTINE_DIR": "quarantine",
    }.items():
        monkeypatch.setenv(variable, str(tmp_path / name))
    return tmp_path


def _warehouse_with_loaded_files(tmp_path: Path) -> Path:
    landing = copy_landing(GOOD_LANDING, tmp_path / "real_landing")
    warehouse = tmp_path / "cx360.duckdb"
    with connect(warehouse) as connection:
        load_source(connection, "crm_contacts", landing, tmp_path / "quarantine")
    return warehouse


def _decide(landing: Path, *, default: bool = False, sample: bool = False, loaded: int = 0) -> bool:
    return should_generate_sample(
        landing,
        is_project_default=default,
        sample_requested=sample,
        warehouse=landing.parent / "cx360.duckdb",
        count_loaded_files=lambda: loaded,
    )


def test_a_folder_with_files_is_used_as_it_is(tmp_path: Path) -> None:
    landing = copy_landing(GOOD_LANDING, tmp_path / "landing")
    for default in (False, True):
        for sample in (False, True):
            assert _decide(landing, default=default, sample=sample, loaded=120) is False


def test_the_quick_start_fills_only_the_projects_own_empty_folder(tmp_path: Path) -> None:
    assert _decide(tmp_path / "landing", default=True) is True
    (tmp_path / "empty").mkdir()
    assert _decide(tmp_path / "empty", default=True) is True
    assert _decide(tmp_path / "empty", sample=True) is True


def test_a_named_folder_that_is_missing_or_empty_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(LandingDirMissingError, match="does not exist"):
        _decide(tmp_path / "typo")
    (tmp_path / "unmounted").mkdir()
    (tmp_path / "unmounted" / "crm_contacts").mkdir()  # source folders without files count as empty
    with pytest.raises(LandingDirEmptyError, match="holds no source files") as raised:
        _decide(tmp_path / "unmounted")
    assert str(tmp_path / "unmounted") in str(raised.value)
    assert "--sample" in str(raised.value) and "Nothing was changed" in str(raised.value)


def test_the_sample_is_never_written_beside_loaded_deliveries(tmp_path: Path) -> None:
    for default, sample in ((True, False), (False, True), (True, True)):
        with pytest.raises(SampleWouldReplaceDataError, match="already holds 120 loaded landing files"):
            _decide(tmp_path / "landing", default=default, sample=sample, loaded=120)


def test_run_refuses_a_missing_folder_and_writes_nothing(
    folders: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["run", "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert "LandingDirMissingError" not in error  # one explained line, no traceback
    assert f"The landing folder {folders / 'landing'} does not exist" in error
    assert sorted(path.name for path in folders.iterdir()) == []  # no landing, truth, warehouse, exports


def test_run_refuses_an_empty_folder_and_writes_nothing(
    folders: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (folders / "landing").mkdir()
    assert cli.main(["run", "--no-progress"]) == 2
    assert "holds no source files" in capsys.readouterr().err
    assert sorted(path.name for path in folders.rglob("*")) == ["landing"]


def test_run_with_sample_refuses_a_warehouse_holding_real_deliveries(
    folders: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = _warehouse_with_loaded_files(folders)
    before = warehouse.read_bytes()
    assert cli.main(["run", "--sample", "--no-progress"]) == 2
    assert "already holds" in capsys.readouterr().err
    assert not (folders / "landing").exists() and not (folders / "truth").exists()
    assert warehouse.read_bytes() == before


def test_sample_asked_for_is_generated_into_the_named_folder(
    folders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generated: list[tuple[Path, Path]] = []

    class _Summary:
        def describe(self) -> str:
            return "sample written"

    def fake_generate(config, progress: bool) -> _Summary:
        generated.append((config.landing_dir, config.truth_dir))
        return _Summary()

    monkeypatch.setattr("cx_pipeline.generator.generate", fake_generate)
    paths = Paths.from_env()
    with pytest.raises(LandingDirMissingError):
        cli._needs_sample(paths, sample_requested=False)
    assert cli._needs_sample(paths, sample_requested=True) is True
    cli._generate_sample(paths, progress=False)
    assert generated == [(folders / "landing", folders / "truth")]


def test_the_project_default_folder_is_recognised_whatever_the_spelling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CX360_LANDING_DIR", raising=False)
    assert Paths.from_env().landing == Paths.defaults().landing
    monkeypatch.setenv("CX360_LANDING_DIR", "data/landing")
    assert Paths.from_env().landing == Paths.defaults().landing
    monkeypatch.setenv("CX360_LANDING_DIR", "/typo")
    assert Paths.from_env().landing != Paths.defaults().landing


def test_the_ingestion_assets_fail_on_a_missing_folder_without_touching_the_warehouse(folders: Path) -> None:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            RAW_ASSETS,
            resources={"duckdb": DuckDBResource(database=str(folders / "cx360.duckdb"))},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert len(failures) == len(RAW_ASSETS)
    for failure in failures:
        error = failure.step_failure_data.error
        assert "LandingDirMissingError" in error.cause.cls_name
        assert f"The landing folder {folders / 'landing'} does not exist" in error.cause.message
    assert not (folders / "landing").exists() and not (folders / "cx360.duckdb").exists()


def test_a_landing_folder_with_files_never_opens_the_warehouse(
    folders: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second `cx360 run` must reach the run lock and wait; opening the warehouse here would meet the
    first run's DuckDB lock instead."""
    copy_landing(GOOD_LANDING, folders / "landing")

    def locked(_warehouse: Path) -> int:
        raise AssertionError("the warehouse was opened")

    monkeypatch.setattr(cli, "_warehouse_loaded_files", locked)
    assert cli._needs_sample(Paths.from_env(), sample_requested=False) is False
    assert cli._needs_sample(Paths.from_env(), sample_requested=True) is False
