"""The dbt manifest is re-parsed only when a file dbt parses changed (cx_pipeline/defs/dbt/project.py)."""

from pathlib import Path

from cx_pipeline.defs.dbt.project import project_files, project_fingerprint


def _project(root: Path) -> Path:
    (root / "models" / "staging").mkdir(parents=True)
    (root / "macros").mkdir()
    (root / "dbt_project.yml").write_text("name: demo\n")
    (root / "models" / "staging" / "stg_a.sql").write_text("select 1 as id\n")
    (root / "macros" / "m.sql").write_text("{% macro m() %}1{% endmacro %}\n")
    (root / "target").mkdir()
    (root / "target" / "manifest.json").write_text("{}")
    return root


def test_fingerprint_reads_project_files_but_not_target(tmp_path: Path) -> None:
    project = _project(tmp_path)
    names = [path.relative_to(project).as_posix() for path in project_files(project)]
    assert names == ["dbt_project.yml", "models/staging/stg_a.sql", "macros/m.sql"]


def test_fingerprint_changes_with_content_not_with_mtime(tmp_path: Path) -> None:
    project = _project(tmp_path)
    before = project_fingerprint(project)
    model = project / "models" / "staging" / "stg_a.sql"
    model.touch()
    (project / "target" / "run_results.json").write_text("{}")
    assert project_fingerprint(project) == before

    model.write_text("select 2 as id\n")
    assert project_fingerprint(project) != before


def test_fingerprint_sees_added_and_renamed_files(tmp_path: Path) -> None:
    project = _project(tmp_path)
    before = project_fingerprint(project)
    (project / "models" / "staging" / "stg_b.sql").write_text("select 1 as id\n")
    added = project_fingerprint(project)
    assert added != before
    (project / "models" / "staging" / "stg_b.sql").rename(project / "models" / "staging" / "stg_c.sql")
    assert project_fingerprint(project) not in {before, added}
