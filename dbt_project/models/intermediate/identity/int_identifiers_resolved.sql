{#-
    Identity resolution: every non-blocklisted identifier, once, with the customer it belongs to.
    Rules and their vars are documented in docs/identity.md; in order:

    1. Blocklisted identifiers (int_identifiers_observed.is_blocklisted) are left out with all their edges.
    2. Shared devices: an anonymous_id linked to more than `shared_device_max_user_ids` distinct user_ids, or
       (linked to no user_id) to more than `shared_device_max_emails` distinct emails, joins nobody: its edges
       are dropped and its customer_id is null (a device is not a person; touchpoints decide per record).
    3. Over-linked identifiers: one linked to more than `max_identifier_links` (per-type override:
       `max_identifier_links_by_type`) distinct person-level identifiers (user_id, email, crm_contact_id,
       phone) through the edges left after 1-2 is not used as a bridge: its edges are dropped and it becomes
       a customer of its own.
    4. Customers are the connected components of the remaining edges (full transitive closure,
       macro connected_components).
    5. Each customer's anchor is its identifier first seen (then crm_contact_id > user_id > email > phone >
       anonymous_id, then the smaller value); customer_id = 'cx_' + 16 hex digits of md5(type:value) of the
       anchor, so an unchanged cluster keeps its id and a merged one keeps its older anchor's id.
    6. link_rule: 'anchor' for the anchor, 'singleton' for a customer of one identifier, 'shared_device' and
       'over_linked' for the identifiers cut in 2-3, else the rule of the identifier's earliest kept edge.
-#}
{%- set person_level_types = "'user_id', 'email', 'crm_contact_id', 'phone'" %}
{%- set caps_by_type = var('max_identifier_links_by_type', {}) or {} %}

with observed as (
    select * from {{ ref('int_identifiers_observed') }}
),

all_edges as (
    select * from {{ ref('int_identity_edges') }}
),

identifiers as (
    select * from observed
    where not is_blocklisted
),

-- 1. edges between two identifiers that are not blocklisted
usable_edges as (
    select all_edges.*
    from all_edges
    inner join identifiers as node_a on all_edges.node_id_a = node_a.node_id
    inner join identifiers as node_b on all_edges.node_id_b = node_b.node_id
),

usable_links as (
    select
        node_id_a as node_id,
        identifier_type_a as identifier_type,
        node_id_b as linked_node_id,
        identifier_type_b as linked_type
    from usable_edges

    union all

    select
        node_id_b as node_id,
        identifier_type_b as identifier_type,
        node_id_a as linked_node_id,
        identifier_type_a as linked_type
    from usable_edges
),

-- 2. shared devices
device_links as (
    select
        node_id,
        count(*) filter (where linked_type = 'user_id') as linked_user_ids,
        count(*) filter (where linked_type = 'email') as linked_emails
    from usable_links
    where identifier_type = 'anonymous_id'
    group by node_id
),

shared_devices as (
    select node_id
    from device_links
    where
        linked_user_ids > {{ var('shared_device_max_user_ids', 1) }}
        or (linked_user_ids = 0 and linked_emails > {{ var('shared_device_max_emails', 1) }})
),

-- 3. over-linked identifiers (counted on the edges left after 1-2)
person_links as (
    select
        usable_links.node_id,
        usable_links.identifier_type,
        count(*) as person_level_links
    from usable_links
    where
        usable_links.linked_type in ({{ person_level_types }})
        and usable_links.node_id not in (select shared_devices.node_id from shared_devices)
    group by usable_links.node_id, usable_links.identifier_type
),

over_linked as (
    select
        node_id,
        person_level_links
    from person_links
    where
        person_level_links > {% if caps_by_type %}case identifier_type
            {%- for identifier_type, cap in caps_by_type.items() %}
            when '{{ identifier_type }}' then {{ cap | int }}
            {%- endfor %}
            else {{ var('max_identifier_links', 8) | int }}
        end
        {%- else %}{{ var('max_identifier_links', 8) | int }}{% endif %}
),

cut_nodes as (
    select node_id from shared_devices
    union all
    select node_id from over_linked
),

kept_edges as (
    select usable_edges.*
    from usable_edges
    where
        usable_edges.node_id_a not in (select cut_nodes.node_id from cut_nodes)
        and usable_edges.node_id_b not in (select cut_nodes.node_id from cut_nodes)
),

-- 4. connected components
components as (
    select * from {{ connected_components('kept_edges') }}  -- noqa: PRS
),

clustered as (
    select
        identifiers.*,
        coalesce(components.component, identifiers.node_id) as component,
        shared_devices.node_id is not null as is_shared_device,
        over_linked.node_id is not null as is_over_linked,
        coalesce(person_links.person_level_links, 0) as person_level_links
    from identifiers
    left join components on identifiers.node_id = components.node
    left join shared_devices on identifiers.node_id = shared_devices.node_id
    left join over_linked on identifiers.node_id = over_linked.node_id
    left join person_links on identifiers.node_id = person_links.node_id
),

-- 5. anchors
anchors as (
    select
        component,
        arg_min(
            node_id,
            (first_seen_at, {{ identifier_type_rank('identifier_type') }}, identifier_value)
        ) as anchor_node_id,
        count(*) as cluster_size
    from clustered
    group by component
),

-- 6. the rule of each identifier's earliest kept edge
kept_links as (
    select
        node_id_a as node_id,
        node_id_b as linked_node_id,
        link_rule,
        first_seen_at
    from kept_edges

    union all

    select
        node_id_b as node_id,
        node_id_a as linked_node_id,
        link_rule,
        first_seen_at
    from kept_edges
),

first_links as (
    select
        node_id,
        arg_min(
            link_rule,
            (first_seen_at, {{ identity_link_rule_rank('link_rule') }}, linked_node_id)
        ) as link_rule
    from kept_links
    group by node_id
),

final as (
    select
        clustered.identifier_type,
        clustered.identifier_value,
        case
            when not clustered.is_shared_device
                then {{ customer_id_from_anchor('anchor.identifier_type', 'anchor.identifier_value') }}
        end as customer_id,
        case
            when clustered.is_shared_device then 'shared_device'
            when clustered.is_over_linked then 'over_linked'
            when anchors.cluster_size = 1 then 'singleton'
            when clustered.node_id = anchors.anchor_node_id then 'anchor'
            else first_links.link_rule
        end as link_rule,
        clustered.is_shared_device,
        clustered.is_over_linked,
        clustered.node_id = anchors.anchor_node_id and not clustered.is_shared_device as is_anchor,
        case when not clustered.is_shared_device then anchor.identifier_type end as anchor_identifier_type,
        case when not clustered.is_shared_device then anchor.identifier_value end as anchor_identifier_value,
        case when not clustered.is_shared_device then anchors.cluster_size end as customer_identifier_count,
        clustered.person_level_links,
        clustered.first_seen_at,
        clustered.last_seen_at,
        clustered.source_systems,
        clustered.record_count,
        clustered.node_id
    from clustered
    inner join anchors on clustered.component = anchors.component
    inner join identifiers as anchor on anchors.anchor_node_id = anchor.node_id
    left join first_links on clustered.node_id = first_links.node_id
)

select * from final
