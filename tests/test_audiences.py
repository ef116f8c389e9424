"""Marketing audiences never reach anyone without the consent their purpose needs (docs/privacy.md).

Hand-made cases (withdrawn after a grant, granted again later, never recorded, other purpose only, erasure
pending, objections to CX contact) are dbt unit tests in ``models/marts/privacy/_privacy__models.yml`` and
``models/marketing/_marketing__models.yml``; this module runs them against a built sample warehouse, checks
every audience row there against the consent log independently of the models, plants a withdrawal and a
re-grant in a later delivery and rebuilds, and exercises the exports.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from sample_warehouse import ingest, run_dbt

from cx_pipeline.sql import Sql, compose, qualified_name

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("privacy_audiences")]

SAMPLE_PERSONS = int(os.environ.get("CX360_AUDIENCE_TEST_PERSONS", "300"))
# Audience -> the consent purpose that must be granted now for every row.
CONSENT_GATED = {
    "audience_abandoned_cart": "email_marketing",
    "audience_win_back": "email_marketing",
    "audience_viewed_not_bought": "personalization",
}


def _query(paths, sql: str, params=None) -> list[tuple]:
    connection = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        return connection.execute(sql, params or []).fetchall()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, object]]:
    from cx_pipeline.generator import GeneratorConfig, generate
    from cx_pipeline.settings import Paths

    root = tmp_path_factory.mktemp("privacy_audiences")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "CX360_WAREHOUSE": root / "cx360.duckdb",
            "CX360_LANDING_DIR": root / "landing",
            "CX360_TRUTH_DIR": root / "truth",
            "CX360_EXPORTS_DIR": root / "exports",
            "CX360_QUARANTINE_DIR": root / "quarantine",
        }.items():
            patch.setenv(name, str(value))
        patch.setenv("CX360_PSEUDONYMISATION_KEY", secrets.token_hex(32))
        paths = Paths.from_env()
        generate(
            GeneratorConfig(
                customers=SAMPLE_PERSONS, seed=5, landing_dir=paths.landing, truth_dir=paths.truth
            ),
            progress=False,
        )
        ingest(paths.warehouse, paths.landing, paths.quarantine)
        run_dbt(root, None, "build", "--exclude", "resource_type:test", "resource_type:unit_test")
        yield root, paths


# Current consent per customer and purpose straight from the consent log and the identity map, without the
# consent models: the latest event wins; at equal times a withdrawal/denial beats a grant.
INDEPENDENT_CURRENT_CONSENT = Sql("""
    with events as (
        select
            coalesce(by_user.customer_id, by_email.customer_id) as customer_id,
            events.purpose,
            events.status,
            events.recorded_at,
            events.consent_event_id,
        from staging.stg_privacy__consent_events as events
        left join marts.customer_identity_map as by_user
            on by_user.identifier_type = 'user_id' and by_user.identifier_value = events.user_id
        left join marts.customer_identity_map as by_email
            on by_email.identifier_type = 'email' and by_email.identifier_value = events.email
    )
    select customer_id, purpose,
        arg_max(status, (recorded_at, status != 'granted', consent_event_id)) as status
    from events
    where customer_id is not null
    group by all
""")


def test_privacy_dbt_unit_and_data_tests_pass(built) -> None:
    """Includes the hand-made consent cases: withdrawn after a grant, granted again, never recorded..."""
    root, _ = built
    result = run_dbt(root, None, "test", "--select", "tag:privacy")
    assert "unit_test" in result.stdout or "PASS" in result.stdout


def test_every_audience_row_has_its_purpose_granted_now(built) -> None:
    _, paths = built
    for audience, purpose in CONSENT_GATED.items():
        offenders = _query(
            paths,
            compose(
                """
            with current_consent as ({current_consent})
            select audience.customer_id, current_consent.status
            from {audience} as audience
            left join current_consent
                on audience.customer_id = current_consent.customer_id and current_consent.purpose = ?
            where current_consent.status is distinct from 'granted'
            """,
                current_consent=INDEPENDENT_CURRENT_CONSENT,
                audience=qualified_name("marketing", audience),
            ),
            [purpose],
        )
        assert offenders == [], audience
    profiles = _query(
        paths,
        compose(
            """
        with current_consent as ({current_consent})
        select profiles.customer_id, profiles.email is not null, profiles.products_viewed is not null,
            coalesce(bool_or(c.purpose = 'email_marketing' and c.status = 'granted'), false),
            coalesce(bool_or(c.purpose = 'personalization' and c.status = 'granted'), false)
        from marketing.customer_profiles as profiles
        left join current_consent as c on profiles.customer_id = c.customer_id
        group by all
        """,
            current_consent=INDEPENDENT_CURRENT_CONSENT,
        ),
    )
    assert profiles, "no consent-gated profiles in the sample"
    for customer, has_email, has_products, email_ok, personalization_ok in profiles:
        assert email_ok or personalization_ok, customer
        assert not has_email or email_ok, customer
        assert not has_products or personalization_ok, customer


def test_detractor_follow_up_excludes_objections(built) -> None:
    _, paths = built
    offenders = _query(
        paths,
        compose(
            """
        with current_consent as ({current_consent})
        select audience.customer_id
        from marketing.audience_detractor_follow_up as audience
        inner join current_consent on audience.customer_id = current_consent.customer_id
        group by all
        having not bool_or(current_consent.status = 'granted')
        """,
            current_consent=INDEPENDENT_CURRENT_CONSENT,
        ),
    )
    assert offenders == []
    assert _query(
        paths, "select count(*) from marketing.audience_detractor_follow_up where nps_score > 6"
    ) == [(0,)]


def test_consent_history_current_rows_equal_current_state(built) -> None:
    _, paths = built
    differences = _query(
        paths,
        compose(
            """
        with independent as ({current_consent}),
        history as (
            select customer_id, purpose, status from marts.fct_consent_history where is_current
        ),
        current_state as (select customer_id, purpose, status from intermediate.int_consent_current)
        select 'history', * from (select * from history except select * from independent)
        union all select 'independent', * from (select * from independent except select * from history)
        union all select 'current', * from (select * from current_state except select * from history)
        """,
            current_consent=INDEPENDENT_CURRENT_CONSENT,
        ),
    )
    assert differences == []


def test_planted_withdrawal_and_regrant_are_honoured(built) -> None:
    """A later delivery withdraws one customer's email_marketing, withdraws and re-grants another's, and
    grants-then-withdraws (same second) a third's: after the rebuild only the re-granted one is emailable."""
    root, paths = built
    candidates = _query(
        paths,
        """
        select profiles.customer_id, any_value(map.identifier_value)
        from marketing.customer_profiles as profiles
        inner join marts.customer_identity_map as map
            on profiles.customer_id = map.customer_id and map.identifier_type = 'email'
        where profiles.email_marketing_granted
        group by all
        order by 1
        limit 2
        """,
    )
    # Not emailable now: no email_marketing record at all, or a denial or withdrawal as the latest one.
    not_granted = _query(
        paths,
        """
        select customers.customer_id, any_value(map.identifier_value)
        from marts.dim_customers as customers
        inner join marts.customer_identity_map as map
            on customers.customer_id = map.customer_id and map.identifier_type = 'email'
        where customers.customer_id not in (
            select customer_id from intermediate.int_consent_current
            where purpose = 'email_marketing' and status = 'granted'
        )
        group by all
        order by 1
        limit 1
        """,
    )
    assert len(candidates) == 2 and len(not_granted) == 1
    (withdrawn, withdrawn_email), (regranted, regranted_email) = candidates
    ((flip, flip_email),) = not_granted
    latest = _query(paths, "select max(recorded_at) from staging.stg_privacy__consent_events")[0][0]
    assert latest.isoformat() < "2026-12-01"  # the planted events are the latest of all
    rows = [
        ("PLANT-1", withdrawn_email, "withdrawn", "2026-12-01T10:00:00Z"),
        ("PLANT-2", regranted_email, "withdrawn", "2026-12-01T10:00:00Z"),
        ("PLANT-3", regranted_email, "granted", "2026-12-02T10:00:00Z"),
        ("PLANT-4", flip_email, "granted", "2026-12-01T10:00:00Z"),
        ("PLANT-5", flip_email, "withdrawn", "2026-12-01T10:00:00Z"),
    ]
    planted = paths.landing / "gdpr_consents" / "2026-12-planted.csv"
    with planted.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["consent_event_id", "email", "user_id", "purpose", "status", "lawful_basis", "source",
             "policy_version", "recorded_at"]
        )  # fmt: skip
        for event_id, email, status, recorded_at in rows:
            writer.writerow(
                [event_id, email, "", "email_marketing", status, "consent", "web", "v9", recorded_at]
            )
    ingest(paths.warehouse, paths.landing, paths.quarantine)
    run_dbt(root, None, "run")

    granted = dict(
        _query(
            paths,
            "select customer_id, is_granted from intermediate.int_consent_current "
            "where purpose = 'email_marketing' and customer_id in (?, ?, ?)",
            [withdrawn, regranted, flip],
        )
    )
    assert granted == {withdrawn: False, regranted: True, flip: False}
    for audience in ("audience_abandoned_cart", "audience_win_back"):
        members = {
            c
            for (c,) in _query(
                paths,
                compose("select customer_id from {audience}", audience=qualified_name("marketing", audience)),
            )
        }
        assert withdrawn not in members and flip not in members, audience
    emailable = dict(
        _query(
            paths,
            "select customer_id, email is not null from marketing.customer_profiles "
            "where customer_id in (?, ?, ?)",
            [withdrawn, regranted, flip],
        )
    )
    assert emailable.get(withdrawn) in (None, False) and emailable.get(flip) in (None, False)
    assert emailable[regranted] is True
    history = _query(
        paths,
        "select status, valid_from, valid_to, is_current from marts.fct_consent_history "
        "where customer_id = ? and purpose = 'email_marketing' order by version_number",
        [regranted],
    )
    assert [h[0] for h in history[-2:]] == ["withdrawn", "granted"]
    assert history[-2][2] == history[-1][1] and history[-1][3] and history[-1][2] is None
    assert history[-3][2] == history[-2][1]  # the withdrawal closed the earlier grant at its own time


def test_exports_write_manifest_and_replace_atomically(built, tmp_path: Path) -> None:
    from cx_pipeline.privacy.exports import export_audience, read_manifest

    _, paths = built
    connection = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        first = export_audience(
            connection, tmp_path, "audience_win_back", relation="marketing.audience_win_back",
            manifest={"purpose": "email_marketing", "consent_rule": "email_marketing granted now"},
        )  # fmt: skip
        inode = (tmp_path / "audience_win_back").stat().st_ino
        second = export_audience(
            connection, tmp_path, "audience_win_back", relation="marketing.audience_win_back",
            manifest={"purpose": "email_marketing", "consent_rule": "email_marketing granted now"},
        )  # fmt: skip
        rows = connection.execute("select count(*) from marketing.audience_win_back").fetchall()[0][0]
    finally:
        connection.close()
    folder = tmp_path / "audience_win_back"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audience_win_back"]  # no temp folders left
    assert sorted(p.name for p in folder.iterdir()) == [
        "audience_win_back.csv",
        "audience_win_back.parquet",
        "manifest.json",
    ]
    assert folder.stat().st_ino != inode  # a new folder was swapped in
    manifest = read_manifest(folder)
    assert manifest == json.loads((folder / "manifest.json").read_text())
    assert manifest["row_count"] == rows == first.row_count == second.row_count
    assert manifest["purpose"] == "email_marketing" and manifest["consent_rule"]
    assert {"generated_at", "files", "columns"} <= set(manifest)
    with (folder / "audience_win_back.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == rows


def test_export_scrub_removes_an_erased_row(built, tmp_path: Path) -> None:
    from cx_pipeline.privacy.exports import export_audience, read_manifest, scrub_export_dir
    from cx_pipeline.privacy.keys import keyed_hash

    _, paths = built
    connection = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        result = export_audience(
            connection, tmp_path, "audience_win_back", relation="marketing.audience_win_back",
            manifest={"purpose": "email_marketing"},
        )  # fmt: skip
        email = connection.execute("select email from marketing.audience_win_back limit 1").fetchall()
    finally:
        connection.close()
    if not email:
        pytest.skip("empty audience in this sample")
    removed = scrub_export_dir(result.path, {keyed_hash(email[0][0]): "ER-X"})
    assert removed == {"ER-X": 1}
    manifest = read_manifest(result.path)
    assert manifest["row_count"] == result.row_count - 1 and manifest["scrubbed_rows"] == 1
    assert email[0][0] not in (result.path / "audience_win_back.csv").read_text()


def test_the_suppression_list_holds_every_opt_out_as_keyed_hashes(built, tmp_path: Path) -> None:
    """Issue #22.8: a suppression export for the messaging tool, keyed hashes only."""
    from cx_pipeline.privacy.exports import export_audience, read_manifest
    from cx_pipeline.privacy.keys import keyed_hash

    _, paths = built
    current = _query(paths, INDEPENDENT_CURRENT_CONSENT)
    opted_out = {c for c, purpose, status in current if purpose == "email_marketing" and status != "granted"}
    emails = _query(
        paths, "select customer_id, unnest(emails) from marts.dim_customers where len(emails) > 0"
    )
    expected = {keyed_hash(email) for customer, email in emails if customer in opted_out}
    rows = _query(
        paths,
        "select identifier_type, identifier_hash, reason, purpose from marketing.suppression_list",
    )
    listed = {
        digest
        for kind, digest, reason, purpose in rows
        if (reason, purpose) == ("opted_out", "email_marketing")
    }
    assert expected and listed == expected
    # No plaintext: every value is a 64-hex keyed hash, and no email of the sample appears.
    assert all(len(digest) == 64 and int(digest, 16) >= 0 for _, digest, _, _ in rows)
    connection = duckdb.connect(str(paths.warehouse), read_only=True)
    try:
        result = export_audience(
            connection, tmp_path, "suppression_list", relation="marketing.suppression_list",
            manifest={"purpose": "suppression"},
        )  # fmt: skip
    finally:
        connection.close()
    text = (result.path / "suppression_list.csv").read_text()
    assert not any(email in text for _, email in emails)
    assert read_manifest(result.path)["row_count"] == len(rows)


def test_the_serving_copy_documents_every_bi_column_and_buckets_months_in_utc(built, tmp_path: Path) -> None:
    """Issue #22.4: dbt's descriptions reach BI tools as comments (persist_docs, carried into the copy), and
    a month bucketed by `ordered_month_utc` is the same month whatever the BI client's time zone."""
    from cx_pipeline.serving import publish_from_warehouse
    from cx_pipeline.serving_client import open_serving_readonly

    _, paths = built
    result = publish_from_warehouse(paths.warehouse, tmp_path / "serving")
    with open_serving_readonly(result.path) as copy:
        undocumented = copy.execute(
            "select table_name, column_name from duckdb_columns() "
            "where schema_name = 'bi' and (comment is null or comment = '') order by all"
        ).fetchall()
        tables = dict(
            copy.execute(
                "select table_name, comment from duckdb_tables() where schema_name = 'bi'"
            ).fetchall()
        )
        utc_months = copy.execute(
            "select ordered_month_utc, sum(net_revenue) from bi.fct_orders group by all order by all"
        ).fetchall()
    assert undocumented == []
    assert {"dim_customers", "fct_orders", "fct_touchpoints"} <= set(tables) and all(tables.values())
    with duckdb.connect(str(result.path), read_only=True) as client:
        client.execute("set TimeZone = 'America/Los_Angeles'")  # a BI tool on the US west coast
        la_months = client.execute(
            "select ordered_month_utc, sum(net_revenue) from bi.fct_orders group by all order by all"
        ).fetchall()
        utc_truth = client.execute(
            "select cast(date_trunc('month', timezone('UTC', ordered_at)) as date), sum(net_revenue) "
            "from bi.fct_orders group by all order by all"
        ).fetchall()
    assert utc_months and la_months == utc_months == utc_truth
