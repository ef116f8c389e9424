{#-
    The consent log attributed to customers through the identity map (rules: docs/privacy.md). An event is
    tied to the customer of its user_id, else of its email; events whose identifiers resolve to no customer
    are left out (there is no profile to gate). Events after `as_of` are not seen yet.

    Order within a customer and purpose: recorded_at, then on a tie the more restrictive status last
    (granted < denied < withdrawn), then consent_event_id. So a grant and a withdrawal stamped the same
    second leave the purpose withdrawn.
-#}

-- Erasure (privacy/suppressed_identifiers) runs before any consent is read:
-- depends_on: {{ source('cx360_privacy', 'suppressed_identifiers') }}

with consent_events as (
    select * from {{ ref('stg_privacy__consent_events') }}
),

identifiers as (
    select
        identifier_type,
        identifier_value,
        customer_id,
    from {{ ref('int_identifiers_resolved') }}
    where customer_id is not null and identifier_type in ('user_id', 'email')
),

by_user_id as (
    select
        identifier_value,
        customer_id,
    from identifiers
    where identifier_type = 'user_id'
),

by_email as (
    select
        identifier_value,
        customer_id,
    from identifiers
    where identifier_type = 'email'
),

as_of as (
    select {{ journey_as_of(ref('stg_privacy__consent_events'), 'recorded_at') }} as as_of_at
),

attributed as (
    select
        consent_events.consent_event_id,
        coalesce(by_user_id.customer_id, by_email.customer_id) as customer_id,
        case
            when by_user_id.customer_id is not null then 'user_id'
            when by_email.customer_id is not null then 'email'
        end as attributed_by,
        consent_events.purpose,
        consent_events.status,
        consent_events.status = 'granted' as is_granted,
        consent_events.lawful_basis,
        consent_events.consent_source,
        consent_events.policy_version,
        consent_events.recorded_at,
        case consent_events.status
            when 'granted' then 0
            when 'denied' then 1
            else 2
        end as status_rank,
    from consent_events
    cross join as_of
    left join by_user_id on consent_events.user_id = by_user_id.identifier_value
    left join by_email on consent_events.email = by_email.identifier_value
    where
        consent_events.recorded_at <= as_of.as_of_at
        and consent_events.purpose is not null
        and consent_events.status is not null
),

final as (
    select
        consent_event_id,
        customer_id,
        attributed_by,
        purpose,
        status,
        is_granted,
        lawful_basis,
        consent_source,
        policy_version,
        recorded_at,
        row_number() over (
            partition by customer_id, purpose
            order by recorded_at, status_rank, consent_event_id
        ) as event_sequence,
    from attributed
    where customer_id is not null
)

select * from final
