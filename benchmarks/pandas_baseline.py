"""The pandas baseline: the customer profile as a typical analyst would build it in a notebook.

Reads every landing file with ``pd.read_csv`` / ``pd.read_json(lines=True)`` (falling back to a tolerant
line-by-line ``json.loads`` for files with broken lines, which every generated JSONL file has), matches
people by e-mail only (lower-cased and trimmed; no phone, user id or device links, no identity graph), and
builds one row per e-mail with:

- name and country from the latest CRM record,
- orders (distinct ``order_id`` of ``order_placed`` cart events) and revenue (quantity x unit price),
- support tickets (distinct ``ticket_id``),
- first and last seen (min/max event time over every source that carries an e-mail, web identify
  traits included).

Re-deliveries are dropped by each source's record key, as an analyst would with ``drop_duplicates``.
Usage: ``python -m benchmarks.pandas_baseline --landing DIR --out profile.parquet [--json stats.json]``.
The harness runs it in a subprocess under a memory cap (``RLIMIT_AS``) and a time-out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

EMAIL_COLUMNS = {
    "crm_contacts": ("email", "updated_at"),
    "cart_events": ("email", "occurred_at"),
    "product_rejections": ("email", "occurred_at"),
    "support_interactions": ("requester_email", "created_at"),
    "gdpr_consents": ("email", "recorded_at"),
    "erasure_requests": ("email", "requested_at"),
    "nps_responses": ("email", "responded_at"),
}
RECORD_KEYS = {
    "crm_contacts": ["contact_id", "updated_at"],
    "web_events": ["messageId"],
    "cart_events": ["event_id"],
    "product_rejections": ["rejection_id"],
    "support_interactions": ["ticket_id"],
    "gdpr_consents": ["consent_event_id"],
    "erasure_requests": ["request_id"],
    "nps_responses": ["response_id"],
}
CSV_SOURCES = ("crm_contacts", "cart_events", "product_rejections", "gdpr_consents", "erasure_requests",
               "nps_responses")  # fmt: skip


def read_jsonl(path: Path) -> pd.DataFrame:
    try:
        return pd.read_json(path, lines=True, dtype=False)
    except ValueError:
        rows = []
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    rows.append(record)
        return pd.DataFrame.from_records(rows)


def read_source(landing: Path, source: str, columns: list[str]) -> pd.DataFrame:
    frames = []
    if source in CSV_SOURCES:
        for path in sorted((landing / source).glob("*.csv")):
            frame = pd.read_csv(path, dtype=str, on_bad_lines="skip")
            frames.append(frame.reindex(columns=columns))
    else:
        for path in sorted((landing / source).glob("*.jsonl")):
            frame = read_jsonl(path)
            frames.append(frame.reindex(columns=columns))
    if not frames:
        return pd.DataFrame(columns=columns)
    frame = pd.concat(frames, ignore_index=True)
    key = [c for c in RECORD_KEYS[source] if c in frame.columns]
    return frame.drop_duplicates(subset=key, keep="first")


def normalise_email(values: pd.Series) -> pd.Series:
    cleaned = values.astype("str").str.strip().str.lower()
    return cleaned.where(values.notna() & (cleaned != "") & cleaned.str.contains("@", regex=False))


def to_time(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")


def build_profile(landing: Path) -> tuple[pd.DataFrame, dict]:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    sources: dict[str, pd.DataFrame] = {}
    sources["crm_contacts"] = read_source(
        landing,
        "crm_contacts",
        ["contact_id", "email", "first_name", "last_name", "country", "updated_at"],
    )
    sources["cart_events"] = read_source(
        landing,
        "cart_events",
        ["event_id", "email", "event_type", "order_id", "quantity", "unit_price", "occurred_at"],
    )
    sources["support_interactions"] = read_source(
        landing, "support_interactions", ["ticket_id", "requester_email", "created_at"]
    )
    for source in ("product_rejections", "gdpr_consents", "erasure_requests", "nps_responses"):
        email, when = EMAIL_COLUMNS[source]
        sources[source] = read_source(landing, source, [RECORD_KEYS[source][0], email, when])
    web = read_source(landing, "web_events", ["messageId", "type", "timestamp", "traits"])
    timings["read_seconds"] = time.perf_counter() - started

    started = time.perf_counter()
    identify = web[web["type"] == "identify"].copy()
    identify["email"] = identify["traits"].map(lambda t: t.get("email") if isinstance(t, dict) else None)
    seen = [identify.assign(email=normalise_email(identify["email"]), at=to_time(identify["timestamp"]))[
        ["email", "at"]
    ]]  # fmt: skip
    del web, identify
    for source, (email, when) in EMAIL_COLUMNS.items():
        frame = sources[source]
        seen.append(pd.DataFrame({"email": normalise_email(frame[email]), "at": to_time(frame[when])}))
    seen_all = pd.concat(seen, ignore_index=True).dropna(subset=["email"])
    activity = seen_all.groupby("email").agg(first_seen_at=("at", "min"), last_seen_at=("at", "max"))

    crm = sources["crm_contacts"].assign(
        email=lambda f: normalise_email(f["email"]), updated=lambda f: to_time(f["updated_at"])
    )
    crm = crm.dropna(subset=["email"]).sort_values("updated").drop_duplicates("email", keep="last")
    crm = crm.set_index("email")[["first_name", "last_name", "country"]]

    cart = sources["cart_events"]
    orders = cart[cart["event_type"] == "order_placed"].copy()
    orders["email"] = normalise_email(orders["email"])
    orders["amount"] = pd.to_numeric(orders["quantity"], errors="coerce") * pd.to_numeric(
        orders["unit_price"], errors="coerce"
    )
    orders = orders.dropna(subset=["email"])
    order_stats = orders.groupby("email").agg(orders=("order_id", "nunique"), revenue=("amount", "sum"))

    tickets = sources["support_interactions"].assign(email=lambda f: normalise_email(f["requester_email"]))
    ticket_stats = tickets.dropna(subset=["email"]).groupby("email").agg(tickets=("ticket_id", "nunique"))

    profile = (
        activity.merge(crm, left_index=True, right_index=True, how="outer")
        .merge(order_stats, left_index=True, right_index=True, how="outer")
        .merge(ticket_stats, left_index=True, right_index=True, how="outer")
    )
    profile[["orders", "tickets"]] = profile[["orders", "tickets"]].fillna(0).astype("int64")
    profile["revenue"] = profile["revenue"].fillna(0.0).round(2)
    profile = profile.reset_index(names="email")
    timings["transform_seconds"] = time.perf_counter() - started
    return profile, timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--landing", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="profile output (.parquet or .csv)")
    parser.add_argument("--json", type=Path, help="write timings and counts here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    profile, timings = build_profile(args.landing)
    write_started = time.perf_counter()
    if args.out.suffix == ".parquet":
        profile.to_parquet(args.out, index=False)
    else:
        profile.to_csv(args.out, index=False)
    timings["write_seconds"] = time.perf_counter() - write_started
    result = {
        **timings,
        "seconds": time.perf_counter() - started,
        "profiles": len(profile),
        "with_orders": int((profile["orders"] > 0).sum()),
        "revenue": float(profile["revenue"].sum()),
    }
    if args.json:
        args.json.write_text(json.dumps(result))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
