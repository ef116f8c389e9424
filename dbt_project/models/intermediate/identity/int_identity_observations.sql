-- Every combination of identifiers seen together on a source record, per link rule, with when and how often.
-- One row here stands for all the records that carry exactly these identifiers (the ~60M records of a large
-- sample collapse to a few million rows): nodes and edges of the identity graph are built from this table.
-- link_rule names why the identifiers on a record belong to one person (docs/identity.md).
-- Segment: every delivery not flagged as a re-delivery; duplicates cannot change identifier combinations,
-- and this skips stg_segment__events' row_number over every message.
with web_events as (
    select * from {{ ref('stg_segment__event_deliveries') }}
),

crm_versions as (
    select * from {{ ref('stg_crm__contact_versions') }}
),

cart_events as (
    select * from {{ ref('stg_shop__cart_events') }}
),

rejections as (
    select * from {{ ref('stg_shop__product_rejections') }}
),

tickets as (
    select * from {{ ref('stg_support__tickets') }}
),

consents as (
    select * from {{ ref('stg_privacy__consent_events') }}
),

erasure_requests as (
    select * from {{ ref('stg_privacy__erasure_requests') }}
),

nps_responses as (
    select * from {{ ref('stg_surveys__nps_responses') }}
),

-- The first version of a CRM contact was true from the contact's creation, later ones from their update.
crm_records as (
    select
        contact_id,
        email,
        phone,
        case
            when row_number() over (partition by contact_id order by updated_at) = 1
                then least(created_at, updated_at)
            else updated_at
        end as seen_at
    from crm_versions
),

-- Identify calls link their traits too; other calls only anonymousId and userId.
segment_records as (
    select
        case when event_type = 'identify' then 'identify_call' else 'web_event' end as link_rule,
        case when event_type = 'identify' then trait_email end as email,
        case when event_type = 'identify' then trait_phone end as phone,
        user_id,
        anonymous_id,
        occurred_at
    from web_events
),

-- Each source collapses to its distinct identifier combinations on its own (one aggregation per source
-- keeps the hash tables small and lets DuckDB run them side by side).
final as (
    select
        'segment' as source_system,
        link_rule,
        null::varchar as crm_contact_id,
        email,
        phone,
        user_id,
        anonymous_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        count(*) as record_count
    from segment_records
    where coalesce(email, phone, user_id, anonymous_id) is not null
    group by all

    union all

    select
        'crm' as source_system,
        'crm_record' as link_rule,
        contact_id as crm_contact_id,
        email,
        phone,
        null::varchar as user_id,
        null::varchar as anonymous_id,
        min(seen_at) as first_seen_at,
        max(seen_at) as last_seen_at,
        count(*) as record_count
    from crm_records
    where coalesce(contact_id, email, phone) is not null
    group by all

    union all

    select
        'shop' as source_system,
        'cart_event' as link_rule,
        null::varchar as crm_contact_id,
        email,
        null::varchar as phone,
        user_id,
        anonymous_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        count(*) as record_count
    from cart_events
    where coalesce(email, user_id, anonymous_id) is not null
    group by all

    union all

    select
        'shop' as source_system,
        'product_rejection' as link_rule,
        null::varchar as crm_contact_id,
        email,
        null::varchar as phone,
        user_id,
        null::varchar as anonymous_id,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        count(*) as record_count
    from rejections
    where coalesce(email, user_id) is not null
    group by all

    union all

    select
        'support' as source_system,
        'support_ticket' as link_rule,
        null::varchar as crm_contact_id,
        requester_email as email,
        requester_phone as phone,
        null::varchar as user_id,
        null::varchar as anonymous_id,
        min(created_at) as first_seen_at,
        max(created_at) as last_seen_at,
        count(*) as record_count
    from tickets
    where coalesce(requester_email, requester_phone) is not null
    group by all

    union all

    select
        'privacy' as source_system,
        'consent_record' as link_rule,
        null::varchar as crm_contact_id,
        email,
        null::varchar as phone,
        user_id,
        null::varchar as anonymous_id,
        min(recorded_at) as first_seen_at,
        max(recorded_at) as last_seen_at,
        count(*) as record_count
    from consents
    where coalesce(email, user_id) is not null
    group by all

    union all

    select
        'privacy' as source_system,
        'erasure_request' as link_rule,
        null::varchar as crm_contact_id,
        email,
        phone,
        user_id,
        null::varchar as anonymous_id,
        min(requested_at) as first_seen_at,
        max(requested_at) as last_seen_at,
        count(*) as record_count
    from erasure_requests
    where coalesce(email, phone, user_id) is not null
    group by all

    union all

    select
        'surveys' as source_system,
        'nps_response' as link_rule,
        null::varchar as crm_contact_id,
        email,
        null::varchar as phone,
        user_id,
        null::varchar as anonymous_id,
        min(responded_at) as first_seen_at,
        max(responded_at) as last_seen_at,
        count(*) as record_count
    from nps_responses
    where coalesce(email, user_id) is not null
    group by all
)

select * from final
