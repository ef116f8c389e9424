{#-
    The identity graph's edges: every pair of distinct identifiers seen together on at least one record,
    once, undirected (node_id_a < node_id_b), before any guard-rail. link_rule is the rule of the earliest
    record carrying the pair (ties: identity_link_rule_rank); link_rules lists every rule that saw it.
    Guard-rails and the reason an edge is not used: int_identity_edges_filtered.
-#}

with observations as (
    select * from {{ ref('int_identity_observations') }}
),

identifiers as (
    select * from {{ ref('int_identifiers_observed') }}
),

numbered as (
    select
        row_number() over () as observation_id,
        *
    from observations
    where
        (crm_contact_id is not null)::int
        + (email is not null)::int
        + (phone is not null)::int
        + (user_id is not null)::int
        + (anonymous_id is not null)::int
        >= 2
),

-- One row per identifier on a multi-identifier observation, with its node id.
observation_nodes as (
    {%- for identifier_type in ['crm_contact_id', 'email', 'phone', 'user_id', 'anonymous_id'] %}
        select
            numbered.observation_id,
            numbered.link_rule,
            numbered.first_seen_at,
            numbered.last_seen_at,
            numbered.record_count,
            identifiers.node_id
        from numbered
        inner join identifiers
            on
                identifiers.identifier_type = '{{ identifier_type }}'
                and numbered.{{ identifier_type }} = identifiers.identifier_value
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

pairs as (
    select
        a.node_id as node_id_a,
        b.node_id as node_id_b,
        a.link_rule,
        a.first_seen_at,
        a.last_seen_at,
        a.record_count
    from observation_nodes as a
    inner join observation_nodes as b
        on
            a.observation_id = b.observation_id
            and a.node_id < b.node_id
),

edges as (
    select
        node_id_a,
        node_id_b,
        arg_min(link_rule, (first_seen_at, {{ identity_link_rule_rank('link_rule') }})) as link_rule,
        list_sort(list(distinct link_rule)) as link_rules,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        sum(record_count) as record_count
    from pairs
    group by node_id_a, node_id_b
),

final as (
    select
        edges.node_id_a,
        edges.node_id_b,
        node_a.identifier_type as identifier_type_a,
        node_a.identifier_value as identifier_value_a,
        node_b.identifier_type as identifier_type_b,
        node_b.identifier_value as identifier_value_b,
        edges.link_rule,
        edges.link_rules,
        edges.first_seen_at,
        edges.last_seen_at,
        edges.record_count
    from edges
    inner join identifiers as node_a on edges.node_id_a = node_a.node_id
    inner join identifiers as node_b on edges.node_id_b = node_b.node_id
)

select * from final
