{#-
    Every edge of the identity graph with the verdict of the guard-rails (docs/identity.md): kept, or
    dropped with the reason and the identifier that caused it. A kept edge joins two identifiers of the
    same customer; the connected components of the kept edges are the customers.
    Reasons, checked in this order: blocklisted_identifier, shared_device, over_linked_identifier.
-#}

with edges as (
    select * from {{ ref('int_identity_edges') }}
),

observed as (
    select
        node_id,
        is_blocklisted
    from {{ ref('int_identifiers_observed') }}
),

resolved as (
    select
        node_id,
        customer_id,
        is_shared_device,
        is_over_linked
    from {{ ref('int_identifiers_resolved') }}
),

flagged as (
    select
        edges.*,
        case
            when observed_a.is_blocklisted or observed_b.is_blocklisted then 'blocklisted_identifier'
            when resolved_a.is_shared_device or resolved_b.is_shared_device then 'shared_device'
            when resolved_a.is_over_linked or resolved_b.is_over_linked then 'over_linked_identifier'
        end as drop_reason,
        case
            when observed_a.is_blocklisted then 'a'
            when observed_b.is_blocklisted then 'b'
            when resolved_a.is_shared_device then 'a'
            when resolved_b.is_shared_device then 'b'
            when resolved_a.is_over_linked then 'a'
            when resolved_b.is_over_linked then 'b'
        end as dropped_by,
        resolved_a.customer_id as customer_id_a,
        resolved_b.customer_id as customer_id_b
    from edges
    inner join observed as observed_a on edges.node_id_a = observed_a.node_id
    inner join observed as observed_b on edges.node_id_b = observed_b.node_id
    left join resolved as resolved_a on edges.node_id_a = resolved_a.node_id
    left join resolved as resolved_b on edges.node_id_b = resolved_b.node_id
),

final as (
    select
        node_id_a,
        node_id_b,
        identifier_type_a,
        identifier_value_a,
        identifier_type_b,
        identifier_value_b,
        link_rule,
        link_rules,
        first_seen_at,
        last_seen_at,
        record_count,
        drop_reason is null as is_kept,
        drop_reason,
        case dropped_by when 'a' then identifier_type_a when 'b' then identifier_type_b end
            as dropped_by_identifier_type,
        case dropped_by when 'a' then identifier_value_a when 'b' then identifier_value_b end
            as dropped_by_identifier_value,
        case when drop_reason is null then customer_id_a end as customer_id
    from flagged
)

select * from final
