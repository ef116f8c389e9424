"""The benchmark report's summary on hand-made results (benchmarks/report.py): no pipeline run."""

from __future__ import annotations

from benchmarks import report


def _run(wall: float, cpu: float, peak: int = 2**30) -> dict:
    return {"ok": True, "wall_seconds": wall, "cpu_seconds": cpu, "peak_tree_rss": peak}


def test_incremental_target_is_read_at_the_largest_scale_that_measured_it() -> None:
    """A 1M run may skip the incremental day (disk space): that target is then read at 100k, the floor at
    1M."""
    scales = [
        (100_000, {"repeats": [{"full": _run(300, 480), "incremental": _run(30, 40), "floor": _run(9, 14)}]}),
        (1_000_000, {"repeats": [{"full": _run(4000, 7000, 5 * 2**30), "floor": _run(74, 111)}]}),
    ]
    lines: list[str] = []
    report._summary(lines.append, {}, scales)
    text = "\n".join(lines)
    assert "| incremental day < 1/10 of the full build (100,000) | 30.0 s; 0.10x" in text
    assert "| overhead over the DuckDB floor < 4x (1,000,000) | 54.1x" in text
    assert "not measured" not in text


def test_targets_are_listed_as_not_measured_when_no_full_build_completed() -> None:
    failed = {"ok": False, "wall_seconds": 100.0, "peak_tree_rss": 2**30, "failed_steps": ["erasure"]}
    lines: list[str] = []
    report._summary(lines.append, {}, [(1_000_000, {"repeats": [{"full": failed}]})])
    text = "\n".join(lines)
    assert "| incremental day < 1/10 of the full build | not measured |" in text
    assert "| overhead over the DuckDB floor < 4x | not measured |" in text
    assert "failed in `erasure` after 100 s" in text
