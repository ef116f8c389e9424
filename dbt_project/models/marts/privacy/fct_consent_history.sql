{#-
    SCD2 consent history: one row per customer, purpose and consent version. Each consent event opens a
    version that lasts until the customer's next event for the same purpose; the latest is current. A
    withdrawal takes effect from its own timestamp, a later grant re-opens the purpose. No row for a purpose
    = never recorded = no consent. Rules: docs/privacy.md.
-#}

with events as (
    select * from {{ ref('int_consent_events_attributed') }}
),

versions as (
    select
        *,
        lag(status) over customer_purpose as previous_status,
        lead(recorded_at) over customer_purpose as next_recorded_at,
    from events
    window customer_purpose as (partition by customer_id, purpose order by event_sequence)
),

final as (
    select
        customer_id || ':' || purpose || ':' || cast(event_sequence as varchar) as consent_version_id,
        customer_id,
        purpose,
        event_sequence as version_number,
        status,
        is_granted,
        previous_status,
        lawful_basis,
        consent_source,
        policy_version,
        consent_event_id,
        attributed_by,
        recorded_at as valid_from,
        next_recorded_at as valid_to,
        next_recorded_at is null as is_current,
    from versions
)

select * from final
