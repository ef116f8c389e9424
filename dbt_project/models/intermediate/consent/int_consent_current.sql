{#-
    Current consent per customer and purpose (as of `as_of`): the state set by the customer's latest event
    for that purpose. Only customer x purpose pairs with at least one event have a row: a missing row means
    no consent (docs/privacy.md). Equals the is_current rows of marts.fct_consent_history.
-#}

with events as (
    select * from {{ ref('int_consent_events_attributed') }}
),

final as (
    select
        customer_id,
        purpose,
        status,
        is_granted,
        lawful_basis,
        consent_source,
        policy_version,
        recorded_at as status_since,
        consent_event_id,
        -- Ever granted before the current state (e.g. withdrawn after a grant).
        bool_or(is_granted) over customer_purpose as was_ever_granted,
        count(*) over customer_purpose as event_count,
    from events
    window customer_purpose as (partition by customer_id, purpose)
    qualify event_sequence = max(event_sequence) over customer_purpose
)

select * from final
