{#-
    Customer ids retired by merges: retired_customer_id -> the customer_id that replaces it, derived from
    the data alone so every run reproduces it (docs/identity.md, "Stable customer ids").

    Replaying the kept edges in time order, an identifier would have been the anchor of its cluster (and
    given its customer id) at the instant it first appeared iff it appeared on its own or together only
    with identifiers new at that same instant that rank after it, i.e. not already linked to an older
    identifier. Edges are born when their newer end appears (first_seen_at equal to it): the newer end
    then joins the older one. Identifiers new at one instant and linked at that instant form one birth
    group (connected_components of those edges); a group that no member joins to something older had its
    own anchor. Every such would-be anchor that is not its customer's anchor today names an id the
    customer had before a merge, and retired now: its cluster met a cluster with an older anchor.
    Clusters only grow while the guard-rails stay as they are; they are evaluated with today's rules.
-#}

with resolved as (
    select * from {{ ref('int_identifiers_resolved') }}
    where customer_id is not null
),

kept_edges as (
    select
        node_id_a,
        node_id_b,
        first_seen_at
    from {{ ref('int_identity_edges_filtered') }}
    where is_kept
),

birth_edges as (
    select
        kept_edges.node_id_a,
        kept_edges.node_id_b,
        node_a.first_seen_at as first_seen_at_a,
        node_b.first_seen_at as first_seen_at_b
    from kept_edges
    inner join resolved as node_a on kept_edges.node_id_a = node_a.node_id
    inner join resolved as node_b on kept_edges.node_id_b = node_b.node_id
    where kept_edges.first_seen_at = greatest(node_a.first_seen_at, node_b.first_seen_at)
),

-- identifiers whose first record already linked them to an older identifier
born_attached as (
    select distinct case when first_seen_at_a > first_seen_at_b then node_id_a else node_id_b end as node_id
    from birth_edges
    where first_seen_at_a != first_seen_at_b
),

-- read by the connected_components macro below, which sqlfluff cannot parse
twin_edges as (  -- noqa: ST03
    select
        node_id_a,
        node_id_b
    from birth_edges
    where first_seen_at_a = first_seen_at_b
),

birth_groups as (
    select * from {{ connected_components('twin_edges') }}  -- noqa: PRS
),

grouped as (
    select
        resolved.*,
        coalesce(birth_groups.component, resolved.node_id) as birth_group,
        born_attached.node_id is not null as is_born_attached
    from resolved
    left join birth_groups on resolved.node_id = birth_groups.node
    left join born_attached on resolved.node_id = born_attached.node_id
),

group_anchors as (
    select
        birth_group,
        arg_min(
            node_id,
            (first_seen_at, {{ identifier_type_rank('identifier_type') }}, identifier_value)
        ) as anchor_node_id
    from grouped
    group by birth_group
    having not bool_or(is_born_attached)
),

final as (
    select
        {{ customer_id_from_anchor('grouped.identifier_type', 'grouped.identifier_value') }}
            as retired_customer_id,
        grouped.customer_id,
        grouped.identifier_type as retired_anchor_identifier_type,
        grouped.identifier_value as retired_anchor_identifier_value,
        grouped.first_seen_at as retired_anchor_first_seen_at,
        grouped.anchor_identifier_type,
        grouped.anchor_identifier_value
    from grouped
    inner join group_anchors on grouped.node_id = group_anchors.anchor_node_id
    where not grouped.is_anchor
)

select * from final
