{#- Every identifier linked to a customer: counts and sorted lists per identifier type. -#}

with identifiers as (
    select * from {{ ref('int_identifiers_resolved') }}
    where customer_id is not null
),

final as (
    select
        customer_id,
        count(*) as identifier_count,
        count(*) filter (where identifier_type = 'crm_contact_id') as crm_contact_id_count,
        count(*) filter (where identifier_type = 'email') as email_count,
        count(*) filter (where identifier_type = 'phone') as phone_count,
        count(*) filter (where identifier_type = 'user_id') as user_id_count,
        count(*) filter (where identifier_type = 'anonymous_id') as anonymous_id_count,
        coalesce(
            list(identifier_value order by identifier_value) filter (where identifier_type = 'crm_contact_id'),
            []
        ) as crm_contact_ids,
        coalesce(
            list(identifier_value order by identifier_value) filter (where identifier_type = 'email'), []
        ) as emails,
        coalesce(
            list(identifier_value order by identifier_value) filter (where identifier_type = 'phone'), []
        ) as phones,
        coalesce(
            list(identifier_value order by identifier_value) filter (where identifier_type = 'user_id'), []
        ) as user_ids,
        coalesce(
            list(identifier_value order by identifier_value) filter (where identifier_type = 'anonymous_id'),
            []
        ) as anonymous_ids,
        min(first_seen_at) as identifiers_first_seen_at,
        max(last_seen_at) as identifiers_last_seen_at,
    from identifiers
    group by customer_id
)

select * from final
