{#-
    Who a messaging tool must never contact, for its suppression list: everyone erased (every identifier of
    theirs on privacy.suppressed_identifiers) and everyone who opted out of a contact purpose (their current
    consent to email or SMS marketing is denied or withdrawn: their emails, or phones). Keyed hashes only
    (HMAC-SHA256 of the normalised value, the key outside the code: docs/privacy.md), never plaintext: an
    erased person's plaintext no longer exists anywhere. A tool matches its own list by hashing it with the
    same key (docs/exports.md). One row per identifier and reason.
-#}
with suppressed as (
    select * from {{ source('cx360_privacy', 'suppressed_identifiers') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

consents as (
    select * from {{ ref('int_consent_current') }}
),

erased as (
    select
        identifier_type,
        identifier_hash,
        'erased' as reason,
        cast(null as varchar) as purpose,
        min(suppressed_at) as suppressed_since,
    from suppressed
    group by identifier_type, identifier_hash
),

opted_out_emails as (
    select
        'email' as identifier_type,
        {{ keyed_hash('email.value') }} as identifier_hash,
        'opted_out' as reason,
        consents.purpose,
        consents.status_since as suppressed_since,
    from consents
    inner join customers on consents.customer_id = customers.customer_id
    cross join unnest(customers.emails) as email (value)
    where consents.purpose = 'email_marketing' and not consents.is_granted
),

opted_out_phones as (
    select
        'phone' as identifier_type,
        {{ keyed_hash('phone.value') }} as identifier_hash,
        'opted_out' as reason,
        consents.purpose,
        consents.status_since as suppressed_since,
    from consents
    inner join customers on consents.customer_id = customers.customer_id
    cross join unnest(customers.phones) as phone (value)
    where consents.purpose = 'sms_marketing' and not consents.is_granted
),

final as (
    select * from erased
    union all
    select * from opted_out_emails
    union all
    select * from opted_out_phones
)

select * from final
