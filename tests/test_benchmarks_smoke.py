"""Smoke test of the benchmark harness (issue #6): the whole harness at a tiny scale, no timing assertions.

Runs ``python -m benchmarks.run`` for 300 customers and one repeat into a temporary folder (generation,
DuckDB floor, full build, day-sized drop and incremental run, pandas baseline under its memory cap,
report and chart), then checks that the report has every section and every figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cx_pipeline.settings import PROJECT_ROOT

SECTIONS = (
    "# cx360 benchmarks at scale",
    "## Summary against the targets",
    "## Machine and versions",
    "## Data sets",
    "## Full build",
    "## Stages of the full build",
    "## Incremental run",
    "## DuckDB floor and overhead",
    "## pandas baseline",
    "## How cost grows with size",
    "## Slowest dbt models",
    "## Profiling findings",
    "## Method",
)
# Phrases that only appear when the corresponding figure was measured and rendered.
FIGURES = (
    "1M customers full build < 10 min",
    "incremental day < 1/10 of the full build (300)",
    "overhead over the DuckDB floor < 4x (300)",
    "CPU:",
    "Versions: python",
    "duckdb 2",
    "ingestion (raw.*)",
    "dbt build (whole step)",
    "dbt: staging models",
    "dbt: identity resolution models",
    "total (process wall time)",
    "landing records",
    "full build time",
    "benchmarks_time_vs_scale.svg",
)


@pytest.mark.slow
def test_benchmark_harness_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "docs" / "benchmarks.md"
    bench = tmp_path / "bench"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CX360_", "DAGSTER_HOME"))}
    command = [
        sys.executable, "-m", "benchmarks.run", "--scales", "300", "--repeats", "1", "--seed", "7",
        "--bench-dir", str(bench), "--out", str(out), "--pandas-timeout", "600", "--pipeline-timeout", "1200",
    ]  # fmt: skip
    completed = subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=2400, check=False
    )
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-5000:]

    text = out.read_text()
    for section in SECTIONS:
        assert section in text, f"missing section {section!r}"
    for figure in FIGURES:
        assert figure in text, f"missing figure {figure!r}"
    assert "| 300 |" in text  # a row per scale in the tables

    results = json.loads((bench / "results.json").read_text())
    repeat = results["scales"]["300"]["repeats"][0]
    assert repeat["full"]["ok"] and repeat["incremental"]["ok"]
    assert repeat["full"]["peak_tree_rss"] > 0 and repeat["full"]["wall_seconds"] > 0
    assert repeat["full"]["nodes"], "no dbt node timings were read"
    assert repeat["floor"]["ok"] and repeat["floor"]["keys"] > 0
    assert repeat["floor_incremental"]["ok"]
    assert repeat["pandas"]["status"] == "ok" and repeat["pandas"]["profiles"] > 0
    assert sum(s["records"] for s in repeat["increment"].values()) > 0

    chart = out.with_name("benchmarks_time_vs_scale.svg")
    root = ET.parse(chart).getroot()
    assert root.tag.endswith("svg")
    assert "cx360 full build" in chart.read_text()
    # The cached landing folder is untouched by the drop (it goes into the run's hard-linked copy).
    dataset = bench / "datasets" / "300-s7" / "landing"
    assert not list(dataset.glob("*/day-*"))
