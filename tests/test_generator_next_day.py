"""``cx360 generate --next-day``: one more day of the same population (issue #15).

A base of 200 persons gets two next days; the files are read back with plain Python (csv, json) and loaded
through the ingestion, and the truth is checked against what the day's files say.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from ingestion_fixtures import connect

from cx_pipeline.cli import main as cli_main
from cx_pipeline.contracts import CONTRACTS, SOURCE_NAMES
from cx_pipeline.generator import GeneratorConfig, generate
from cx_pipeline.generator.nextday import DayAmounts, generate_next_day
from cx_pipeline.generator.population import changed_phone_numbers, phone_numbers_of
from cx_pipeline.ingestion.loader import load_source
from cx_pipeline.sql import compose, qualified_name

pytestmark = pytest.mark.xdist_group("generator_next_day")

BASE_PERSONS = 200
BASE_START = date(2026, 2, 1)  # the shortest range the generator takes: fewer files to load
BASE_END = date(2026, 10, 31)
ASKED = {"new_people": 3, "crm_corrections": 3, "merges": 2, "consent_changes": 3, "erasures": 4}
ACTIVE_SHARE = 0.05
CLI_AMOUNTS = [f"--{name.replace('_', '-')}={value}" for name, value in ASKED.items()]


def _cli_next_days(root: Path, days: int) -> None:
    code = cli_main(
        [
            "generate",
            "--days",
            str(days),
            "--landing",
            str(root / "landing"),
            "--truth",
            str(root / "truth"),
            f"--active-share={ACTIVE_SHARE}",
            "--late-share=0.2",
            *CLI_AMOUNTS,
        ]
    )
    assert code == 0


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _records(path: Path) -> list[dict]:
    if path.suffix == ".csv":
        return _read_csv(path)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _day_records(landing: Path, source: str, day: date) -> list[dict]:
    path = landing / source / f"day-{day.isoformat()}.{CONTRACTS[source].format}"
    return _records(path) if path.exists() else []


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace(" ", "T"))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("next_day")
    base = root / "base"
    generate(
        GeneratorConfig(
            customers=BASE_PERSONS,
            start_date=BASE_START,
            end_date=BASE_END,
            landing_dir=base / "landing",
            truth_dir=base / "truth",
        ),
        progress=False,
    )
    twin = root / "twin"
    shutil.copytree(base, twin)
    base_landing = _digests(base / "landing")
    base_truth = {name: _read_csv(base / "truth" / name) for name in ("persons.csv", "identifiers.csv")}
    _cli_next_days(base, days=2)
    _cli_next_days(twin, days=1)
    _cli_next_days(twin, days=1)
    return {"root": base, "twin": twin, "base_landing": base_landing, "base_truth": base_truth}


def test_same_seed_same_bytes_and_days_one_by_one_equal_days_at_once(generated) -> None:
    assert _digests(generated["root"]) == _digests(generated["twin"])


def test_earlier_files_are_never_rewritten(generated) -> None:
    landing = generated["root"] / "landing"
    now = _digests(landing)
    for name, digest in generated["base_landing"].items():
        assert now[name] == digest, f"{name} changed"
    added = sorted(set(now) - set(generated["base_landing"]))
    assert added, "no new files"
    for day in (BASE_END + timedelta(days=1), BASE_END + timedelta(days=2)):
        assert any(name.endswith(f"/day-{day.isoformat()}.jsonl") for name in added)
    assert all(Path(name).name.startswith("day-2026-11-0") for name in added)
    # A day with a file in the landing folder already is not written again.
    state = json.loads((generated["root"] / "truth" / "state.json").read_text())
    next_day = date.fromisoformat(state["end_date"]) + timedelta(days=1)
    clash = landing / "web_events" / f"day-{next_day.isoformat()}.jsonl"
    clash.write_text("")
    try:
        with pytest.raises(FileExistsError, match="was written before"):
            generate_next_day(landing, generated["root"] / "truth", DayAmounts())
    finally:
        clash.unlink()


def test_state_moves_on_a_day_at_a_time(generated) -> None:
    state = json.loads((generated["root"] / "truth" / "state.json").read_text())
    assert state["end_date"] == "2026-11-02"
    assert [day["date"] for day in state["days"]] == ["2026-11-01", "2026-11-02"]
    assert state["persons"] == BASE_PERSONS + 2 * ASKED["new_people"]
    for day in state["days"]:
        for name, value in ASKED.items():
            assert day["planted"][name] == value, name
        assert day["planted"]["active_persons"] == round(BASE_PERSONS * ACTIVE_SHARE)
        assert day["planted"]["late_sessions"] >= 1


def test_events_stay_on_the_day_except_the_late_ones(generated) -> None:
    landing = generated["root"] / "landing"
    for offset in (1, 2):
        day = BASE_END + timedelta(days=offset)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        late_sessions = set()
        for source, contract in CONTRACTS.items():
            for record in _day_records(landing, source, day):
                instant = _instant(record[contract.event_time_field])
                assert instant < start + timedelta(days=1), (source, record)
                assert instant >= start - timedelta(days=6), (source, record)
                if instant < start and source == "web_events":
                    late_sessions.add(record["anonymousId"])
        assert late_sessions, f"no late web events on {day}"


def test_every_planted_kind_is_in_the_day_files(generated) -> None:
    landing, truth = generated["root"] / "landing", generated["root"] / "truth"
    before = generated["base_truth"]
    person_of_email = {
        r["identifier_value"]: r["person_id"]
        for r in before["identifiers.csv"]
        if r["identifier_type"] == "email" and r["is_shared"] == "false"
    }
    person_of_user = {
        r["identifier_value"]: r["person_id"]
        for r in before["identifiers.csv"]
        if r["identifier_type"] == "user_id"
    }
    day = BASE_END + timedelta(days=1)

    erasures = _day_records(landing, "erasure_requests", day)
    assert len(erasures) == ASKED["erasures"]
    consents = _day_records(landing, "gdpr_consents", day)
    assert len(consents) == ASKED["consent_changes"]
    assert {c["status"] for c in consents} <= {"withdrawn", "granted"}

    # Merges: identify calls whose userId belongs to one person and traits.email to another.
    merges = [
        (person_of_user[r["userId"]], person_of_email[r["traits"]["email"].strip().lower()])
        for r in _day_records(landing, "web_events", day)
        if r["type"] == "identify" and r["userId"] in person_of_user
        and person_of_email.get(r["traits"]["email"].strip().lower(), person_of_user[r["userId"]])
        != person_of_user[r["userId"]]
    ]  # fmt: skip
    assert len(merges) == ASKED["merges"]
    logged = [r for r in _read_csv(truth / "merges.csv") if r["merged_on"] == day.isoformat()]
    assert sorted((r["merged_into"], r["person_id"]) for r in logged) == sorted(merges)

    # CRM corrections: contacts exported before, again with a newer updated_at and a new phone or name.
    earlier: dict[str, dict] = {}
    for path in sorted((landing / "crm_contacts").glob("20*.csv")):
        for row in _read_csv(path):
            earlier[row["contact_id"]] = row
    corrections = _day_records(landing, "crm_contacts", day)
    assert len(corrections) == ASKED["crm_corrections"]
    for row in corrections:
        old = earlier[row["contact_id"]]
        assert (row["phone"], row["last_name"]) != (old["phone"], old["last_name"])
        assert row["created_at"] == old["created_at"]
        assert _instant(row["updated_at"]).date() == day

    # Activity of existing persons and the newcomers' first visits.
    people = _read_csv(truth / "persons.csv")
    newcomers = {r["person_id"] for r in people[BASE_PERSONS : BASE_PERSONS + ASKED["new_people"]]}
    assert len(newcomers) == ASKED["new_people"]
    anonymous = {
        r["identifier_value"]: r["person_id"]
        for r in _read_csv(truth / "identifiers.csv")
        if r["identifier_type"] == "anonymous_id"
    }
    web = _day_records(landing, "web_events", day)
    visitors = {anonymous.get(r["anonymousId"]) for r in web if r["type"] != "identify"}
    assert newcomers <= visitors
    assert len(visitors - newcomers) >= round(BASE_PERSONS * ACTIVE_SHARE) // 2
    assert _day_records(landing, "cart_events", day) or _day_records(
        landing, "cart_events", day + timedelta(days=1)
    )


def test_truth_records_erasures_merges_and_newcomers(generated) -> None:
    landing, truth = generated["root"] / "landing", generated["root"] / "truth"
    people = {r["person_id"]: r for r in _read_csv(truth / "persons.csv")}
    before = {r["person_id"]: r for r in generated["base_truth"]["persons.csv"]}
    assert len(people) == BASE_PERSONS + 2 * ASKED["new_people"]
    identifiers = _read_csv(truth / "identifiers.csv")
    person_of_email = {
        r["identifier_value"]: r["person_id"]
        for r in identifiers
        if r["identifier_type"] == "email" and r["is_shared"] == "false"
    }
    erased_today = set()
    for offset in (1, 2):
        for request in _day_records(landing, "erasure_requests", BASE_END + timedelta(days=offset)):
            erased_today.add(person_of_email[request["email"].strip().lower()])
    assert len(erased_today) == 2 * ASKED["erasures"]
    for person_id in erased_today:
        assert before[person_id]["erased"] == "false" and people[person_id]["erased"] == "true"

    # Every identifier of a merged person now belongs to the person it merged into.
    merges = _read_csv(truth / "merges.csv")
    assert len(merges) == 2 * ASKED["merges"]
    owners = {r["person_id"] for r in identifiers}
    # Merges join persons who never bought, so no stage changes: the merged person is in the later stage.
    stages = ["discovery", "consideration"]
    stage = {person_id: row["final_stage"] for person_id, row in before.items()}
    for merge in merges:  # in the order they happened
        assert merge["person_id"] not in owners
        assert person_of_email[merge["email"]] == merge["merged_into"]
        gone, kept = merge["person_id"], merge["merged_into"]
        stage[kept] = stages[max(stages.index(stage[gone]), stages.index(stage[kept]))]
    for merge in merges:
        assert people[merge["merged_into"]]["final_stage"] == stage[merge["merged_into"]]
    # Nobody is merged twice: a person holding two persons' devices is left out of later merges.
    merged = [merge[side] for merge in merges for side in ("person_id", "merged_into")]
    assert len(merged) == len(set(merged))

    # Newcomers: discovery-stage persons first seen on their day.
    for person_id in sorted(set(people) - set(before)):
        row = people[person_id]
        assert row["final_stage"] == "discovery" and row["erased"] == "false"
        assert row["first_seen_at"].startswith("2026-11-0")


def test_day_files_load_with_only_the_planted_rows_quarantined(generated, tmp_path: Path) -> None:
    landing, truth = generated["root"] / "landing", generated["root"] / "truth"
    conn = connect()
    for source in SOURCE_NAMES:
        load_source(conn, source, landing, tmp_path / "quarantine")
    planted = {(r["source"], r["file"], int(r["line"])) for r in _read_csv(truth / "malformed_rows.csv")}
    quarantined = set(conn.execute("SELECT source, source_file, source_line FROM raw.quarantine").fetchall())
    assert quarantined == planted
    for source in SOURCE_NAMES:
        loaded = conn.execute(
            compose(
                "SELECT count(*) FROM {table} WHERE _source_file LIKE ?", table=qualified_name("raw", source)
            ),
            ["%/day-%"],
        ).fetchone()[0]
        delivered = sum(len(_records(path)) for path in (landing / source).glob("day-*")) - sum(
            1 for s, f, _ in planted if s == source and "/day-" in f
        )
        assert loaded == delivered, source


def test_next_day_needs_a_generated_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FileNotFoundError, match=r"state\.json"):
        generate_next_day(tmp_path / "landing", tmp_path / "truth")
    folders = ["--landing", str(tmp_path / "landing"), "--truth", str(tmp_path / "truth")]
    assert cli_main(["generate", "--next-day", *folders]) == 2
    assert "state.json not found" in capsys.readouterr().err
    assert cli_main(["generate", "--days", "0", *folders]) == 2
    assert "days must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "landing").exists()


def test_a_changed_phone_number_is_nobody_elses() -> None:
    people = np.arange(50_000)
    country = people % 2
    london = people % 3 == 0
    first_numbers = set(phone_numbers_of(people, country, london, salt=42)[1].to_pylist())
    changed = changed_phone_numbers(people, country, salt=42)[1].to_pylist()
    assert len(set(changed)) == len(changed)
    assert not first_numbers & set(changed)


def test_day_amounts_scale_with_the_population_unless_given() -> None:
    counts = DayAmounts().counts(100_000)
    assert counts == {
        "active": 1000,
        "new_people": 50,
        "crm_corrections": 50,
        "merges": 20,
        "consent_changes": 100,
        "erasures": 3,
    }
    assert DayAmounts(erasures=50, merges=0).counts(200)["erasures"] == 50
    assert DayAmounts(merges=0).counts(200)["merges"] == 0
    with pytest.raises(ValueError, match="erasures"):
        DayAmounts(erasures=-1)
