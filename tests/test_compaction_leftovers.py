"""A killed compaction must not leave a copy of the warehouse behind for good (issue #21.6).

compact_database writes the whole warehouse (names, emails, phones) to a hidden copy beside it and renames it
over the original. Killed between the two, the copy stayed: nothing removed or scanned it, and a later
erasure left the erased person's email, phone and name in it. The erasure step now removes such copies at
the start of every run and names them in the log.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.privacy.maintenance import compact_database, remove_stale_compaction_copies


def _warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "cx360.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "create table people as select 'ann@example.com' as email, '+14155550134' as phone"
        )
    return path


def test_a_compaction_killed_before_its_swap_leaves_a_copy_that_the_next_run_removes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warehouse = _warehouse(tmp_path)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed between the copy and the swap")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", killed)
        with pytest.raises(KeyboardInterrupt):
            compact_database(warehouse)
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != warehouse.name)
    assert leftovers and all(name.startswith(".cx360.duckdb.compact-") for name in leftovers)
    assert any(b"ann@example.com" in (tmp_path / name).read_bytes() for name in leftovers)

    removed = remove_stale_compaction_copies(warehouse)
    assert sorted(p.name for p in removed) == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == [warehouse.name]
    with duckdb.connect(str(warehouse), read_only=True) as connection:  # the warehouse itself is untouched
        assert connection.execute("select count(*) from people").fetchone() == (1,)


def test_nothing_else_beside_the_warehouse_is_touched(tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path)
    keep = [tmp_path / "other.duckdb.compact-1", tmp_path / ".cx360.duckdb.wal.bak", tmp_path / "notes.txt"]
    for path in keep:
        path.write_text("x")
    assert remove_stale_compaction_copies(warehouse) == []
    assert all(path.exists() for path in keep)
