"""Atomic publishing of a file or a folder: write beside the target, flush to disk, swap in one rename.

A reader opening the target sees the old complete version or the new complete one, never a half-written
file, and never finds the name missing. Temp files and folders live next to the target (a rename is only
atomic within one file system) under hidden names: ``.<target name>.tmp-<random>``. On failure the temp
is removed and the old version is left as it was.

Folders are swapped with ``renameat2(RENAME_EXCHANGE)`` on Linux (one atomic step); elsewhere the old
folder is renamed aside first, so the name is missing for the instant between two renames.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

TEMP_MARKER = ".tmp-"
OLD_MARKER = ".old-"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def fsync_path(path: Path | str) -> None:
    """Flush a file's (or a folder's entries') data to disk before relying on it surviving a crash."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def temp_path(target: Path, marker: str = TEMP_MARKER) -> Path:
    """A fresh hidden name beside ``target``: ``.<name><marker><random>``."""
    return target.with_name(f".{target.name}{marker}{uuid.uuid4().hex[:12]}")


def is_temp_of_publish(path: Path) -> bool:
    """A temp file or folder left beside a target by an interrupted publish (or an old folder version)."""
    return path.name.startswith(".") and (TEMP_MARKER in path.name or OLD_MARKER in path.name)


def publish_file(temp: Path, target: Path) -> None:
    """Make the complete file ``temp`` (same folder) the new ``target``, durably.

    ``temp`` is fsynced before the rename and the folder after it: the rename is only durable once the
    folder entry is on disk.
    """
    fsync_path(temp)
    os.replace(temp, target)
    fsync_path(target.parent)


@contextlib.contextmanager
def staged_file(target: Path, marker: str = TEMP_MARKER) -> Iterator[Path]:
    """Yield a temp path beside ``target`` to write; published on success, removed on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(target, marker)
    try:
        yield temp
        publish_file(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_file_atomically(target: Path, content: str | bytes, encoding: str = "utf-8") -> None:
    """Replace ``target`` with ``content`` (text or bytes) in one atomic, durable step."""
    with staged_file(target) as temp:
        if isinstance(content, bytes):
            temp.write_bytes(content)
        else:
            temp.write_text(content, encoding=encoding)


def _fsync_tree(folder: Path) -> None:
    for child in folder.rglob("*"):
        if child.is_file():
            fsync_path(child)
    for child in folder.rglob("*"):
        if child.is_dir():
            fsync_path(child)
    fsync_path(folder)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def publish_dir(new_dir: Path, target: Path) -> None:
    """Put the complete folder ``new_dir`` (same parent) at ``target``, deleting any old version."""
    _fsync_tree(new_dir)
    if not target.exists():
        os.rename(new_dir, target)
    elif _exchange(new_dir, target):
        shutil.rmtree(new_dir)  # now holds the old version
    else:
        old = temp_path(target, OLD_MARKER)
        os.rename(target, old)
        os.rename(new_dir, target)
        shutil.rmtree(old)
    fsync_path(target.parent)


@contextlib.contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield a new empty temp folder beside ``target`` to fill; published on success, removed on failure."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(target)
    temp.mkdir()
    try:
        yield temp
        publish_dir(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete temp files and folders that interrupted publishes left in ``folder``; returns them."""
    removed = []
    if folder.exists():
        for path in sorted(folder.iterdir()):
            if not is_temp_of_publish(path):
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed
