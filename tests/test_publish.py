"""cx_pipeline.publish: a failed publish leaves the old content and no temp files; a good one swaps."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from cx_pipeline import publish
from cx_pipeline.publish import (
    is_temp_of_publish,
    publish_file,
    remove_stale_temps,
    staged_dir,
    staged_file,
    write_file_atomically,
)


class Boom(RuntimeError):
    pass


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_file_atomically_replaces_text_and_bytes(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "report.html"
    write_file_atomically(target, "first")
    assert target.read_text() == "first"
    write_file_atomically(target, b"\x00second")
    assert target.read_bytes() == b"\x00second"
    assert _listing(target.parent) == ["report.html"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "data.json"
    target.write_text("old")
    with pytest.raises(Boom), staged_file(target) as temp:
        temp.write_text("half-writ")
        assert is_temp_of_publish(temp) and temp.parent == tmp_path
        raise Boom
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["data.json"]


def test_failed_flush_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "data.json"
    target.write_text("old")

    def full_disk(path: Path | str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(publish, "fsync_path", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_file_atomically(target, "new")
    assert target.read_text() == "old"
    assert _listing(tmp_path) == ["data.json"]


def test_publish_file_moves_a_complete_temp_onto_the_target(tmp_path: Path) -> None:
    target = tmp_path / "served.duckdb"
    target.write_text("old")
    temp = tmp_path / ".served.duckdb.custom-name"
    temp.write_text("new")
    publish_file(temp, target)
    assert target.read_text() == "new"
    assert _listing(tmp_path) == ["served.duckdb"]


def test_a_reader_holding_the_old_file_keeps_reading_it(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("old")
    with target.open() as reader:
        write_file_atomically(target, "new")
        assert reader.read() == "old"
    assert target.read_text() == "new"


def test_staged_dir_creates_and_replaces_a_folder(tmp_path: Path) -> None:
    target = tmp_path / "audience"
    with staged_dir(target) as temp:
        (temp / "a.csv").write_text("1")
    assert _listing(target) == ["a.csv"]
    with staged_dir(target) as temp:
        (temp / "b.csv").write_text("2")
        (temp / "nested").mkdir()
        (temp / "nested" / "c.txt").write_text("3")
    assert _listing(target) == ["b.csv", "nested"]
    assert (target / "nested" / "c.txt").read_text() == "3"
    assert _listing(tmp_path) == ["audience"]


def test_failed_folder_publish_keeps_the_old_folder_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "audience"
    with staged_dir(target) as temp:
        (temp / "a.csv").write_text("old")
    with pytest.raises(Boom), staged_dir(target) as temp:
        (temp / "a.csv").write_text("new, half")
        raise Boom
    assert _listing(target) == ["a.csv"]
    assert (target / "a.csv").read_text() == "old"
    assert _listing(tmp_path) == ["audience"]


def test_folder_swap_without_renameat2_uses_two_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish, "_exchange", lambda a, b: False)
    target = tmp_path / "audience"
    with staged_dir(target) as temp:
        (temp / "a.csv").write_text("old")
    with staged_dir(target) as temp:
        (temp / "a.csv").write_text("new")
    assert (target / "a.csv").read_text() == "new"
    assert _listing(tmp_path) == ["audience"]


def test_remove_stale_temps_deletes_only_leftovers(tmp_path: Path) -> None:
    (tmp_path / "keep.csv").write_text("x")
    (tmp_path / ".hidden-but-not-a-temp").write_text("x")
    (tmp_path / ".keep.csv.tmp-abc").write_text("x")
    (tmp_path / ".audience.old-abc").mkdir()
    (tmp_path / ".audience.old-abc" / "f").write_text("x")
    removed = remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == [".audience.old-abc", ".keep.csv.tmp-abc"]
    assert _listing(tmp_path) == [".hidden-but-not-a-temp", "keep.csv"]
