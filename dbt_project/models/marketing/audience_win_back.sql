{#-
    Win-back campaign (purpose email_marketing, lawful basis consent): customers who reached the loyalty
    stage earlier and now are
      - lapsed (current journey stage `lapsed`), or
      - at risk: still in loyalty but with no activity (touchpoint types outside
        `lapse_ignored_touchpoint_types` and consent changes) for `win_back_at_risk_after_days` days before
        `as_of` (lapsing takes `lapse_after_days`).
    Only customers granting email_marketing now and with an email. docs/privacy.md.
-#}
{%- set at_risk_days = var('win_back_at_risk_after_days') -%}

with customers as (
    select * from {{ ref('dim_customers') }}
),

consents as (
    select * from {{ ref('int_consent_current') }}
    where purpose = 'email_marketing' and is_granted
),

stage_history as (
    select * from {{ ref('fct_journey_stage_history') }}
),

touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
    where customer_id is not null
),

was_loyal as (
    select distinct customer_id
    from stage_history
    where journey_stage = 'loyalty' and not is_current
),

last_activity as (
    select
        touchpoints.customer_id,
        max(touchpoints.occurred_at) as last_active_at,
    from touchpoints
    where
        touchpoints.touchpoint_type not in (
            {{ sql_value_list(var('lapse_ignored_touchpoint_types') + ['consent_change']) }}
        )
    group by touchpoints.customer_id
),

classified as (
    select
        customers.*,
        last_activity.last_active_at,
        case
            when customers.journey_stage = 'lapsed' and was_loyal.customer_id is not null then 'lapsed'
            when
                customers.journey_stage = 'loyalty'
                and last_activity.last_active_at
                <= customers.profile_as_of - to_days({{ at_risk_days }})
                then 'at_risk'
        end as win_back_reason,
    from customers
    inner join consents on customers.customer_id = consents.customer_id
    left join was_loyal on customers.customer_id = was_loyal.customer_id
    left join last_activity on customers.customer_id = last_activity.customer_id
    where not customers.has_erasure_request and customers.email is not null
),

final as (
    select
        customer_id,
        email,
        first_name,
        win_back_reason,
        journey_stage,
        journey_stage_since,
        last_active_at,
        last_order_at,
        order_count,
        net_revenue,
        'email_marketing' as consent_purpose,
        profile_as_of as audience_as_of,
    from classified
    where win_back_reason is not null
)

select * from final
