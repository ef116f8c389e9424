{#-
    Current consent per customer and purpose, as of `as_of`: granted only when the latest event for that
    purpose is `granted` (latest by recorded_at; on a same-second tie the more restrictive status; then
    consent_event_id). A denial or withdrawal takes effect from its timestamp; no record = not granted.
    Erasure requests are matched on any of their identifiers.
-#}

with attributed as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

consent_events as (
    select * from {{ ref('stg_privacy__consent_events') }}
),

erasure_requests as (
    select * from {{ ref('stg_privacy__erasure_requests') }}
),

identifiers as (
    select * from {{ ref('int_identifiers_resolved') }}
    where customer_id is not null
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

customer_consents as (
    select
        attributed.customer_id,
        consent_events.purpose,
        consent_events.status,
        consent_events.recorded_at,
        consent_events.consent_event_id,
        -- Same-second tie: the more restrictive status wins (as in int_consent_events_attributed).
        case consent_events.status when 'granted' then 0 when 'denied' then 1 else 2 end as status_rank,
    from attributed
    inner join consent_events on attributed.source_record_id = consent_events.consent_event_id
    cross join as_of
    where
        attributed.source_system = 'privacy'
        and attributed.customer_id is not null
        and consent_events.recorded_at <= as_of.as_of_at
),

latest_consents as (
    select
        customer_id,
        purpose,
        arg_max(status, (recorded_at, status_rank, consent_event_id)) as status,
        max(recorded_at) as recorded_at,
    from customer_consents
    group by customer_id, purpose
),

consents as (
    select
        customer_id,
        coalesce(bool_or(purpose = 'email_marketing' and status = 'granted'), false) as consent_email_marketing,
        coalesce(bool_or(purpose = 'sms_marketing' and status = 'granted'), false) as consent_sms_marketing,
        coalesce(bool_or(purpose = 'personalization' and status = 'granted'), false) as consent_personalization,
        coalesce(bool_or(purpose = 'analytics' and status = 'granted'), false) as consent_analytics,
        coalesce(
            bool_or(purpose = 'third_party_sharing' and status = 'granted'), false
        ) as consent_third_party_sharing,
        max(recorded_at) as consent_updated_at,
    from latest_consents
    group by customer_id
),

erasure_identifiers as (
    select
        request_id,
        requested_at,
        'email' as identifier_type,
        email as identifier_value,
    from erasure_requests
    where email is not null
    union all
    select
        request_id,
        requested_at,
        'phone' as identifier_type,
        phone as identifier_value,
    from erasure_requests
    where phone is not null
    union all
    select
        request_id,
        requested_at,
        'user_id' as identifier_type,
        user_id as identifier_value,
    from erasure_requests
    where user_id is not null
),

erasures as (
    select
        identifiers.customer_id,
        min(erasure_identifiers.requested_at) as erasure_requested_at,
    from erasure_identifiers
    inner join identifiers
        on
            erasure_identifiers.identifier_type = identifiers.identifier_type
            and erasure_identifiers.identifier_value = identifiers.identifier_value
    group by identifiers.customer_id
),

final as (
    select
        coalesce(consents.customer_id, erasures.customer_id) as customer_id,
        coalesce(consents.consent_email_marketing, false) as consent_email_marketing,
        coalesce(consents.consent_sms_marketing, false) as consent_sms_marketing,
        coalesce(consents.consent_personalization, false) as consent_personalization,
        coalesce(consents.consent_analytics, false) as consent_analytics,
        coalesce(consents.consent_third_party_sharing, false) as consent_third_party_sharing,
        consents.consent_updated_at,
        erasures.customer_id is not null as has_erasure_request,
        erasures.erasure_requested_at,
    from consents
    full outer join erasures on consents.customer_id = erasures.customer_id
)

select * from final
