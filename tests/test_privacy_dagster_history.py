"""Erasure never has to reach Dagster's run history, because nothing personal goes in (docs/privacy.md).

A small generated sample gets erasure requests for people whose records sit in the first rows of the newest
CRM file (the rows a raw preview shows), and one complete `cx360 run` (the full_pipeline job: ingestion, GX
checks, erasure, dbt, exports, serving, verification, CX) executes them in its own Dagster home. Then every
byte of every file under DAGSTER_HOME (sqlite run, event-log and index storage, anything else the instance
wrote) and every event of the run, read back through the instance API, is searched for the erased people's
emails, phones, names and ids: none may be there. The request ids, which the erasure step does log, are
found by the same searches (the positive control).
"""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from cx_pipeline.settings import PROJECT_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("privacy_dagster_history")]

PERSONS = int(os.environ.get("CX360_HISTORY_TEST_PERSONS", "80"))
SEED = 23
RUN_TIMEOUT_SECONDS = 1800
REQUEST_IDS = ("ER-H1", "ER-H2")
# A phone as any formatting writes it: digits with spaces, dots, dashes or brackets in between.
_PHONE_RUN = re.compile(rb"[+(]?[0-9][0-9 ().-]{6,24}[0-9]")


@dataclass(frozen=True)
class Victim:
    person_id: str
    values: frozenset[str]  # emails, ids and the full name: anywhere, in any case
    names: frozenset[str]  # first and last name: as whole words, in any case
    phone_digits: frozenset[str]  # the national digits of each phone (what every formatting keeps)


@dataclass(frozen=True)
class History:
    dagster_home: Path
    warehouse: Path
    victims: list[Victim]
    run_log: str


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _project_words() -> set[str]:
    """Every word of the project's code, models and docs: a name that is also one of them ("Price",
    "Mark", "Green") would be found in the run history as a word of a description, not as a leak."""
    words: set[str] = set()
    for folder in ("cx_pipeline", "dbt_project/models", "dbt_project/macros", "docs"):
        for path in (PROJECT_ROOT / folder).rglob("*"):
            if path.suffix in {".py", ".sql", ".yml", ".md"} and "generator" not in path.parts:
                words |= set(re.findall(r"[a-z]+", path.read_text(encoding="utf-8").lower()))
    return words


def _previewed_victims(landing: Path, truth: Path, count: int = len(REQUEST_IDS)) -> list[Victim]:
    """Persons with an email, a phone and a user id whose CRM record is among the first rows of the newest
    CRM file (the rows the raw/crm_contacts preview shows) first, and whose names are no word of the
    project."""
    project_words = _project_words()
    newest = sorted((landing / "crm_contacts").glob("*.csv"))[-1]
    previewed = {row["email"].strip().lower() for row in _read_csv(newest)[:5] if row["email"]}
    persons = {row["person_id"]: row for row in _read_csv(truth / "persons.csv")}
    identifiers: dict[str, dict[str, set[str]]] = {}
    for row in _read_csv(truth / "identifiers.csv"):
        # A value shared with other people (a household device) is theirs too: erasure keeps it.
        if row["is_shared"].lower() == "true":
            continue
        identifiers.setdefault(row["person_id"], {}).setdefault(row["identifier_type"], set()).add(
            row["identifier_value"]
        )
    victims = []
    # Previewed persons first; others fill up if the first rows hold too few.
    for person_id, kinds in sorted(
        identifiers.items(), key=lambda item: (not item[1].get("email", set()) & previewed, item[0])
    ):
        person = persons[person_id]
        if person["erased"].lower() == "true":
            continue
        # A person whose CRM row is previewed is what the test is about: their email is enough (whatever
        # else the sample gave them); the others must carry every kind of identifier.
        is_previewed = bool(kinds.get("email", set()) & previewed)
        if not (is_previewed or {"email", "phone", "user_id"} <= set(kinds)):
            continue
        names = {person["first_name"].lower(), person["last_name"].lower()}
        if names & project_words:
            continue
        values = {value for kind, found in kinds.items() if kind != "phone" for value in found}
        values.add(f"{person['first_name']} {person['last_name']}")
        digits = {re.sub(r"\D", "", phone)[-10:] for phone in kinds.get("phone", set())}
        victims.append(Victim(person_id, frozenset(values), frozenset(names), frozenset(digits)))
        if len(victims) == count:
            break
    assert len(victims) == count, "too few fully identified persons"
    assert any(victim_emails & previewed for victim_emails in (v.values for v in victims)), newest.name
    return victims


def _request_rows(victims: list[Victim], truth: Path) -> list[dict[str, str]]:
    """One request per victim naming every identifier kind it has, typed as people type them."""
    by_person: dict[str, dict[str, str]] = {}
    for row in _read_csv(truth / "identifiers.csv"):
        by_person.setdefault(row["person_id"], {}).setdefault(row["identifier_type"], row["identifier_value"])
    rows = []
    for request_id, victim in zip(REQUEST_IDS, victims, strict=True):
        known = by_person[victim.person_id]
        rows.append(
            {
                "request_id": request_id,
                "email": f" {known['email'].upper()} ",
                "phone": known.get("phone", ""),
                "user_id": known.get("user_id", ""),
                "requested_at": "2026-10-30T09:00:00Z",
            }
        )
    return rows


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    from cx_pipeline.generator import GeneratorConfig, generate

    root = tmp_path_factory.mktemp("dagster_history")
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(PROJECT_ROOT / ".dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    landing, truth = root / "landing", root / "truth"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "CX360_WAREHOUSE": str(root / "warehouse" / "cx360.duckdb"),
        "CX360_LANDING_DIR": str(landing),
        "CX360_TRUTH_DIR": str(truth),
        "CX360_EXPORTS_DIR": str(root / "exports"),
        "CX360_SERVING_DIR": str(root / "serving"),
        "CX360_QUARANTINE_DIR": str(root / "quarantine"),
        "CX360_REPORTS_DIR": str(root / "reports"),
        "CX360_PSEUDONYMISATION_KEY": secrets.token_hex(32),
        "DO_NOT_TRACK": "1",
    }
    generate(
        GeneratorConfig(customers=PERSONS, seed=SEED, landing_dir=landing, truth_dir=truth), progress=False
    )
    victims = _previewed_victims(landing, truth)
    # The newest request file, so the raw/erasure_requests preview shows exactly these requests.
    requests_file = landing / "erasure_requests" / "9999-12.csv"
    rows = _request_rows(victims, truth)
    with requests_file.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    result = subprocess.run(
        [sys.executable, "-m", "cx_pipeline.cli", "run", "--no-progress", "--log-level", "info"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
        check=False,
    )
    output = result.stdout + result.stderr
    assert re.search(r"^Dagster run \S+ succeeded\.$", output, re.M), output[-6000:]
    return History(dagster_home, root / "warehouse" / "cx360.duckdb", victims, output)


# Printable ASCII that is not a letter, or a line break: what surrounds a name in text (a space, "|", a
# quote, "@", a digit).
_TEXT_BOUNDARY = rb"[\t\n\r\x20-\x40\x5b-\x60\x7b-\x7e]"


@functools.cache
def _name_pattern(name: str) -> re.Pattern[bytes]:
    """A first or last name as a whole word, as written, in capitals or in lower case, between text
    characters: sqlite's binary record headers hold chance letter triples such as ``\\x8emIA-``."""
    forms = sorted({name.capitalize(), name.upper(), name.lower()})
    alternatives = b"|".join(re.escape(form.encode()) for form in forms)
    return re.compile(rb"(?<=" + _TEXT_BOUNDARY + rb")(?:" + alternatives + rb")(?=" + _TEXT_BOUNDARY + rb")")


def _found(data: bytes, victims: list[Victim]) -> dict[str, str]:
    """Identifier -> the bytes around its first occurrence in ``data`` (to tell a leak from a false hit)."""
    lowered = data.lower()
    hits: dict[str, str] = {}

    def record(label: str, start: int, end: int) -> None:
        hits.setdefault(label, repr(data[max(start - 60, 0) : end + 60]))

    for victim in victims:
        for value in victim.values:
            position = lowered.find(value.lower().encode())
            if position >= 0:
                record(value, position, position + len(value))
        for name in victim.names:
            found = _name_pattern(name).search(data)
            if found:
                record(name, found.start(), found.end())
    digits = {d for victim in victims for d in victim.phone_digits}
    for match in _PHONE_RUN.finditer(data):
        national = re.sub(rb"\D", b"", match.group())[-10:].decode()
        if national in digits:
            record(f"phone ...{national[-4:]}", match.start(), match.end())
    return hits


def _instance_events_text(dagster_home: Path) -> tuple[int, str]:
    """Every event of every run and every run record, as text with JSON escapes undone."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        runs = instance.get_runs()
        parts = [dg.serialize_value(run) for run in runs]
        events = 0
        for run in runs:
            for entry in instance.all_logs(run.run_id):
                events += 1
                parts.append(dg.serialize_value(entry))
    return events, "\n".join(json.dumps(json.loads(part), ensure_ascii=False) for part in parts)


def test_the_run_executed_the_requests(history: History) -> None:
    import duckdb

    with duckdb.connect(str(history.warehouse), read_only=True) as connection:
        logged = connection.execute(
            "select request_id, rows_removed from privacy.erasure_log where request_id like 'ER-H%'"
        ).fetchall()
    assert {request_id for request_id, _ in logged} == set(REQUEST_IDS)
    assert all(rows > 0 for _, rows in logged)


def test_no_file_of_the_dagster_home_holds_an_identifier_of_the_erased(history: History) -> None:
    files = sorted(path for path in history.dagster_home.rglob("*") if path.is_file())
    assert any(path.suffix == ".db" for path in files), files
    leaks = {}
    request_ids_seen = False
    for path in files:
        data = path.read_bytes()
        request_ids_seen |= all(request_id.encode() in data for request_id in REQUEST_IDS)
        hits = _found(data, history.victims)
        if hits:
            leaks[str(path.relative_to(history.dagster_home))] = hits
    assert request_ids_seen, "positive control: the erasure step's request ids are in the event log"
    assert leaks == {}


def test_no_event_of_the_run_holds_an_identifier_of_the_erased(history: History) -> None:
    events, text = _instance_events_text(history.dagster_home)
    assert events > 100
    assert all(request_id in text for request_id in REQUEST_IDS), "positive control"
    assert _found(text.encode(), history.victims) == {}
    assert "***" in text  # the raw previews are there, masked
