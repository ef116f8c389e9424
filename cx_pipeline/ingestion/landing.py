"""The landing folder: which files belong to a source, their identity (size, mtime, SHA-256) and a sniff
for content that is not UTF-8 text at all."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cx_pipeline.contracts import CONTRACTS
from cx_pipeline.ingestion.sql import check_source

# File name endings read for each landing format; anything else in a source folder is ignored (and listed
# in the asset metadata), as are hidden and in-progress files ('.x', '_x', '*.tmp', '*.part').
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {"csv": (".csv",), "jsonl": (".jsonl", ".ndjson")}
_IN_PROGRESS_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")
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


def _is_candidate(path: Path) -> bool:
    name = path.name
    return not (name.startswith((".", "_", "~")) or name.lower().endswith(_IN_PROGRESS_SUFFIXES))


def list_landing_files(landing_root: Path, source: str) -> tuple[list[LandingFile], list[str]]:
    """Files of ``source`` under ``<landing_root>/<source>/`` (recursively), sorted by relative path.

    Returns the files to load and the relative paths of files ignored for their name (wrong ending,
    hidden or in progress). The sort order is the load order, which decides which delivery of a
    duplicated record counts as the first.
    """
    check_source(source)
    suffixes = FORMAT_SUFFIXES[CONTRACTS[source].format]
    folder = landing_root / source
    files: list[LandingFile] = []
    ignored: list[str] = []
    if not folder.is_dir():
        return files, ignored
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(landing_root).as_posix()
        if not _is_candidate(path) or not path.name.lower().endswith(suffixes):
            ignored.append(relative)
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
    return files, ignored


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
