"""The real Dagster webserver serves the asset graph with lineage and checks (what `dagster dev` shows)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from cx_pipeline.contracts import SOURCE_NAMES
from cx_pipeline.settings import PROJECT_ROOT

ASSET_GRAPH_QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
}
"""


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, process: subprocess.Popen, timeout_seconds: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited early with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"dagster-webserver did not answer at {url} within {timeout_seconds}s")


@pytest.fixture(scope="module")
def webserver_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from cx_pipeline.defs.dbt.project import prepare_dbt_manifest

    prepare_dbt_manifest()
    port = _free_loopback_port()
    log_path = tmp_path_factory.mktemp("webserver") / "webserver.log"
    executable = Path(sys.executable).parent / "dagster-webserver"
    command = [str(executable), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ)
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process)
        yield url
    except Exception:
        shutil.copy(log_path, log_path.with_suffix(".failed.log"))
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _query(url: str, query: str) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = json.loads(response.read())
    assert "errors" not in payload, payload.get("errors")
    return payload["data"]


def test_webserver_shows_lineage_raw_to_marts_with_checks(webserver_url: str) -> None:
    nodes = _query(webserver_url, ASSET_GRAPH_QUERY)["assetNodes"]
    by_key = {tuple(node["assetKey"]["path"]): node for node in nodes}
    for source in SOURCE_NAMES:
        raw = by_key[("raw", source)]
        assert raw["groupName"] == "ingestion"
        assert raw["assetChecksOrError"]["checks"], f"raw.{source} shows no checks"

    parents = {key: {tuple(dep["path"]) for dep in node["dependencyKeys"]} for key, node in by_key.items()}

    def ancestors(key: tuple[str, ...]) -> set[tuple[str, ...]]:
        seen: set[tuple[str, ...]] = set()
        stack = [key]
        while stack:
            for parent in parents.get(stack.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    profile_lineage = ancestors(("marts", "dim_customers"))
    layers = {key[0] for key in profile_lineage}
    assert {"raw", "staging", "intermediate"} <= layers, layers
    assert by_key[("marts", "dim_customers")]["assetChecksOrError"]["checks"], "profile shows no checks"
