"""Accuracy of identity resolution against the generator's ground truth.

The generator writes ``truth/identifiers.csv`` (identifier_type, identifier_value normalised like the dbt
macros, person_id, is_shared): which true person each identifier written to the landing files belongs to.
``is_shared`` marks planted identifiers several persons use (a family device, a placeholder email or phone);
they belong to nobody and are left out of the pair counts.

Pairwise precision and recall compare the predicted clusters (``customer_id``) with the true persons over the
non-shared identifiers: a pair of identifiers is predicted when both have the same customer_id and true when
both belong to the same person. Pairs are counted per group as n * (n - 1) / 2 in DuckDB and never
materialised, so this scales to millions of identifiers. A truth identifier the pipeline did not resolve
(absent from the map, or without a customer) counts as a cluster of its own.

Recall is also reported against what the data can support, as a diagnostic. The *evidence clusters* are the
connected components of the identity graph's edges (records carrying two identifiers) restricted to pairs
of the same person's non-shared identifiers: no deterministic method can put together what they keep
apart. ``attainable_recall`` is their recall (the ceiling); ``recall_of_attainable`` is the share of the
evidence-backed pairs the pipeline found. The generator's truth only claims links some chain of records
supports (docs/generator.md, "Devices and sign-ins"), so on generated data the ceiling is 1 and both
recalls agree; a truth with unsupported pairs (a device nobody signed in on, a phone given once and
nowhere else) shows up as a ceiling below 1.

The over-merge check looks for what the guard-rails exist to prevent: a predicted customer holding
identifiers of two or more of the persons that share one planted identifier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from cx_pipeline.sql import Sql, compose, qualified_name

# Relations the score may read (identifiers cannot be bound as parameters, so they are allowlisted).
ALLOWED_MAP_RELATIONS: frozenset[str] = frozenset(
    {"marts.customer_identity_map", "intermediate.int_identifiers_resolved"}
)
ALLOWED_EDGE_RELATIONS: frozenset[str] = frozenset({"intermediate.int_identity_edges"})
DEFAULT_MAP_RELATION = "marts.customer_identity_map"
DEFAULT_EDGE_RELATION = "intermediate.int_identity_edges"
TRUTH_FILE = "identifiers.csv"
PERSON_LEVEL_TYPES: tuple[str, ...] = ("crm_contact_id", "email", "phone", "user_id")


@dataclass(frozen=True)
class PairCounts:
    """Pair counts over one set of identifiers (n * (n - 1) / 2 per group)."""

    true_positive: int  # same predicted customer and same person
    predicted: int  # same predicted customer
    true: int  # same person
    attainable: int  # same person and same evidence cluster
    true_positive_attainable: int  # same predicted customer and same evidence cluster

    @property
    def precision(self) -> float:
        return _ratio(self.true_positive, self.predicted)

    @property
    def recall(self) -> float:
        return _ratio(self.true_positive, self.true)

    @property
    def attainable_recall(self) -> float:
        return _ratio(self.attainable, self.true)

    @property
    def recall_of_attainable(self) -> float:
        return _ratio(self.true_positive_attainable, self.attainable)


@dataclass(frozen=True)
class IdentityScore:
    """Pairwise accuracy of predicted customers against true persons, plus the over-merge check."""

    all_identifiers: PairCounts
    person_level: PairCounts  # without anonymous_id
    identifiers_scored: int
    identifiers_unresolved: int
    persons: int
    predicted_customers: int
    multi_person_customers: int
    shared_identifier_overmerges: int
    overmerged_customer_ids: tuple[str, ...]

    @property
    def precision(self) -> float:
        return self.all_identifiers.precision

    @property
    def recall(self) -> float:
        return self.all_identifiers.recall

    @property
    def f1(self) -> float:
        if self.precision + self.recall == 0:
            return 0.0
        return 2 * self.precision * self.recall / (self.precision + self.recall)

    @property
    def attainable_recall(self) -> float:
        return self.all_identifiers.attainable_recall

    @property
    def recall_of_attainable(self) -> float:
        return self.all_identifiers.recall_of_attainable

    @property
    def no_shared_identifier_overmerge(self) -> bool:
        return self.shared_identifier_overmerges == 0

    def describe(self) -> str:
        every, person = self.all_identifiers, self.person_level
        return "\n".join(
            (
                f"identifiers scored: {self.identifiers_scored:,} of {self.persons:,} persons in "
                f"{self.predicted_customers:,} customers ({self.identifiers_unresolved:,} unresolved)",
                f"all identifiers:    precision {every.precision:.4f}  recall {every.recall:.4f}  "
                f"(evidence ceiling {every.attainable_recall:.4f}, recall of attainable "
                f"{every.recall_of_attainable:.4f}; pairs {every.true_positive:,} found / "
                f"{every.predicted:,} predicted / {every.attainable:,} attainable / {every.true:,} true)",
                f"person-level ids:   precision {person.precision:.4f}  recall {person.recall:.4f}  "
                f"(evidence ceiling {person.attainable_recall:.4f}, recall of attainable "
                f"{person.recall_of_attainable:.4f})",
                f"over-merges: {self.multi_person_customers:,} customers hold several persons, "
                f"{self.shared_identifier_overmerges:,} of them persons sharing a planted identifier",
            )
        )


def _ratio(numerator: int, denominator: int) -> float:
    return 1.0 if denominator == 0 else numerator / denominator


def load_truth(conn: duckdb.DuckDBPyConnection, truth_dir: Path | str) -> None:
    """Read ``truth/identifiers.csv`` into the temporary table ``identity_truth``.

    An identifier listed for several persons counts as shared even when the file does not flag it.
    """
    path = Path(truth_dir) / TRUTH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no ground truth at {path}")
    conn.execute(
        """
        create or replace temp table identity_truth as
        with raw_truth as (
            select * from read_csv(
                ?,
                header = true,
                delim = ',',
                quote = '"',
                escape = '"',
                columns = {
                    'identifier_type': 'VARCHAR',
                    'identifier_value': 'VARCHAR',
                    'person_id': 'VARCHAR',
                    'is_shared': 'BOOLEAN'
                }
            )
        )
        select distinct
            identifier_type,
            identifier_value,
            person_id,
            bool_or(coalesce(is_shared, false)) over identifier
                or count(distinct person_id) over identifier > 1 as is_shared,
        from raw_truth
        window identifier as (partition by identifier_type, identifier_value)
        """,
        [str(path)],
    )


def _score_identifiers(conn: duckdb.DuckDBPyConnection, map_relation: str, edge_relation: str) -> None:
    """``identity_scored``: each non-shared truth identifier with its predicted and evidence cluster."""
    conn.execute(
        compose(
            """
        create or replace temp table identity_scored as
        select
            row_number() over (order by truth.identifier_type, truth.identifier_value) as scored_id,
            truth.identifier_type,
            truth.identifier_value,
            truth.person_id,
            predicted.customer_id is null as is_unresolved,
            coalesce(
                predicted.customer_id,
                'unresolved:' || truth.identifier_type || ':' || truth.identifier_value
            ) as cluster_id,
        from identity_truth as truth
        left join {map_relation} as predicted
            on
                truth.identifier_type = predicted.identifier_type
                and truth.identifier_value = predicted.identifier_value
        where not truth.is_shared
        """,
            map_relation=_relation(map_relation),
        )
    )
    # Evidence clusters: connected components of the records' edges between one person's identifiers.
    conn.execute(
        compose(
            """
        create or replace temp table identity_evidence as
        with recursive
        same_person_edges as (
            select a.scored_id as node_a, b.scored_id as node_b
            from {edge_relation} as edges
            inner join identity_scored as a
                on
                    edges.identifier_type_a = a.identifier_type
                    and edges.identifier_value_a = a.identifier_value
            inner join identity_scored as b
                on
                    edges.identifier_type_b = b.identifier_type
                    and edges.identifier_value_b = b.identifier_value
            where a.person_id = b.person_id
        ),
        directed as (
            select node_a as src, node_b as dst from same_person_edges
            union
            select node_b as src, node_a as dst from same_person_edges
        ),
        labels (node, component) using key (node) as (
            select src, least(src, min(dst)) from directed group by src
            union
            (
                select directed.dst, min(changed.component)
                from labels as changed
                inner join directed on changed.node = directed.src
                inner join recurring.labels as current_label on directed.dst = current_label.node
                group by directed.dst
                having min(changed.component) < min(current_label.component)
            )
        )
        select
            scored.*,
            coalesce(labels.component, scored.scored_id) as evidence_cluster,
        from identity_scored as scored
        left join labels on scored.scored_id = labels.node
        """,
            edge_relation=_relation(edge_relation),
        )
    )


def _relation(relation: str) -> Sql:
    """``"schema"."table"`` for an allowlisted ``schema.table``."""
    return qualified_name(*relation.split("."))


def _pair_counts(conn: duckdb.DuckDBPyConnection, identifier_types: tuple[str, ...] | None) -> PairCounts:
    """Pair counts over every scored identifier, or over those of ``identifier_types``."""
    where = Sql("true") if identifier_types is None else Sql("list_contains(?::VARCHAR[], identifier_type)")
    row = conn.execute(
        compose(
            """
        with scored as (
            select * from identity_evidence where {where}
        ),
        pairs as (
            select 'true_positive' as kind, count(*) as n from scored group by cluster_id, person_id
            union all
            select 'predicted', count(*) from scored group by cluster_id
            union all
            select 'true', count(*) from scored group by person_id
            union all
            select 'attainable', count(*) from scored group by evidence_cluster
            union all
            select 'true_positive_attainable', count(*) from scored group by cluster_id, evidence_cluster
        )
        select
            coalesce(sum(n * (n - 1) // 2) filter (where kind = 'true_positive'), 0),
            coalesce(sum(n * (n - 1) // 2) filter (where kind = 'predicted'), 0),
            coalesce(sum(n * (n - 1) // 2) filter (where kind = 'true'), 0),
            coalesce(sum(n * (n - 1) // 2) filter (where kind = 'attainable'), 0),
            coalesce(sum(n * (n - 1) // 2) filter (where kind = 'true_positive_attainable'), 0),
        from pairs
        """,
            where=where,
        ),
        [] if identifier_types is None else [list(identifier_types)],
    ).fetchall()[0]
    return PairCounts(*(int(value) for value in row))


def pairwise_precision_recall(
    conn: duckdb.DuckDBPyConnection,
    truth_dir: Path | str,
    map_relation: str = DEFAULT_MAP_RELATION,
    edge_relation: str = DEFAULT_EDGE_RELATION,
    max_listed: int = 20,
) -> IdentityScore:
    """Score the identity map in ``map_relation`` (identifier_type, identifier_value, customer_id).

    ``edge_relation`` (identifier_type_a/_b, identifier_value_a/_b) supplies the evidence for the
    attainable-recall figures. Leaves temporary tables ``identity_truth``, ``identity_scored`` and
    ``identity_evidence`` on ``conn`` for drill-down.
    """
    if map_relation not in ALLOWED_MAP_RELATIONS:
        raise ValueError(f"map_relation must be one of {sorted(ALLOWED_MAP_RELATIONS)}, got {map_relation!r}")
    if edge_relation not in ALLOWED_EDGE_RELATIONS:
        raise ValueError(
            f"edge_relation must be one of {sorted(ALLOWED_EDGE_RELATIONS)}, got {edge_relation!r}"
        )
    load_truth(conn, truth_dir)
    _score_identifiers(conn, map_relation, edge_relation)
    all_identifiers = _pair_counts(conn, None)
    person_level = _pair_counts(conn, PERSON_LEVEL_TYPES)
    counts = conn.execute(
        """
        select
            count(*),
            count(*) filter (where is_unresolved),
            count(distinct person_id),
            count(distinct cluster_id),
        from identity_scored
        """
    ).fetchall()[0]
    multi_person = conn.execute(
        """
        select count(*) from (
            select cluster_id from identity_scored group by cluster_id having count(distinct person_id) > 1
        )
        """
    ).fetchall()[0][0]
    # Customers holding identifiers of two or more persons who share one planted identifier.
    overmerged = conn.execute(
        """
        with shared as (
            select distinct identifier_type, identifier_value, person_id
            from identity_truth
            where is_shared
        ),
        sharers_per_customer as (
            select
                shared.identifier_type,
                shared.identifier_value,
                scored.cluster_id,
                count(distinct scored.person_id) as sharers,
            from shared
            inner join identity_scored as scored on shared.person_id = scored.person_id
            where not scored.is_unresolved
            group by all
        )
        select distinct cluster_id
        from sharers_per_customer
        where sharers > 1
        order by cluster_id
        """
    ).fetchall()
    overmerged_ids = tuple(str(customer_id) for (customer_id,) in overmerged)
    return IdentityScore(
        all_identifiers=all_identifiers,
        person_level=person_level,
        identifiers_scored=int(counts[0]),
        identifiers_unresolved=int(counts[1]),
        persons=int(counts[2]),
        predicted_customers=int(counts[3]),
        multi_person_customers=int(multi_person),
        shared_identifier_overmerges=len(overmerged_ids),
        overmerged_customer_ids=overmerged_ids[:max_listed],
    )
