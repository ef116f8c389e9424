"""How dbt is wired into Dagster (cx_pipeline/defs/dbt/): nothing happens on import, the project is parsed
on first use with the dbt beside this Python, and one rule names every dbt asset."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from cx_pipeline.defs.dbt.translator import Cx360DbtTranslator, dbt_asset_key, dbt_node_asset_key
from cx_pipeline.settings import PROJECT_ROOT

# Imports every module of the code location with audit hooks on, then reports what happened.
_IMPORT_PROBE = """
import importlib, json, os, pkgutil, sys

project_dir = os.path.realpath(os.path.join(os.getcwd(), "dbt_project"))
spawned, project_reads = [], []


def audit(event, args):
    if event in ("subprocess.Popen", "os.system", "os.posix_spawn", "os.exec"):
        spawned.append(repr(args[:2]))
    elif event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path.startswith(project_dir + os.sep):
            project_reads.append(path)


sys.addaudithook(audit)
environment = dict(os.environ)
import cx_pipeline.definitions
import cx_pipeline.defs

modules = [m.name for m in pkgutil.walk_packages(cx_pipeline.defs.__path__, "cx_pipeline.defs.")]
for name in modules:
    importlib.import_module(name)
print(json.dumps({
    "package": cx_pipeline.defs.__file__,
    "modules": modules,
    "environment_changes": sorted(
        name for name in set(environment) | set(os.environ) if environment.get(name) != os.environ.get(name)
    ),
    "spawned": spawned,
    "project_reads": project_reads,
}))
"""


def _project_copy(root: Path) -> Path:
    """The code and the dbt project without a parsed manifest (``dbt_project/target``)."""
    ignore = shutil.ignore_patterns("__pycache__", "target", "dbt_packages", "logs")
    for folder in ("cx_pipeline", "dbt_project"):
        shutil.copytree(PROJECT_ROOT / folder, root / folder, ignore=ignore)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def _python(copy: Path, code: str, path: str | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(copy)}
    environment.pop("DAGSTER_IS_DEV_CLI", None)
    if path is not None:
        environment["PATH"] = path
    return subprocess.run(
        [sys.executable, "-c", code], cwd=copy, env=environment, capture_output=True, text=True, check=False
    )


def test_importing_the_code_location_runs_no_dbt_reads_no_manifest_and_leaves_the_environment(
    tmp_path: Path,
) -> None:
    copy = _project_copy(tmp_path)
    result = _python(copy, _IMPORT_PROBE)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert Path(report["package"]).is_relative_to(copy), "imported the working tree, not the copy"
    assert {"cx_pipeline.defs.dbt.assets", "cx_pipeline.defs.dbt.project", "cx_pipeline.defs.serving"} <= set(
        report["modules"]
    )
    assert report["environment_changes"] == []  # not CX360_WAREHOUSE, not PATH
    # (platform.architecture() runs `file` on the interpreter while some library imports: not ours to stop.)
    assert [command for command in report["spawned"] if "dbt" in command] == []  # no `dbt parse`
    assert report["project_reads"] == []  # neither the manifest nor dbt_project.yml
    assert not (copy / "dbt_project" / "target").exists()


@pytest.mark.slow
def test_first_use_parses_the_project_with_the_dbt_beside_python_when_dbt_is_not_on_path(
    tmp_path: Path,
) -> None:
    """No activated virtualenv: ``dbt`` is not on PATH, yet the definitions load (dbt runs by full path)."""
    copy = _project_copy(tmp_path)
    python_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != python_bin)
    code = (
        "import os\n"
        "from cx_pipeline.definitions import defs\n"
        "path = os.environ['PATH']\n"
        "graph = defs().resolve_asset_graph()\n"
        "assert os.environ['PATH'] == path, 'PATH changed'\n"
        "print(len(list(graph.get_all_asset_keys())))\n"
    )
    result = _python(copy, code, path=path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.strip().splitlines()[-1]) > 50
    assert (copy / "dbt_project" / "target" / "manifest.json").exists()


def test_the_dbt_resource_runs_the_dbt_beside_python() -> None:
    from cx_pipeline.defs.dbt.project import dbt_cli_resource

    beside_python = Path(sys.executable).parent / "dbt"
    assert beside_python.exists(), "dbt-core is installed with the project"
    assert dbt_cli_resource().dbt_executable == str(beside_python)


def test_a_models_key_is_its_schema_and_relation_and_sources_are_not_keyed_here() -> None:
    assert dbt_asset_key("marts", "dim_customers") == dg.AssetKey(["marts", "dim_customers"])
    model = {"resource_type": "model", "schema": "bi", "name": "bi_dim_customers", "alias": "dim_customers"}
    assert dbt_node_asset_key(model) == dg.AssetKey(["bi", "dim_customers"])  # the table BI tools see
    assert dbt_node_asset_key({**model, "resource_type": "seed", "schema": "seeds"}).path[0] == "seeds"
    assert dbt_node_asset_key({"resource_type": "source", "schema": "raw", "name": "crm_contacts"}) is None
    assert dbt_node_asset_key({"resource_type": "test", "schema": "marts", "name": "unique_x"}) is None


@pytest.fixture(scope="module")
def manifest() -> dict:
    from cx_pipeline.defs.dbt.project import cx360_dbt_project

    return json.loads(cx360_dbt_project().manifest_path.read_text())


def test_the_translator_keys_and_groups_every_node_with_the_one_rule(manifest: dict) -> None:
    translator = Cx360DbtTranslator()
    keyed = [node for node in manifest["nodes"].values() if dbt_node_asset_key(node) is not None]
    assert keyed
    for node in keyed:
        spec = translator.get_asset_spec(manifest, node["unique_id"], None)
        relation = node.get("alias") or node["name"]
        assert spec.key == dbt_asset_key(node["schema"], relation) == translator.get_asset_key(node)
        assert spec.group_name == ("staging" if node["schema"] == "seeds" else node["schema"])
    # Sources keep the key of the asset that loads them (meta.dagster.asset_key in their yml).
    source = next(s for s in manifest["sources"].values() if s["name"] == "crm_contacts")
    assert translator.get_asset_spec(manifest, source["unique_id"], None).key == dg.AssetKey(
        ["raw", "crm_contacts"]
    )


def test_the_python_helpers_name_exactly_the_dbt_assets(manifest: dict) -> None:
    from cx_pipeline.defs.dbt.assets import cx360_dbt_assets, dbt_asset_keys_in_schemas

    dbt_assets_def = cx360_dbt_assets()
    keys = set(dbt_assets_def.keys)
    assert keys == {key for node in manifest["nodes"].values() if (key := dbt_node_asset_key(node))}
    assert dbt_asset_key("marts", "dim_customers") in keys
    in_marketing_and_bi = dbt_asset_keys_in_schemas(("marketing", "bi"))
    assert in_marketing_and_bi == sorted(
        (key for key in keys if dbt_assets_def.specs_by_key[key].group_name in ("marketing", "bi")),
        key=lambda key: key.to_user_string(),
    )
    assert dbt_asset_key("marketing", "audience_win_back") in in_marketing_and_bi
    assert cx360_dbt_assets() is dbt_assets_def  # built once per process
