{#-
    Each touchpoint attributed to a customer through int_identifiers_resolved, re-resolved on every run
    (so anonymous activity is stitched back as soon as its device is identified). The record's identifiers
    are tried in the order user_id -> email -> phone -> crm_contact_id -> anonymous_id; the first that
    resolves to a customer wins. One join per identifier type against the resolved map, each a hash join
    on the whole stream: set-based, no correlated subqueries.

    Shared devices: an anonymous id used by several people resolves to no customer. Such a record (no other
    identifier resolving) goes to the customer who identified on that device most recently at or before it
    ("shared_device_previous"), else to the next one who identified after it ("shared_device_next").
    "Identified" = a record on that device that resolved through a personal identifier. Exception, same
    visit: when someone identifies on the device within `shared_device_visit_minutes` after the record (the
    landing page just before a sign-in), the record is theirs ("shared_device_next").
-#}
{%- set visit_minutes = var('shared_device_visit_minutes') | int -%}
{#- The person a record's own identifiers name: the first of user_id, email, phone, crm_contact_id that
    resolves (used on the whole stream and again on the records of shared devices). -#}
{%- set personal_columns -%}
        coalesce(
            by_user_id.customer_id,
            by_email.customer_id,
            by_phone.customer_id,
            by_crm_contact.customer_id
        ) as personal_customer_id,
        case
            when by_user_id.customer_id is not null then 'user_id'
            when by_email.customer_id is not null then 'email'
            when by_phone.customer_id is not null then 'phone'
            when by_crm_contact.customer_id is not null then 'crm_contact_id'
        end as personal_rule,
{%- endset -%}
{%- set personal_joins -%}
    left join by_user_id on records.user_id = by_user_id.identifier_value
    left join by_email on records.email = by_email.identifier_value
    left join by_phone on records.phone = by_phone.identifier_value
    left join by_crm_contact on records.crm_contact_id = by_crm_contact.identifier_value
{%- endset %}

-- Read twice, never copied: the whole stream once, the few records of shared devices once more. (A CTE
-- over the whole resolved stream read by both branches was materialised: every event with every column,
-- beyond the memory limit at 1M customers.)
with touchpoints as not materialized (
    select * from {{ ref('int_touchpoints_unioned') }}
),

identifiers as (
    select
        identifier_type,
        identifier_value,
        customer_id,
        coalesce(is_shared_device, false) as is_shared_device,
    from {{ ref('int_identifiers_resolved') }}
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

by_phone as (
    select
        identifier_value,
        customer_id,
    from identifiers
    where identifier_type = 'phone'
),

by_crm_contact as (
    select
        identifier_value,
        customer_id,
    from identifiers
    where identifier_type = 'crm_contact_id'
),

by_anonymous_id as (
    select
        identifier_value,
        customer_id,
        is_shared_device,
    from identifiers
    where identifier_type = 'anonymous_id'
),

shared_devices as (
    select identifier_value as anonymous_id
    from by_anonymous_id
    where is_shared_device
),

resolved as (
    select
        records.*,
        {{ personal_columns }}
        by_anonymous_id.customer_id as device_customer_id,
        coalesce(by_anonymous_id.is_shared_device, false) as is_shared_device,
    from touchpoints as records
    {{ personal_joins }}
    left join by_anonymous_id on records.anonymous_id = by_anonymous_id.identifier_value
),

-- Records on shared devices, with only what the choice needs.
shared_device_records as (
    select
        records.touchpoint_id,
        records.anonymous_id,
        records.occurred_at,
        {{ personal_columns }}
    from touchpoints as records
    {{ personal_joins }}
    where records.anonymous_id in (select shared_devices.anonymous_id from shared_devices)
),

-- The nearest identified user on the device, before (else after) the record.
shared_device_neighbours as (
    select
        *,
        last_value(personal_customer_id ignore nulls) over (
            partition by anonymous_id
            order by occurred_at, touchpoint_id
            rows between unbounded preceding and current row
        ) as previous_customer_id,
        first_value(personal_customer_id ignore nulls) over (
            partition by anonymous_id
            order by occurred_at, touchpoint_id
            rows between current row and unbounded following
        ) as next_customer_id,
        first_value(case when personal_customer_id is not null then occurred_at end ignore nulls) over (
            partition by anonymous_id
            order by occurred_at, touchpoint_id
            rows between current row and unbounded following
        ) as next_identified_at,
    from shared_device_records
),

shared_device_attributed as (
    select
        touchpoint_id,
        case
            when personal_customer_id is not null then personal_customer_id
            when next_identified_at <= {{ dbt.dateadd('minute', visit_minutes, 'occurred_at') }}
                then next_customer_id
            else coalesce(previous_customer_id, next_customer_id)
        end as customer_id,
        case
            when personal_customer_id is not null then personal_rule
            when next_identified_at <= {{ dbt.dateadd('minute', visit_minutes, 'occurred_at') }}
                then 'shared_device_next'
            when previous_customer_id is not null then 'shared_device_previous'
            when next_customer_id is not null then 'shared_device_next'
        end as attribution_rule,
    from shared_device_neighbours
),

-- Every record: on a device nobody shares the first identifier that resolves wins (the device's own
-- customer last); on a shared device, the choice above.
attributed as (
    select
        resolved.* exclude (resolved.personal_customer_id, resolved.personal_rule, resolved.device_customer_id),
        case
            when resolved.is_shared_device then shared_device_attributed.customer_id
            else coalesce(resolved.personal_customer_id, resolved.device_customer_id)
        end as customer_id,
        case
            when resolved.is_shared_device then shared_device_attributed.attribution_rule
            when resolved.personal_customer_id is not null then resolved.personal_rule
            when resolved.device_customer_id is not null then 'anonymous_id'
        end as attribution_rule,
    from resolved
    left join shared_device_attributed on resolved.touchpoint_id = shared_device_attributed.touchpoint_id
),

final as (
    select
        touchpoint_id,
        customer_id,
        occurred_at,
        source_system,
        source_record_id,
        touchpoint_type,
        event_detail,
        channel,
        product_id,
        order_id,
        campaign_source,
        campaign_medium,
        campaign_name,
        revenue,
        attribution_rule,
        -- Only a device id on the record, yet attributed: the person was anonymous when it happened.
        coalesce(
            attribution_rule in ('anonymous_id', 'shared_device_previous', 'shared_device_next'), false
        ) as is_anonymous_at_time,
        is_shared_device,
        user_id,
        email,
        phone,
        crm_contact_id,
        anonymous_id,
        first_name,
        last_name,
    from attributed
)

select * from final
