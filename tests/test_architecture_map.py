"""docs/architecture.md's "Where things live": every path it names exists, and the record's journey from
landing file to serving copy names dbt models that exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "dbt_project" / "models"
# A backticked token names a path when it has a slash or a file extension, or is a capitalised root file
# (Makefile); identifiers such as `raw.loaded_files` or `exclude_suppressed` do not.
PATH_LIKE = re.compile(r"/|^\.?[\w-]+\.(py|sql|ya?ml|md|csv|json|toml|example)$|^[A-Z][A-Za-z]+$")
RELATION = re.compile(r"^(staging|intermediate|marts|bi)\.(\w+)$")


def _section(title: str) -> str:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    start = text.index(f"\n{title}\n")
    end = text.find("\n#", start + len(title) + 2)
    return text[start : end if end != -1 else len(text)]


def _resolve(token: str, row_folder: Path | None) -> Path:
    """From the repository root when its first segment is a top-level entry, else from the row's folder."""
    if (ROOT / token.split("/")[0]).exists() or row_folder is None:
        return ROOT / token
    return row_folder / token


def test_every_path_in_the_map_exists() -> None:
    rows = [line for line in _section("## Where things live").splitlines() if line.startswith("| ")][1:]
    assert len(rows) >= 20, "the map lost its rows"
    missing, rows_without_paths = [], []
    for row in rows:
        tokens = [t for t in re.findall(r"`([^`]+)`", row) if PATH_LIKE.search(t)]
        folder = next((ROOT / t for t in tokens if t.endswith("/") and (ROOT / t).is_dir()), None)
        if not tokens:
            rows_without_paths.append(row)
        missing += [f"{t} (row: {row[:40]}...)" for t in tokens if not _resolve(t, folder).exists()]
    assert not rows_without_paths, rows_without_paths
    assert not missing, missing


def test_record_path_names_existing_models() -> None:
    relations = {
        m.groups()
        for t in re.findall(r"`([^`]+)`", _section("### One record, from landing file to serving copy"))
        if (m := RELATION.match(t))
    }
    assert {"staging", "intermediate", "marts", "bi"} <= {layer for layer, _ in relations}
    # A bi model is named bi_<relation> (its alias is the relation).
    missing = [
        f"{layer}.{name}"
        for layer, name in relations
        if not any((MODELS / layer).rglob(f"{'bi_' if layer == 'bi' else ''}{name}.sql"))
    ]
    assert not missing, missing
