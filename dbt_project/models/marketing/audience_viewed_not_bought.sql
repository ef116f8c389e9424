{#-
    On-site / in-app recommendations (purpose personalization, lawful basis consent): returning visitors,
    active on web or app on at least `viewed_not_bought_min_visit_days` distinct days within the last
    `viewed_not_bought_window_days` days before `as_of`, with the products they viewed in that window and
    never bought (no order line, ever, up to `as_of`). One row per customer and product. No email: the
    purpose is personalisation on our own channels, so the row carries the identifiers our site and app know
    the person by (web user ids and device ids), for the personalisation tool to match on. docs/privacy.md.
-#}
{%- set window_days = var('viewed_not_bought_window_days') -%}
{%- set min_visit_days = var('viewed_not_bought_min_visit_days') -%}

with customers as (
    select * from {{ ref('dim_customers') }}
),

consents as (
    select * from {{ ref('int_consent_current') }}
    where purpose = 'personalization' and is_granted
),

touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
    where customer_id is not null
),

eligible as (
    select
        customers.customer_id,
        customers.user_ids,
        customers.anonymous_ids,
        customers.profile_as_of,
    from customers
    inner join consents on customers.customer_id = consents.customer_id
    where not customers.has_erasure_request
),

recent_digital as (
    select touchpoints.*
    from touchpoints
    inner join eligible on touchpoints.customer_id = eligible.customer_id
    where
        touchpoints.channel in ('web', 'app')
        and touchpoints.occurred_at > eligible.profile_as_of - to_days({{ window_days }})
        and touchpoints.occurred_at <= eligible.profile_as_of
),

visits as (
    select
        customer_id,
        count(distinct cast(occurred_at as date)) as visit_days,
    from recent_digital
    group by customer_id
    having count(distinct cast(occurred_at as date)) >= {{ min_visit_days }}
),

views as (
    select
        customer_id,
        product_id,
        count(*) as view_count,
        max(occurred_at) as last_viewed_at,
    from recent_digital
    where touchpoint_type = 'product_view' and product_id is not null
    group by customer_id, product_id
),

purchases as (
    select distinct
        touchpoints.customer_id,
        touchpoints.product_id,
    from touchpoints
    inner join eligible on touchpoints.customer_id = eligible.customer_id
    where
        touchpoints.touchpoint_type = 'order'
        and touchpoints.product_id is not null
        and touchpoints.occurred_at <= eligible.profile_as_of
),

final as (
    select
        views.customer_id,
        eligible.user_ids,
        eligible.anonymous_ids,
        views.product_id,
        views.view_count,
        views.last_viewed_at,
        visits.visit_days,
        'personalization' as consent_purpose,
        eligible.profile_as_of as audience_as_of,
    from views
    inner join visits on views.customer_id = visits.customer_id
    inner join eligible on views.customer_id = eligible.customer_id
    left join purchases
        on views.customer_id = purchases.customer_id and views.product_id = purchases.product_id
    where purchases.product_id is null
)

select * from final
