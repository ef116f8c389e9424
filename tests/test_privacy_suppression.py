"""Staging filters the suppression list: an erased person's records never reach intermediate or marts.

One small generated sample (300 persons) is loaded with the ingestion code and its staging models built by
dbt. A person's own identifiers (from the generator's truth, shared ones left out) are planted in
``privacy.suppressed_identifiers`` as keyed hashes computed in Python, independently of the SQL macro. The
staging views, and the two staging tables (cart and consent events) once rebuilt as every pipeline run's
build does, must then hold none of that person's records, and exactly every other record. A late file
delivering the person again (identifiers typed differently) must stay out too, while a late record of
somebody else in the same file gets in. The Python erasure step, which would also scrub raw, is not run.
"""

from __future__ import annotations

import csv
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from sample_warehouse import SampleWarehouse, generate_and_ingest, ingest, run_dbt

from cx_pipeline.privacy.keys import MISSING_KEY_MESSAGE, keyed_hash, register_udfs
from cx_pipeline.sql import Sql, compose, join, qualified_name, quote_identifier
from cx_pipeline.warehouse import connect

PERSONS = 300
SEED = 7
# Every staging model that filters, with the identifier columns it filters on.
FILTERED: dict[str, tuple[str, ...]] = {
    "stg_crm__contact_versions": ("contact_id", "email", "phone"),
    "stg_crm__contacts": ("contact_id", "email", "phone"),
    "stg_segment__event_deliveries": ("user_id", "anonymous_id", "trait_email", "trait_phone"),
    "stg_segment__events": ("user_id", "anonymous_id", "trait_email", "trait_phone"),
    "stg_shop__cart_events": ("user_id", "email", "anonymous_id"),
    "stg_shop__product_rejections": ("user_id", "email"),
    "stg_support__tickets": ("requester_email", "requester_phone"),
    "stg_privacy__consent_events": ("email", "user_id"),
    "stg_privacy__erasure_requests": ("email", "phone", "user_id"),
    "stg_surveys__nps_responses": ("email", "user_id"),
}
# Views on top of a filtered view (they deduplicate, so their counts are not simple differences).
DERIVED = ("stg_crm__contacts", "stg_segment__events")
TYPES = ("email", "phone", "user_id", "anonymous_id", "crm_contact_id")
LATE_AT = "2026-01-02T10:00:00Z"
# The staging models materialised as tables: they apply the suppression list when built, not when read.
STAGING_TABLES = "staging,config.materialized:table"


@dataclass
class Built:
    sample: SampleWarehouse
    identifiers: dict[str, list[str]]  # identifier type -> the person's own (unshared) values
    other_user_id: str  # a user id of somebody else, for the late file's control record
    before: dict[str, tuple[int, int]]  # per model (all rows, the person's rows) before suppression


def _count_sql(model: str) -> Sql:
    return compose("select count(*) from {model}", model=qualified_name("staging", model))


def _person_rows(connection, model: str, values: list[str]) -> int:
    columns = FILTERED[model]
    predicate = join(
        (
            compose("{column} in (select unnest($values))", column=quote_identifier(column))
            for column in columns
        ),
        " or ",
    )
    sql = compose(
        "select count(*) from {model} where {predicate}",
        model=qualified_name("staging", model),
        predicate=predicate,
    )
    return connection.execute(sql, {"values": values}).fetchone()[0]


def _counts(warehouse: Path, values: list[str]) -> dict[str, tuple[int, int]]:
    """(all rows, the person's rows) per filtered model, read on a keyed connection."""
    with connect(warehouse, read_only=True) as connection:
        register_udfs(connection)
        return {
            model: (
                connection.execute(_count_sql(model)).fetchone()[0],
                _person_rows(connection, model, values),
            )
            for model in FILTERED
        }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("suppression")
    sample = generate_and_ingest(root, PERSONS, SEED)
    run_dbt(root, sample.warehouse, "run", "--select", "staging")
    truth = duckdb.connect()
    try:
        # A person with every kind of identifier, taking only the ones nobody else shares.
        rows = truth.execute(
            """
            with ids as (
                select * from read_csv(?, all_varchar = true) where is_shared = 'false'
            ),
            complete as (
                select person_id from ids group by person_id
                having count(distinct identifier_type) = 5
                order by count(*) desc, person_id limit 1
            )
            select identifier_type, identifier_value
            from ids
            where person_id = (select person_id from complete)
            """,
            [str(sample.truth / "identifiers.csv")],
        ).fetchall()
        other = truth.execute(
            "select any_value(identifier_value) from read_csv(?, all_varchar = true) "
            "where identifier_type = 'user_id' and person_id <> (select person_id from read_csv(?, "
            "all_varchar = true) where identifier_value = ?)",
            [str(sample.truth / "identifiers.csv")] * 2 + [rows[0][1]],
        ).fetchone()[0]
    finally:
        truth.close()
    identifiers: dict[str, list[str]] = {kind: [] for kind in TYPES}
    for kind, value in rows:
        identifiers[kind].append(value)
    assert all(identifiers[kind] for kind in TYPES), identifiers
    values = [value for kind in TYPES for value in identifiers[kind]]
    before = _counts(sample.warehouse, values)
    # Plant the person on the list: keyed hashes computed in Python, as the erasure step stores them.
    with connect(sample.warehouse) as connection:
        connection.executemany(
            "insert into privacy.suppressed_identifiers values (?, ?, 'TEST-1', now())",
            [(keyed_hash(value), kind) for kind in TYPES for value in identifiers[kind]],
        )
    run_dbt(root, sample.warehouse, "run", "--select", STAGING_TABLES)
    return Built(sample, identifiers, other, before)


def _values(built: Built) -> list[str]:
    return [value for kind in TYPES for value in built.identifiers[kind]]


def _private_copy(built: Built, root: Path) -> Path:
    """The built warehouse copied under ``root``: tests that write never touch the shared one."""
    copy = root / "cx360.duckdb"
    copy.write_bytes(built.sample.warehouse.read_bytes())
    return copy


def test_erased_person_is_filtered_from_every_staging_model(built: Built) -> None:
    before = built.before
    # Positive control: the person is there before suppression, in several sources.
    own_sources = {model: person for model, (_, person) in before.items() if model not in DERIVED}
    assert sum(1 for person in own_sources.values() if person) >= 3, before

    after = _counts(built.sample.warehouse, _values(built))
    for model, (total, person) in after.items():
        assert person == 0, f"{model} still holds {person} rows of the erased person"
        # Only the person's rows went: everyone else's stay.
        if model not in DERIVED:
            assert total == before[model][0] - before[model][1], model


def test_late_redelivery_of_an_erased_person_stays_out(built: Built, tmp_path: Path) -> None:
    """A new file with the person's records, identifiers typed differently, is loaded but filtered."""
    warehouse = _private_copy(built, tmp_path)
    landing = tmp_path / "landing"
    (landing / "cart_events").mkdir(parents=True)
    (landing / "web_events").mkdir()
    email = built.identifiers["email"][0]
    phone = built.identifiers["phone"][0]
    user_id = built.identifiers["user_id"][0]
    anonymous_id = built.identifiers["anonymous_id"][0]
    late_cart = landing / "cart_events" / "2099-01-late.csv"
    with late_cart.open("w", newline="") as handle:
        writer = csv.writer(handle)
        header = "event_id,cart_id,user_id,email,anonymous_id,event_type,product_id,product_name,category,"
        header += "quantity,unit_price,currency,order_id,channel,occurred_at"
        writer.writerow(header.split(","))
        for event_id, who, mail in (
            (str(uuid.uuid4()), f"  {user_id} ", f" {email.upper()} "),
            (str(uuid.uuid4()), "", f"\t{email.title()}"),
            (str(uuid.uuid4()), built.other_user_id, ""),  # control: somebody else
        ):
            product = ["SKU-1", "Thing", "Misc", 1, "9.99", "EUR"]
            writer.writerow(
                [event_id, "cart_late", who, mail, "", "item_added", *product, "", "web", LATE_AT]
            )
    late_web = landing / "web_events" / "2099-01-late.jsonl"
    messages = [
        {"userId": None, "anonymousId": anonymous_id, "traits": None},
        {
            "userId": None,
            "anonymousId": str(uuid.uuid4()),
            "traits": {"email": email.upper(), "phone": phone},
        },
    ]
    with late_web.open("w") as handle:
        for message in messages:
            record = {
                "type": "identify",
                "messageId": str(uuid.uuid4()),
                "timestamp": "2026-01-02T10:00:00.000Z",
                "event": None,
                "name": None,
                "properties": {},
                "context": {"page": {"path": "/", "url": "https://shop.cx360.example/"}},
                **message,
            }
            handle.write(json.dumps(record) + "\n")
    ingest(warehouse, landing, tmp_path / "quarantine")
    run_dbt(tmp_path, warehouse, "run", "--select", STAGING_TABLES)

    with connect(warehouse, read_only=True) as connection:
        loaded_cart = connection.execute(
            "select count(*) from raw.cart_events where cart_id = 'cart_late'"
        ).fetchone()[0]
        loaded_web = connection.execute(
            "select count(*) from raw.web_events where _source_file like '%2099-01-late%'"
        ).fetchone()[0]
    assert (loaded_cart, loaded_web) == (3, 2)  # ingestion loaded the late files

    with connect(warehouse, read_only=True) as connection:
        register_udfs(connection)
        staged = connection.execute(
            "select user_id from staging.stg_shop__cart_events where cart_id = 'cart_late'"
        ).fetchall()
        assert staged == [(built.other_user_id,)]
        web = connection.execute(
            "select count(*) from staging.stg_segment__event_deliveries "
            "where _source_file like '%2099-01-late%'"
        ).fetchone()[0]
        assert web == 0
    counts = _counts(warehouse, _values(built))
    assert all(person == 0 for _, person in counts.values()), counts


def test_connection_without_the_key(built: Built, tmp_path: Path) -> None:
    """Non-empty list: a clear error naming the fix. Empty list: DuckDB never computes a hash at all."""
    keyless = duckdb.connect(str(_private_copy(built, tmp_path)))
    try:
        assert keyless.execute("select count(*) from privacy.suppressed_identifiers").fetchone()[0] > 0
        with pytest.raises(duckdb.InvalidInputException) as caught:
            keyless.execute("select count(*) from staging.stg_shop__product_rejections").fetchall()
        assert MISSING_KEY_MESSAGE in str(caught.value)

        keyless.execute("delete from privacy.suppressed_identifiers")
        # Evaluating cx360_keyed_hash here would raise: these counts prove the empty list skips hashing.
        for model in FILTERED:
            raw_count = keyless.execute(_count_sql(model)).fetchone()[0]
            assert raw_count > 0 or model == "stg_privacy__erasure_requests", model
    finally:
        keyless.close()
