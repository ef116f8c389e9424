"""Incremental dbt builds equal a full rebuild, on a hand-made three-day sample (docs/operations.md).

Day 1 is loaded and built; day 2 brings a late event for day 1, a sign-in that identifies a device seen
anonymously on day 1, a record that merges two customers, the shop's record of a cart whose Segment copy was
built on day 1, the cart events of an order whose return was built on day 1, a new CRM contact version, a
ticket re-export, a re-delivered message, and one file whose load time is stamped before day 1's (a clock set
back). Day 3 comes half a year later: a new visitor's sign-in moves `as_of` past the merged buyer's lapse (a
stage that changes with no new touchpoint of theirs), and a late, out-of-order event on a device identified
on day 2. After each incremental build every incremental model (the touchpoint union, the stage history, the
touchpoint facts and their bi copy) and the tables between them must equal a `--full-refresh` build of the
same raw data, table by table, ordered by key; day 2 must have re-read only day 2's records, and the marts
must have rewritten only the affected customers' rows. With `touchpoints_lookback_hours: 0` the file stamped
in the past is missed: the lookback is what lets it in. A corrected ticket file that moves a touchpoint to
another customer, with no new touchpoint of either, must reach the marts too (the changed-touchpoint rule).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sample_warehouse import query, run_dbt

from cx_pipeline.sql import (
    Sql,
    compose,
    identifiers,
    plain_identifier,
    qualified_name,
    quote_identifier,
    quote_literal,
)

pytestmark = pytest.mark.xdist_group("incremental")

# The incremental model and everything downstream of it that the journey needs, keyed for the comparison.
COMPARED_TABLES = {
    "intermediate.int_touchpoints_unioned": "touchpoint_id",
    "intermediate.int_touchpoints_attributed": "touchpoint_id",
    "intermediate.int_identifiers_resolved": "identifier_type, identifier_value",
    "intermediate.int_customer_id_merges": "all",
    "intermediate.int_journey_stage_transitions_derived": "customer_id, entered_at",
    "marts.fct_journey_stage_history": "stage_spell_id",
    "marts.fct_touchpoints": "touchpoint_id",
    "bi.fct_touchpoints": "touchpoint_key",
}
SELECTION = ["+bi_fct_touchpoints", "+fct_journey_stage_history", "+int_customer_id_merges"]
# The incremental marts (docs/operations.md): each compares its inputs with its own table.
INCREMENTAL_MARTS = ["fct_journey_stage_history", "fct_touchpoints", "bi_fct_touchpoints"]
DAY_1_LOADED_AT = datetime(2026, 1, 2, 6, 0, tzinfo=UTC)
DAY_2_LOADED_AT = DAY_1_LOADED_AT + timedelta(days=1)
DAY_3_LOADED_AT = DAY_2_LOADED_AT + timedelta(days=1)
# A second ingestion host whose clock is an hour behind: its day-2 file is stamped before day 1's loads.
SKEWED_LOADED_AT = DAY_1_LOADED_AT - timedelta(hours=1)
SKEWED_SOURCE = "nps_responses"
CONSENT_HEADER = (
    "consent_event_id,email,user_id,purpose,status,lawful_basis,source,policy_version,recorded_at"
)


def _jsonl(*records: dict) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def _csv(header: str, *rows: str) -> str:
    return "\n".join([header, *rows]) + "\n"


CART_HEADER = (
    "event_id,cart_id,user_id,email,anonymous_id,event_type,product_id,product_name,category,quantity,"
    "unit_price,currency,order_id,channel,occurred_at"
)
CRM_HEADER = (
    "contact_id,email,phone,first_name,last_name,company,city,country,crm_lifecycle_stage,"
    "created_at,updated_at"
)


def _page(message_id: str, at: str, anonymous_id: str | None, user_id: str | None = None) -> dict:
    return {
        "type": "page",
        "messageId": message_id,
        "anonymousId": anonymous_id,
        "userId": user_id,
        "timestamp": at,
        "name": "Home",
        "context": {"page": {"url": "https://shop.example.com/", "path": "/"}, "device": {"type": "desktop"}},
    }


def _track(message_id: str, at: str, event: str, properties: dict, **ids: str) -> dict:
    return {
        "type": "track",
        "messageId": message_id,
        "anonymousId": ids.get("anonymous_id"),
        "userId": ids.get("user_id"),
        "timestamp": at,
        "event": event,
        "properties": properties,
        "context": {"device": {"type": "desktop"}},
    }


def _identify(message_id: str, at: str, anonymous_id: str | None, user_id: str, email: str) -> dict:
    return {
        "type": "identify",
        "messageId": message_id,
        "anonymousId": anonymous_id,
        "userId": user_id,
        "timestamp": at,
        "traits": {"email": email},
    }


DAY_1 = {
    "web_events/2025-01-01.jsonl": _jsonl(
        # Anonymous browsing; the device signs in on day 2.
        _page("m1", "2025-01-01T09:00:00Z", "device-x"),
        _track(
            "m2", "2025-01-01T09:01:00Z", "Product Viewed", {"product_id": "P-7"}, anonymous_id="device-x"
        ),
        _identify("m3", "2025-01-01T10:00:00Z", "device-a", "user-a", "ann@example.com"),
        _page("m4", "2025-01-01T10:01:00Z", "device-a", "user-a"),
        # The shop records this cart on day 2: the Segment copy is then withdrawn.
        _track(
            "m5",
            "2025-01-01T10:02:00Z",
            "Product Added",
            {"product_id": "P-5", "cart_id": "CART-1"},
            anonymous_id="device-a",
            user_id="user-a",
        ),
        _identify("m6", "2025-01-01T11:00:00Z", "device-b", "user-b", "bob@example.com"),
        _track("m7", "2025-01-01T11:05:00Z", "Product Viewed", {"product_id": "P-1"}, user_id="user-b"),
    ),
    "cart_events/2025-01-01.csv": _csv(
        CART_HEADER,
        "E1,CART-2,user-b,bob@example.com,device-b,item_added,P-1,Shoe,shoes,1,10.00,EUR,,web,2025-01-01T11:06:00Z",
        "E2,CART-2,user-b,bob@example.com,device-b,order_placed,P-1,Shoe,shoes,1,10.00,EUR,O-2,web,"
        "2025-01-01T11:10:00Z",
    ),
    # A return of order O-1, whose cart events (in the store) only arrive on day 2: its channel changes.
    "product_rejections/2025-01-01.csv": _csv(
        "rejection_id,user_id,email,product_id,order_id,rejection_type,reason,occurred_at",
        "R1,user-a,ann@example.com,P-5,O-1,returned,Too small,2025-01-01T12:00:00Z",
    ),
    "support_interactions/2025-01-01.jsonl": _jsonl(
        {
            "ticket_id": "T1",
            "requester_email": "bob@example.com",
            "channel": "email",
            "category": "delivery",
            "status": "open",
            "created_at": "2025-01-01T13:00:00Z",
        }
    ),
    "nps_responses/2025-01-01.csv": _csv(
        "response_id,email,user_id,score,comment,touchpoint,channel,responded_at",
        "NPS1,bob@example.com,user-b,9,,post_purchase,email,2025-01-01T14:00:00Z",
    ),
    "gdpr_consents/2025-01-01.csv": _csv(
        CONSENT_HEADER,
        "CE1,ann@example.com,user-a,email_marketing,granted,consent,checkout,v1,2025-01-01T10:05:00Z",
    ),
    "crm_contacts/2025-01-01.csv": _csv(
        CRM_HEADER,
        "C1,ann@example.com,,Ann,Lee,,,DE,lead,2024-12-01T09:00:00Z,2025-01-01T09:00:00Z",
    ),
    "erasure_requests/2025-01-01.csv": _csv("request_id,email,phone,user_id,requested_at"),
}

DAY_2 = {
    "web_events/2025-01-02.jsonl": _jsonl(
        # device-x signs in: its day-1 browsing (m1, m2) is re-attributed to this customer.
        _identify("m8", "2025-01-02T09:00:00Z", "device-x", "user-c", "cat@example.com"),
        # Late: happened on day 1, before device-a's sign-in; delivered a day late.
        _page("m9", "2025-01-01T08:00:00Z", "device-a"),
        # user-b signs in with Ann's email: customers A and B merge, with both histories.
        _identify("m10", "2025-01-02T10:00:00Z", "device-b", "user-b", "ann@example.com"),
        # m3 delivered again: flagged as a duplicate by the ingestion, nothing changes.
        _identify("m3", "2025-01-01T10:00:00Z", "device-a", "user-a", "ann@example.com"),
    ),
    "cart_events/2025-01-02.csv": _csv(
        CART_HEADER,
        "E3,CART-1,user-a,ann@example.com,device-a,item_added,P-5,Bag,bags,1,20.00,EUR,,store,2025-01-01T10:02:00Z",
        "E4,CART-1,user-a,ann@example.com,device-a,order_placed,P-5,Bag,bags,1,20.00,EUR,O-1,store,"
        "2025-01-01T10:30:00Z",
    ),
    "crm_contacts/2025-01-02.csv": _csv(
        CRM_HEADER,
        "C1,ann@example.com,,Ann,Lee,,,DE,customer,2024-12-01T09:00:00Z,2025-01-02T09:00:00Z",
    ),
    "support_interactions/2025-01-02.jsonl": _jsonl(
        {
            "ticket_id": "T1",
            "requester_email": "bob@example.com",
            "channel": "email",
            "category": "delivery",
            "status": "solved",
            "created_at": "2025-01-01T13:00:00Z",
            "solved_at": "2025-01-02T08:00:00Z",
        }
    ),
    f"{SKEWED_SOURCE}/2025-01-02.csv": _csv(
        "response_id,email,user_id,score,comment,touchpoint,channel,responded_at",
        "NPS2,cat@example.com,user-c,3,,relationship,email,2025-01-02T09:30:00Z",
    ),
}
# Touchpoints the day-2 build re-reads: day 2's records, plus the return R1 (its order's channel) and both
# rows of contact C1. m3 is a flagged duplicate; the Segment copy m5 is withdrawn by the post-hook.
DAY_2_REREAD_TOUCHPOINTS = sorted(
    [
        "segment:m8",
        "segment:m9",
        "segment:m10",
        "shop:E3",
        "shop:E4",
        "shop_rejection:R1",
        "crm:C1:created",
        "crm:C1:updated",
        "support:T1",
        "surveys:NPS2",
    ]
)


DAY_3 = {
    "web_events/2025-07-15.jsonl": _jsonl(
        # A new visitor half a year later: `as_of` moves past the merged buyer's lapse (last activity
        # 2025-01-02 + 180 days), a stage change without any new touchpoint of theirs.
        _identify("m11", "2025-07-15T09:00:00Z", "device-d", "user-d", "dan@example.com"),
        _page("m12", "2025-07-15T09:01:00Z", "device-d", "user-d"),
        # Late and out of order: browsing on device-x (identified as user-c on day 2) on day 1, before m1.
        _page("m13", "2025-01-01T08:30:00Z", "device-x"),
    ),
}
# Day 3's touchpoints, and the rows of the customers they touch: the marts rewrite these and nothing else.
DAY_3_NEW_TOUCHPOINTS = ["segment:m11", "segment:m12", "segment:m13"]
# user-c's touchpoints (m13 joins them and changes where their discovery spell starts).
DAY_3_USER_C_TOUCHPOINTS = ["segment:m1", "segment:m2", "segment:m8", "surveys:NPS2"]


def _write(landing: Path, files: dict[str, str]) -> None:
    for relative, content in files.items():
        path = landing / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def _load(warehouse: Path, landing: Path, quarantine: Path, loaded_at: datetime, sources=None) -> None:
    from cx_pipeline.contracts import SOURCE_NAMES
    from cx_pipeline.ingestion.loader import load_source
    from cx_pipeline.warehouse import connect

    conn = connect(warehouse)
    try:
        for source in sources or SOURCE_NAMES:
            at = SKEWED_LOADED_AT if loaded_at == DAY_2_LOADED_AT and source == SKEWED_SOURCE else loaded_at
            result = load_source(conn, source, landing, quarantine, now=lambda at=at: at)
            assert not result.rejected, result.rejected
    finally:
        conn.close()


def _dbt(
    root: Path, warehouse: Path, *args: str, select: list[str] = SELECTION, exclude: list[str] = ()
) -> dict:
    """``dbt build`` (models and seeds, no tests) of ``select`` on ``warehouse``; returns run_results.json."""
    run_dbt(
        root,
        warehouse,
        "build",
        "--select",
        *select,
        "--exclude",
        "resource_type:test",
        "resource_type:unit_test",
        *exclude,
        *args,
    )
    return json.loads((root / "dbt_target" / "run_results.json").read_text())


def _compiled_sql(root: Path, model: str, folder: str = "intermediate") -> str:
    """The compiled select of ``model``, found anywhere under ``models/<folder>`` (models live in area
    subfolders)."""
    compiled = root / "dbt_target" / "compiled" / "cx360" / "models" / folder
    (path,) = compiled.rglob(f"{model}.sql")
    return path.read_text()


def _batch(
    warehouse: Path, catalog: str, compiled_sql: str, key: str = "touchpoint_id", *, distinct: bool = False
) -> list[str]:
    """The ``key`` values an incremental build's compiled select returns on ``warehouse`` (a copy of the
    warehouse it was compiled for, attached under that warehouse's catalog name): what the build re-read."""
    import duckdb

    conn = duckdb.connect()
    try:
        conn.execute("set TimeZone = 'UTC'")
        conn.execute(
            compose(
                "attach {path} as {catalog} (read_only)",
                path=quote_literal(str(warehouse)),
                catalog=quote_identifier(catalog),
            )
        )
        conn.execute(compose("use {catalog}", catalog=quote_identifier(catalog)))
        # The compiled model is run as it is (a relation), only its key column is taken.
        relation = conn.sql(compiled_sql).project(plain_identifier(key))
        rows = (relation.distinct() if distinct else relation).fetchall()
        return sorted(row[0] for row in rows)
    finally:
        conn.close()


def _order_by(key: str) -> Sql:
    """``all`` or a comma-separated column list (COMPARED_TABLES' keys), quoted."""
    return Sql("all") if key == "all" else identifiers(column.strip() for column in key.split(","))


def _contents(warehouse: Path) -> dict[str, list[tuple]]:
    from cx_pipeline.warehouse import connect

    conn = connect(warehouse, read_only=True)
    try:
        return {
            table: conn.execute(
                compose(
                    "select * from {table} order by {key}",
                    table=qualified_name(*table.split(".")),
                    key=_order_by(key),
                )
            ).fetchall()
            for table, key in COMPARED_TABLES.items()
        }
    finally:
        conn.close()


def _full_rebuild(root: Path, warehouse: Path, name: str) -> Path:
    """A copy of ``warehouse`` rebuilt with ``--full-refresh`` (same raw data)."""
    full = root / f"{name}.duckdb"
    shutil.copyfile(warehouse, full)
    _dbt(root, full, "--full-refresh")
    return full


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("incremental")
    landing, quarantine = root / "landing", root / "quarantine"
    incremental = root / "incremental.duckdb"

    _write(landing, DAY_1)
    _load(incremental, landing, quarantine, DAY_1_LOADED_AT)
    _dbt(root, incremental)
    day_1_rows = query(incremental, "select count(*) from intermediate.int_touchpoints_unioned")[0][0]

    _write(landing, DAY_2)
    _load(incremental, landing, quarantine, DAY_2_LOADED_AT)
    # What the union reads is built first (a staging model made a table would be stale otherwise), then the
    # union and the rest.
    _dbt(root, incremental, select=["+int_touchpoints_unioned"], exclude=["int_touchpoints_unioned"])
    without_lookback = root / "without_lookback.duckdb"
    shutil.copyfile(incremental, without_lookback)
    before_day_2 = root / "before_day_2.duckdb"
    shutil.copyfile(incremental, before_day_2)
    _dbt(root, incremental)
    day_2_batch = _batch(before_day_2, incremental.stem, _compiled_sql(root, "int_touchpoints_unioned"))
    full = _full_rebuild(root, incremental, "full")
    _dbt(
        root,
        without_lookback,
        "--vars",
        json.dumps({"touchpoints_lookback_hours": 0}),
        select=["int_touchpoints_unioned"],
    )
    day_2 = {"incremental": _contents(incremental), "full": _contents(full)}

    # Day 3, built in two steps to see what the marts rewrite: everything up to the marts, then the marts.
    _write(landing, DAY_3)
    _load(incremental, landing, quarantine, DAY_3_LOADED_AT)
    _dbt(root, incremental, exclude=INCREMENTAL_MARTS)
    before_marts_day_3 = root / "before_marts_day_3.duckdb"
    shutil.copyfile(incremental, before_marts_day_3)
    _dbt(root, incremental, select=INCREMENTAL_MARTS)
    day_3_batches = {
        "fct_touchpoints": _batch(
            before_marts_day_3, incremental.stem, _compiled_sql(root, "fct_touchpoints", "marts/core")
        ),
        "fct_journey_stage_history": _batch(
            before_marts_day_3,
            incremental.stem,
            _compiled_sql(root, "fct_journey_stage_history", "marts/core"),
            key="customer_id",
            distinct=True,
        ),
    }
    full_day_3 = _full_rebuild(root, incremental, "full_day_3")
    day_3 = {"incremental": _contents(incremental), "full": _contents(full_day_3)}
    return {
        "incremental": incremental,
        "full": full,
        "full_day_3": full_day_3,
        "without_lookback": without_lookback,
        "day_1_rows": day_1_rows,
        "day_2_batch": day_2_batch,
        "day_2": day_2,
        "day_3": day_3,
        "day_3_batches": day_3_batches,
        "landing": landing,
    }


@pytest.mark.parametrize("day", ["day_2", "day_3"])
def test_incremental_build_equals_full_rebuild_table_by_table(built: dict, day: str) -> None:
    incremental, full = built[day]["incremental"], built[day]["full"]
    for table in COMPARED_TABLES:
        assert full[table], f"{table} is empty"
        assert incremental[table] == full[table], f"{day}: {table}: incremental build != full rebuild"
    assert len(full["intermediate.int_touchpoints_unioned"]) > built["day_1_rows"]


def test_day_3_marts_rewrite_only_the_affected_customers(built: dict) -> None:
    """Day 3's new touchpoints and all rows of their customers are rewritten; the merged buyer, whose stage
    history gains a lapse because `as_of` moved, has only its spells rewritten (no touchpoint of theirs is in
    the lapse); nothing else is."""
    batches = built["day_3_batches"]
    assert batches["fct_touchpoints"] == sorted(DAY_3_NEW_TOUCHPOINTS + DAY_3_USER_C_TOUCHPOINTS)
    customers = dict(
        query(
            built["incremental"],
            "select touchpoint_id, customer_id from marts.fct_touchpoints "
            "where touchpoint_id in ('segment:m4', 'segment:m8', 'segment:m11')",
        )
    )
    assert batches["fct_journey_stage_history"] == sorted(customers.values())
    current_sql = (
        "select journey_stage, transition_reason from marts.fct_journey_stage_history where is_current"
    )
    current = query(built["incremental"], f"{current_sql} and customer_id = '{customers['segment:m4']}'")
    assert current == [("lapsed", "inactivity")]
    late = query(
        built["incremental"],
        "select customer_id, journey_stage from marts.fct_touchpoints where touchpoint_id = 'segment:m13'",
    )
    assert late == [(customers["segment:m8"], "discovery")]


def test_incremental_build_read_only_the_new_records(built: dict) -> None:
    assert built["day_2_batch"] == DAY_2_REREAD_TOUCHPOINTS
    assert built["day_1_rows"] > len(DAY_2_REREAD_TOUCHPOINTS)


def test_day_2_rewrites_history(built: dict) -> None:
    rows = query(
        built["incremental"],
        "select touchpoint_id, customer_id, occurred_at, channel, is_anonymous_at_time "
        "from marts.fct_touchpoints",
    )
    ids = {row[0]: row[1:] for row in rows}
    # Retroactive stitching: device-x's day-1 browsing belongs to the customer who signed in on it on day 2.
    assert ids["segment:m1"][0] is not None and ids["segment:m1"][0] == ids["segment:m8"][0]
    assert ids["segment:m1"][3] is True
    # The merge: Ann's and Bob's histories are one customer's.
    merged = ("segment:m4", "segment:m7", "shop:E2", "surveys:NPS1", "crm:C1:created")
    assert len({ids[touchpoint][0] for touchpoint in merged}) == 1
    # The late event sits on day 1 with the customer of its device.
    assert ids["segment:m9"][1].isoformat().startswith("2025-01-01T08:00")
    assert ids["segment:m9"][0] == ids["segment:m4"][0]
    # The shop's record replaced Segment's copy; the return now carries its order's channel.
    assert "segment:m5" not in ids and "shop:E3" in ids
    assert ids["shop_rejection:R1"][2] == "store"
    assert "surveys:NPS2" in ids


def test_without_lookback_a_load_stamped_in_the_past_is_missed(built: dict) -> None:
    sql = "select count(*) from intermediate.int_touchpoints_unioned where touchpoint_id = 'surveys:NPS2'"
    assert query(built["incremental"], sql) == [(1,)]
    assert query(built["without_lookback"], sql) == [(0,)]
    table = "intermediate.int_touchpoints_unioned"
    assert _contents(built["without_lookback"])[table] != _contents(built["full"])[table]


def _replace_after_day_3(built: dict, root: Path, landing_path: str, content: str) -> Path:
    """A copy of the day-3 warehouse (under ``root``) after loading a corrected version of one landing file
    a day later; the built warehouse and landing folder are left alone."""
    landing = root / "landing"
    shutil.copytree(built["landing"], landing)
    warehouse = root / "corrected.duckdb"
    shutil.copyfile(built["incremental"], warehouse)
    _write(landing, {landing_path: content})
    source = landing_path.split("/", 1)[0]
    _load(warehouse, landing, root / "quarantine", DAY_3_LOADED_AT + timedelta(days=1), [source])
    return warehouse


def test_a_replaced_landing_file_rebuilds_the_table(built: dict, tmp_path: Path) -> None:
    """A landing file replaced by a corrected version may have lost records: the pre-hook rebuilds."""
    # Day 1's consent file is corrected: CE1 is gone, CE2 is new.
    warehouse = _replace_after_day_3(
        built,
        tmp_path,
        "gdpr_consents/2025-01-01.csv",
        _csv(
            CONSENT_HEADER,
            "CE2,ann@example.com,user-a,analytics,denied,consent,cookie_banner,v1,2025-01-01T10:06:00Z",
        ),
    )
    # With what it reads (a staging model made a table would be stale otherwise).
    _dbt(tmp_path, warehouse, select=["+int_touchpoints_unioned"])
    full = tmp_path / "replaced_full.duckdb"
    shutil.copyfile(warehouse, full)
    _dbt(tmp_path, full, "--full-refresh", select=["int_touchpoints_unioned"])

    table = "intermediate.int_touchpoints_unioned"
    assert _contents(warehouse)[table] == _contents(full)[table]
    ids = {
        row[0]
        for row in query(
            warehouse, compose("select touchpoint_id from {table}", table=qualified_name(*table.split(".")))
        )
    }
    assert "privacy:CE2" in ids and "privacy:CE1" not in ids


def test_a_table_built_before_the_model_was_incremental_is_rebuilt(built: dict, tmp_path: Path) -> None:
    """A warehouse upgraded from the full-rebuild model (no load column) needs no manual full refresh."""
    from cx_pipeline.warehouse import connect

    warehouse = tmp_path / "upgraded.duckdb"
    shutil.copyfile(built["full"], warehouse)
    table = "intermediate.int_touchpoints_unioned"
    quoted = qualified_name(*table.split("."))
    conn = connect(warehouse)
    try:
        conn.execute(compose("alter table {table} drop column _loaded_at", table=quoted))
        conn.execute(compose("alter table {table} drop column cart_id", table=quoted))
    finally:
        conn.close()
    _dbt(tmp_path, warehouse, select=["int_touchpoints_unioned"])
    assert _contents(warehouse)[table] == _contents(built["full"])[table]


def test_a_corrected_record_moves_its_touchpoint_with_no_new_touchpoint(built: dict, tmp_path: Path) -> None:
    """Re-attribution that no new touchpoint announces: day 2's ticket re-export is replaced by a version
    whose requester is Dan (day 3's visitor), so support:T1 moves from the merged Ann/Bob customer to Dan's
    while neither customer gets a new touchpoint. The marts must still rewrite it and both customers'
    rows."""
    warehouse = _replace_after_day_3(
        built,
        tmp_path,
        "support_interactions/2025-01-02.jsonl",
        _jsonl(
            {
                "ticket_id": "T1",
                "requester_email": "dan@example.com",
                "channel": "email",
                "category": "delivery",
                "status": "solved",
                "created_at": "2025-01-01T13:00:00Z",
                "solved_at": "2025-01-02T08:00:00Z",
            }
        ),
    )
    before = dict(query(built["incremental"], "select touchpoint_id, customer_id from marts.fct_touchpoints"))
    _dbt(tmp_path, warehouse)
    full = _full_rebuild(tmp_path, warehouse, "corrected_full")

    incremental_contents, full_contents = _contents(warehouse), _contents(full)
    for table in COMPARED_TABLES:
        assert incremental_contents[table] == full_contents[table], f"{table}: incremental != full rebuild"
    after = dict(query(warehouse, "select touchpoint_id, customer_id from marts.fct_touchpoints"))
    dan = after["segment:m11"]
    assert before["support:T1"] != dan and after["support:T1"] == dan
