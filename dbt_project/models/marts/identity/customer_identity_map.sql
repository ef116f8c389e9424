{#-
    The identity map: every identifier found in the sources (blocklisted placeholders excepted) and the
    customer it belongs to. Shared devices have no customer (customer_id null). Rules: docs/identity.md.
-#}

with resolved as (
    select * from {{ ref('int_identifiers_resolved') }}
),

final as (
    select
        identifier_type,
        identifier_value,
        customer_id,
        link_rule,
        is_shared_device,
        first_seen_at,
        last_seen_at
    from resolved
)

select * from final
