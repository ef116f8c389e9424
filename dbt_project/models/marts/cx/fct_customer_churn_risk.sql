{#-
    Churn-risk score (0-1) per customer with at least one order up to `as_of`: a weighted mean of five
    components, each in [0, 1] (inputs, formulas and weights: docs/cx_measures.md; weights: var
    `cx_churn_risk_weights`):
    - recency: days since the last order relative to the customer's usual gap between orders (their mean
      gap; one-order customers: the median gap of all repeat orders, else lapse_after_days / 2):
      (days_since_last_order / expected_gap - 1) / 2, clamped: 0 while not overdue, 1 at three gaps;
    - frequency_decline: orders in the last `cx_churn_trend_days` vs the same span before:
      (prior - recent) / prior, clamped; 0 without prior orders;
    - detractor: latest NPS answer detractor 1, passive 0.5, promoter or none 0;
    - support_friction: support contacts in the last `cx_recent_days`, / 3, clamped; 1 when one of them was
      rated CSAT 1-2;
    - returns: 2 x share of orders with a return or cancellation, clamped (half the orders returned = 1).
-#}
{%- set weights = var('cx_churn_risk_weights', {
    'recency': 0.40, 'frequency_decline': 0.20, 'detractor': 0.15, 'support_friction': 0.15, 'returns': 0.10
}) -%}
{%- set weight_total = weights.values() | sum -%}
{%- set trend_days = var('cx_churn_trend_days', 180) | int -%}
{%- set recent_days = var('cx_recent_days', 90) | int -%}
{%- set lapse_after_days = var('lapse_after_days', 180) | int -%}

with orders as (
    select * from {{ ref('fct_cx_orders') }}
),

survey_measures as (
    select * from {{ ref('int_customer_cx_measures') }}
),

attributed as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

tickets as (
    select * from {{ ref('stg_support__tickets') }}
),

current_stages as (
    select * from {{ ref('fct_journey_stage_history') }}
    where is_current
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

population_gap as (
    select coalesce(median(days_since_previous_order), {{ lapse_after_days / 2 }}) as median_gap_days
    from orders
),

order_measures as (
    select
        orders.customer_id,
        count(*) as orders,
        max(orders.ordered_at) as last_order_at,
        avg(orders.days_since_previous_order) as mean_gap_days,
        count(*) filter (
            where orders.ordered_at > {{ dbt.dateadd('day', -trend_days, 'as_of.as_of_at') }}
        ) as recent_orders,
        count(*) filter (
            where
            orders.ordered_at <= {{ dbt.dateadd('day', -trend_days, 'as_of.as_of_at') }}
            and orders.ordered_at > {{ dbt.dateadd('day', -2 * trend_days, 'as_of.as_of_at') }}
        ) as prior_orders,
        count(*) filter (where orders.has_return or orders.has_cancellation) as orders_with_returns
    from orders
    cross join as_of
    group by orders.customer_id
),

recent_support as (
    select
        attributed.customer_id,
        count(*) as recent_support_contacts,
        count(*) filter (where tickets.csat_score <= 2) as recent_poorly_rated_contacts
    from attributed
    cross join as_of
    inner join tickets on attributed.source_record_id = tickets.ticket_id
    where
        attributed.source_system = 'support'
        and attributed.customer_id is not null
        and attributed.occurred_at <= as_of.as_of_at
        and attributed.occurred_at > {{ dbt.dateadd('day', -recent_days, 'as_of.as_of_at') }}
    group by attributed.customer_id
),

inputs as (
    select
        order_measures.customer_id,
        order_measures.orders,
        order_measures.last_order_at,
        {{ dbt.datediff('order_measures.last_order_at', 'as_of.as_of_at', 'day') }} as days_since_last_order, -- noqa: LT05
        greatest(coalesce(order_measures.mean_gap_days, population_gap.median_gap_days), 1) as expected_gap_days,
        order_measures.recent_orders,
        order_measures.prior_orders,
        order_measures.orders_with_returns,
        survey_measures.latest_nps_class,
        coalesce(recent_support.recent_support_contacts, 0) as recent_support_contacts,
        coalesce(recent_support.recent_poorly_rated_contacts, 0) as recent_poorly_rated_contacts,
        coalesce(current_stages.journey_stage = 'lapsed', false) as is_lapsed
    from order_measures
    cross join as_of
    cross join population_gap
    left join survey_measures on order_measures.customer_id = survey_measures.customer_id
    left join recent_support on order_measures.customer_id = recent_support.customer_id
    left join current_stages on order_measures.customer_id = current_stages.customer_id
),

components as (
    select
        *,
        {{ cx_clamp01('(days_since_last_order / expected_gap_days - 1) / 2.0') }} as recency_risk,
        case
            when prior_orders > 0 then {{ cx_clamp01('(prior_orders - recent_orders) / prior_orders') }}
            else 0.0
        end as frequency_decline_risk,
        case latest_nps_class when 'detractor' then 1.0 when 'passive' then 0.5 else 0.0 end as detractor_risk,
        case
            when recent_poorly_rated_contacts > 0 then 1.0
            else {{ cx_clamp01('recent_support_contacts / 3.0') }}
        end as support_friction_risk,
        {{ cx_clamp01('2.0 * orders_with_returns / orders') }} as returns_risk
    from inputs
),

scored as (
    select
        *,
        round(
            (
                {{ weights['recency'] }} * recency_risk
                + {{ weights['frequency_decline'] }} * frequency_decline_risk
                + {{ weights['detractor'] }} * detractor_risk
                + {{ weights['support_friction'] }} * support_friction_risk
                + {{ weights['returns'] }} * returns_risk
            ) / {{ weight_total }},
            4
        ) as churn_risk_score
    from components
),

final as (
    select
        customer_id,
        cast(orders as integer) as orders,
        last_order_at,
        cast(days_since_last_order as integer) as days_since_last_order,
        cast(round(expected_gap_days, 1) as double) as expected_gap_days,
        cast(recent_orders as integer) as recent_orders,
        cast(prior_orders as integer) as prior_orders,
        cast(orders_with_returns as integer) as orders_with_returns,
        latest_nps_class,
        cast(recent_support_contacts as integer) as recent_support_contacts,
        cast(recent_poorly_rated_contacts as integer) as recent_poorly_rated_contacts,
        cast(round(recency_risk, 4) as double) as recency_risk,
        cast(round(frequency_decline_risk, 4) as double) as frequency_decline_risk,
        cast(detractor_risk as double) as detractor_risk,
        cast(round(support_friction_risk, 4) as double) as support_friction_risk,
        cast(round(returns_risk, 4) as double) as returns_risk,
        cast(churn_risk_score as double) as churn_risk_score,
        case
            when churn_risk_score >= 0.6 then 'high'
            when churn_risk_score >= 0.3 then 'medium'
            else 'low'
        end as churn_risk_band,
        is_lapsed
    from scored
)

select * from final
