"""The landing folder: which files belong to a source, their identity (size, mtime, SHA-256) and a sniff
for content that is not UTF-8 text at all."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cx_pipeline.contracts import CONTRACTS
from cx_pipeline.ingestion.sql import check_source

# File name endings read for each landing format; anything else in a source folder is not read and is named,
# with the reason, in the asset's metadata and the run's log, as are hidden and in-progress files ('.x', '_x',
# '*.tmp', '*.part').
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {"csv": (".csv",), "jsonl": (".jsonl", ".ndjson")}
_IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")
_ARCHIVE_SUFFIXES = (".gz", ".zip", ".bz2", ".xz", ".zst", ".7z", ".tar")
SNIFF_BYTES = 64 * 1024
_HASH_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class LandingFile:
    source: str
    path: Path  # absolute
    relative_path: str  # relative to the landing root, '/'-separated: the file's identity in the warehouse
    size_bytes: int
    modified_ns: int

    @property
    def modified_at(self) -> datetime:
        return datetime.fromtimestamp(self.modified_ns / 1e9, tz=UTC)

    def changed_on_disk(self) -> bool:
        """Whether the file's size or mtime differ from when it was listed (it is still being written)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return True
        return stat.st_size != self.size_bytes or stat.st_mtime_ns != self.modified_ns


@dataclass(frozen=True)
class UnreadFile:
    """A file in the landing folder that no source reads, and why."""

    relative_path: str
    reason: str


def why_not_read(path: Path, source: str) -> str | None:
    """Why ``path`` in ``source``'s folder is not loaded (a sentence), or None if it is."""
    name = path.name.lower()
    if name.startswith((".", "_", "~")):
        return "hidden or temporary file (its name starts with '.', '_' or '~')"
    if name.endswith(_IN_PROGRESS_SUFFIXES):
        return "still being delivered (an in-progress file name); it is read once renamed"
    suffixes = FORMAT_SUFFIXES[CONTRACTS[source].format]
    if name.endswith(suffixes):
        return None
    accepted = " or ".join(f"*{suffix}" for suffix in suffixes)
    if name.endswith(_ARCHIVE_SUFFIXES):
        return f"compressed or archived files are not read: land it extracted, as {accepted}"
    found = f"'{path.suffix}'" if path.suffix else "no file extension"
    return f"unsupported format ({found}): {source} reads {accepted}"


def source_folders(landing_root: Path, source: str) -> list[Path]:
    """``source``'s folders in the landing root, matched case-insensitively (``Cart_Events/`` too)."""
    if not landing_root.is_dir():
        return []
    return sorted(p for p in landing_root.iterdir() if p.is_dir() and p.name.lower() == source)


def list_landing_files(landing_root: Path, source: str) -> tuple[list[LandingFile], list[UnreadFile]]:
    """Files of ``source`` under ``<landing_root>/<source>/`` (recursively), sorted by relative path.

    Returns the files to load and the files not read, each with the reason (wrong ending, hidden, in
    progress, compressed). The sort order is the load order, which decides which delivery of a duplicated
    record counts as the first.
    """
    check_source(source)
    files: list[LandingFile] = []
    unread: list[UnreadFile] = []
    for folder in source_folders(landing_root, source):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = path.relative_to(landing_root).as_posix()
            reason = why_not_read(path, source)
            if reason is not None:
                unread.append(UnreadFile(relative, reason))
                continue
            stat = path.stat()
            files.append(
                LandingFile(
                    source=source,
                    path=path.resolve(),
                    relative_path=relative,
                    size_bytes=stat.st_size,
                    modified_ns=stat.st_mtime_ns,
                )
            )
    files.sort(key=lambda landing_file: landing_file.relative_path)
    return files, unread


def files_outside_sources(landing_root: Path) -> list[UnreadFile]:
    """Files no source reads because of where they are: at the root, or in a folder that is no source."""
    if not landing_root.is_dir():
        return []
    known = ", ".join(CONTRACTS)
    unread: list[UnreadFile] = []
    for entry in sorted(landing_root.iterdir()):
        if entry.is_file():
            unread.append(
                UnreadFile(
                    entry.name, f"not in a source folder: deliveries go to <landing>/<source>/ ({known})"
                )
            )
        elif entry.is_dir() and entry.name.lower() not in CONTRACTS:
            reason = f"'{entry.name}/' is no source folder; the sources are: {known}"
            unread.extend(
                UnreadFile(path.relative_to(landing_root).as_posix(), reason)
                for path in sorted(entry.rglob("*"))
                if path.is_file()
            )
    return unread


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sniff_unreadable(path: Path) -> str | None:
    """Why the file is not UTF-8 text at all (binary, compressed, UTF-16), or None if it may be text.

    Only the first 64 KiB are looked at; invalid UTF-8 further down is handled line by line.
    """
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head:
        return None
    if head.startswith(b"\x1f\x8b"):
        return "the file is gzip-compressed; land it decompressed"
    if head.startswith(b"PK\x03\x04"):
        return "the file is a ZIP archive; land the extracted file"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "the file is UTF-16 encoded; land it as UTF-8"
    nul = head.find(b"\x00")
    if nul >= 0:
        return f"the file is binary, not UTF-8 text (NUL byte at offset {nul})"
    return None
