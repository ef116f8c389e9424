{#-
    RFM per customer with at least one order up to `as_of`, with the historical CLV (definitions and the
    segment map: docs/cx_measures.md).
    - recency_days: calendar days from the last order to `as_of`; frequency: orders; monetary = historical
      CLV: net revenue after returns and cancellations (fct_cx_orders).
    - Scores 1-5 by quintile of rank: 1 + floor(5 x percent_rank), capped at 5, where percent_rank is the
      share of other buyers ranked strictly below (more recent is better for R). Equal values get equal
      scores (ties take the lower quintile), so a mass of one-order customers all get F = 1.
    - Segments: the first rule that matches, on R and F (and orders = 1 for `new`).
-#}

with orders as (
    select * from {{ ref('fct_cx_orders') }}
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

customers as (
    select
        customer_id,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        count(*) as orders,
        sum(gross_revenue) as gross_revenue,
        sum(refunded_amount) as refunded_amount,
        sum(net_revenue) as historical_clv
    from orders
    group by customer_id
),

measured as (
    select
        customers.*,
        {{ dbt.datediff('customers.last_order_at', 'as_of.as_of_at', 'day') }} as recency_days, -- noqa: LT05
        as_of.as_of_at
    from customers
    cross join as_of
),

scored as (
    select
        *,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by recency_days desc))) as integer)
            as recency_score,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by orders))) as integer) as frequency_score,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by historical_clv))) as integer) as monetary_score
    from measured
),

final as (
    select
        customer_id,
        first_order_at,
        last_order_at,
        cast(recency_days as integer) as recency_days,
        cast(orders as integer) as orders,
        cast(gross_revenue as decimal(18, 2)) as gross_revenue,
        cast(refunded_amount as decimal(18, 2)) as refunded_amount,
        cast(historical_clv as decimal(18, 2)) as historical_clv,
        cast(historical_clv / orders as decimal(18, 2)) as average_order_value,
        recency_score,
        frequency_score,
        monetary_score,
        cast(recency_score as varchar) || cast(frequency_score as varchar) || cast(monetary_score as varchar)
            as rfm_cell,
        case
            when recency_score >= 4 and frequency_score >= 4 then 'champions'
            when recency_score >= 3 and frequency_score >= 3 then 'loyal'
            when recency_score >= 4 and orders = 1 then 'new'
            when recency_score >= 3 then 'potential_loyalist'
            when frequency_score >= 3 then 'at_risk'
            when recency_score = 2 then 'hibernating'
            else 'lost'
        end as rfm_segment,
        as_of_at
    from scored
)

select * from final
