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

-- The contact purposes and the identifiers they reach.
contact_purposes as (
    select * from (
        values ('email_marketing', 'email'), ('sms_marketing', 'phone')
    ) as purposes (purpose, identifier_type)  -- noqa: AL05
),

opted_out as (
    select
        contact_purposes.identifier_type,
        {{ keyed_hash('identifier.value') }} as identifier_hash,
        'opted_out' as reason,
        consents.purpose,
        consents.status_since as suppressed_since,
    from consents
    inner join contact_purposes on consents.purpose = contact_purposes.purpose
    inner join customers on consents.customer_id = customers.customer_id
    cross join
        unnest(
            case contact_purposes.identifier_type when 'email' then customers.emails else customers.phones end
        ) as identifier (value)
    where not consents.is_granted
),

final as (
    select * from erased
    union all
    select * from opted_out
)

select * from final
