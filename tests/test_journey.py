"""Journey stages against the generator's ground truth, end to end (docs/journey.md).

Generates a sample, loads it into a fresh warehouse with the ingestion code, runs ``dbt build`` for the
touchpoint / journey / profile lineage and the data and unit tests of its models, then compares the current
stage of every person's resolved customer with the person's true final stage (``truth/persons.csv``). A
person's customer is the one most of their true identifiers (``truth/identifiers.csv``) resolve to; on a tie
the one holding more touchpoints (the person's main profile, not a fragment such as a device nobody ever
signed in on).
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from sample_warehouse import DEFAULT_PERSONS, private_copy, run_dbt, shared_default_sample

from cx_pipeline.sql import compose, join, plain_identifier, quote_literal

STAGES = ("discovery", "consideration", "decision", "loyalty", "lapsed")
# Share of persons whose resolved customer is in their true stage; measured 1.000 on the default sample
# (docs/journey.md).
MIN_STAGE_ACCURACY = 0.99
# The data and unit tests of this lineage's own models, run on the shared sample (upstream models' tests
# belong to their own test modules). The sample builds int_consent_current too: the profile's consent flags
# must agree with it.
OWN_MODELS = [
    "journey_stages",
    "int_touchpoints_unioned",
    "int_touchpoints_attributed",
    "int_journey_stage_transitions_derived",
    "int_customer_identifiers_aggregated",
    "int_customer_contacts_survived",
    "int_customer_touchpoints_aggregated",
    "int_customer_products_aggregated",
    "int_customer_carts_aggregated",
    "int_customer_orders_aggregated",
    "int_customer_support_aggregated",
    "int_customer_consents_pivoted",
    "fct_touchpoints",
    "fct_journey_stage_history",
    "dim_customers",
]

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("journey")]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _column(rows: list[dict[str, str]], *candidates: str) -> str:
    for name in candidates:
        if rows and name in rows[0]:
            return name
    raise AssertionError(f"none of the columns {candidates} in {list(rows[0]) if rows else []}")


@pytest.fixture(scope="module")
def journey_warehouse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The shared default sample, then this lineage's data and unit tests on a private copy."""
    sample = private_copy(shared_default_sample(tmp_path_factory), tmp_path_factory.mktemp("journey"))
    run_dbt(
        sample.root, sample.warehouse, "test", "--select", *OWN_MODELS, "--indirect-selection", "cautious"
    )
    return {"warehouse": sample.warehouse, "truth": sample.truth, "root": sample.root}


def stage_comparison(warehouse: Path, truth: Path) -> dict[str, object]:
    """Per person: true final stage, and the current stage of the customer their identifiers resolve to."""
    from cx_pipeline.warehouse import connect

    persons = _read_csv(truth / "persons.csv")
    identifiers = _read_csv(truth / "identifiers.csv")
    person_col = _column(persons, "person_id")
    stage_col = _column(persons, "final_stage")
    id_person = _column(identifiers, "person_id")
    id_type = _column(identifiers, "identifier_type", "type")
    id_value = _column(identifiers, "identifier_value", "value", "normalised_value")

    conn = connect(warehouse, read_only=True)
    try:
        resolved = {
            (kind, value): customer
            for kind, value, customer in conn.execute(
                "select identifier_type, identifier_value, customer_id "
                "from intermediate.int_identifiers_resolved where customer_id is not null"
            ).fetchall()
        }
        profiles = conn.execute(
            "select customer_id, journey_stage, touchpoint_count from marts.dim_customers"
        ).fetchall()
        customer_stage = {customer: stage for customer, stage, _ in profiles}
        customer_touchpoints = {customer: count for customer, _, count in profiles}
    finally:
        conn.close()

    votes: dict[str, Counter] = {}
    for row in identifiers:
        customer = resolved.get((row[id_type], row[id_value]))
        if customer is not None:
            votes.setdefault(row[id_person], Counter())[customer] += 1

    truth_counts: Counter = Counter()
    model_counts: Counter = Counter()
    confusion: Counter = Counter()
    matches = unresolved = 0
    for person in persons:
        true_stage = person[stage_col]
        truth_counts[true_stage] += 1
        ballot = votes.get(person[person_col])
        if not ballot:
            unresolved += 1
            predicted = "unresolved"
        else:
            customer = min(ballot, key=lambda c: (-ballot[c], -customer_touchpoints.get(c, 0), c))
            predicted = customer_stage.get(customer) or "none"
        model_counts[predicted] += 1
        confusion[(true_stage, predicted)] += 1
        matches += predicted == true_stage
    customer_counts = Counter(stage or "none" for stage in customer_stage.values())
    return {
        "persons": len(persons),
        "matches": matches,
        "unresolved": unresolved,
        "accuracy": matches / len(persons) if persons else 0.0,
        "resolved_accuracy": matches / (len(persons) - unresolved) if len(persons) > unresolved else 0.0,
        "truth_counts": truth_counts,
        "person_counts": model_counts,
        "customer_counts": customer_counts,
        "customers": len(customer_stage),
        "confusion": confusion,
    }


def format_comparison(summary: dict[str, object]) -> str:
    truth_counts: Counter = summary["truth_counts"]  # type: ignore[assignment]
    person_counts: Counter = summary["person_counts"]  # type: ignore[assignment]
    customer_counts: Counter = summary["customer_counts"]  # type: ignore[assignment]
    confusion: Counter = summary["confusion"]  # type: ignore[assignment]
    predicted = [*STAGES, "none", "unresolved"]
    lines = [
        "| stage | truth (persons) | model (persons' customers) | model (all customers) | persons matched |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for stage in (*STAGES, "none", "unresolved"):
        matched = confusion[(stage, stage)] if stage in STAGES else 0
        share = f"{matched / truth_counts[stage]:.1%}" if truth_counts[stage] else "-"
        counts = [truth_counts[stage], person_counts[stage], customer_counts.get(stage, 0)]
        lines.append(f"| {stage} | " + " | ".join(str(count) for count in counts) + f" | {share} |")
    lines.append("")
    lines.append(
        f"{summary['matches']} of {summary['persons']} persons ({summary['accuracy']:.1%}) have a resolved "
        f"customer in their true final stage; {summary['unresolved']} persons resolved to no customer; "
        f"{summary['resolved_accuracy']:.1%} of the resolved ones match. {summary['customers']} customers."
    )
    lines.append("")
    lines.append("Confusion (rows: true stage, columns: model stage):")
    lines.append("")
    lines.append("| true \\ model | " + " | ".join(predicted) + " |")
    lines.append("| --- |" + " ---: |" * len(predicted))
    for stage in STAGES:
        lines.append(f"| {stage} | " + " | ".join(str(confusion[(stage, p)]) for p in predicted) + " |")
    return "\n".join(lines)


def test_stage_distribution_matches_truth(journey_warehouse: dict[str, Path]) -> None:
    summary = stage_comparison(journey_warehouse["warehouse"], journey_warehouse["truth"])
    report = format_comparison(summary)
    (journey_warehouse["root"] / "stage_distribution.md").write_text(report + "\n", encoding="utf-8")
    print("\n" + report)
    assert summary["persons"] == DEFAULT_PERSONS
    assert summary["accuracy"] >= MIN_STAGE_ACCURACY, report


def test_stage_history_is_consistent(journey_warehouse: dict[str, Path]) -> None:
    """Spells tile each customer's history: one current spell, each spell ends where the next begins."""
    from cx_pipeline.warehouse import connect

    conn = connect(journey_warehouse["warehouse"], read_only=True)
    try:
        broken = conn.execute(
            """
            select count(*) from (
                select
                    valid_to,
                    is_current,
                    lead(valid_from) over (partition by customer_id order by valid_from) as next_from,
                    stage_order,
                    lag(stage_order) over (partition by customer_id order by valid_from) as previous_order,
                    lag(journey_stage) over (partition by customer_id order by valid_from) as previous_stage,
                    journey_stage,
                from marts.fct_journey_stage_history
            )
            where valid_to is distinct from next_from
                or is_current <> (valid_to is null)
                or journey_stage = previous_stage
                -- forward only, except into and out of lapsed (a return goes to loyalty)
                or (journey_stage <> 'lapsed' and previous_stage <> 'lapsed' and stage_order < previous_order)
                or (previous_stage = 'lapsed' and journey_stage <> 'loyalty')
            """
        ).fetchone()[0]
        profiles_without_stage = conn.execute(
            """
            select count(*) from marts.dim_customers as c
            where c.journey_stage is null
              and exists (select 1 from marts.fct_touchpoints t where t.customer_id = c.customer_id
                          and t.touchpoint_type <> 'cart_abandoned')
            """
        ).fetchone()[0]
    finally:
        conn.close()
    assert broken == 0
    assert profiles_without_stage == 0


def test_consent_flags_agree_with_consent_history(journey_warehouse: dict[str, Path]) -> None:
    """dim_customers' consent booleans and the privacy layer's current consent apply the same rule."""
    from cx_pipeline.warehouse import connect

    purposes = ("email_marketing", "sms_marketing", "personalization", "analytics", "third_party_sharing")
    flags = join(
        compose(
            "bool_or(purpose = {purpose} and is_granted) as {name}",
            purpose=quote_literal(p),
            name=plain_identifier(p),
        )
        for p in purposes
    )
    differing = join(
        (
            compose(
                "d.{flag} <> coalesce(c.{name}, false)",
                flag=plain_identifier(f"consent_{p}"),
                name=plain_identifier(p),
            )
            for p in purposes
        ),
        " or ",
    )
    conn = connect(journey_warehouse["warehouse"], read_only=True)
    try:
        disagreements = conn.execute(
            compose(
                """
            with current_consent as (
                select customer_id, {flags} from intermediate.int_consent_current group by customer_id
            )
            select count(*) from marts.dim_customers as d
            left join current_consent as c on d.customer_id = c.customer_id
            where {differing}
            """,
                flags=flags,
                differing=differing,
            )
        ).fetchone()[0]
    finally:
        conn.close()
    assert disagreements == 0
