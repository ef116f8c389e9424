{#-
    Monthly churn, consistent with the journey stages (docs/journey.md, docs/cx_measures.md):
    - a customer is *active* from their first order until they lapse, and again from a return after a lapse;
    - a customer *lapses* (churns) when the journey puts them in `lapsed`: a buyer with no activity for
      `lapse_after_days` (var, default 180) is lapsed from last activity + that window. The lapses are read
      from fct_journey_stage_history, so churn and journey stage never disagree.
    churn_rate = customers who lapsed in the month and were active at its start / customers active at its
    start (00:00 UTC on the 1st). Computed from monthly counts of starts and ends of active periods and
    their running sums: no customer x month expansion.
-#}
{%- set lapse_after_days = var('lapse_after_days', 180) | int -%}

with orders as (
    select * from {{ ref('fct_cx_orders') }}
),

stage_history as (
    select * from {{ ref('fct_journey_stage_history') }}
),

as_of as (
    select
        cast({{ dbt.date_trunc('month', journey_as_of(ref('int_touchpoints_attributed'))) }} as date)
            as as_of_month
),

-- Starts and ends of active periods, per customer in time order (they alternate).
period_events as (
    select
        customer_id,
        ordered_at as event_at,
        'first_order' as event_type
    from orders
    where customer_order_number = 1
    union all
    select
        customer_id,
        valid_from as event_at,
        case when journey_stage = 'lapsed' then 'lapse' else 'return_from_lapse' end as event_type
    from stage_history
    where journey_stage = 'lapsed' or previous_stage = 'lapsed'
),

sequenced as (
    select
        customer_id,
        event_type,
        cast({{ dbt.date_trunc('month', 'event_at') }} as date) as event_month,
        cast({{ dbt.date_trunc('month', 'lag(event_at) over (partition by customer_id order by event_at)') }} as date)
            as period_start_month
    from period_events
),

monthly_events as (
    select
        event_month as month,
        count(*) filter (where event_type = 'first_order') as new_customers,
        count(*) filter (where event_type = 'return_from_lapse') as reactivated_customers,
        count(*) filter (where event_type = 'lapse') as lapsed_customers,
        -- Lapses of periods that began in the same month: those customers were not active at its start.
        count(*) filter (where event_type = 'lapse' and period_start_month = event_month) as lapsed_same_month
    from sequenced
    group by event_month
),

months as (
    select cast(series.month as date) as month
    from (
        select
            unnest(
                generate_series(
                    cast(min(monthly_events.month) as timestamp),
                    cast(max(as_of.as_of_month) as timestamp),
                    interval 1 month
                )
            ) as month
        from monthly_events
        cross join as_of
    ) as series
    -- No orders at all: no months (rather than one null month).
    where series.month is not null
),

counted as (
    select
        months.month,
        coalesce(monthly_events.new_customers, 0) as new_customers,
        coalesce(monthly_events.reactivated_customers, 0) as reactivated_customers,
        coalesce(monthly_events.lapsed_customers, 0) as lapsed_customers,
        coalesce(monthly_events.lapsed_same_month, 0) as lapsed_same_month
    from months
    left join monthly_events on months.month = monthly_events.month
),

running as (
    select
        *,
        coalesce(
            sum(new_customers + reactivated_customers - lapsed_customers) over (
                order by month rows between unbounded preceding and 1 preceding
            ),
            0
        ) as active_at_month_start
    from counted
),

final as (
    select
        running.month,
        cast(running.active_at_month_start as bigint) as active_customers_at_start,
        cast(running.new_customers as bigint) as new_customers,
        cast(running.reactivated_customers as bigint) as reactivated_customers,
        cast(running.lapsed_customers - running.lapsed_same_month as bigint) as churned_customers,
        cast(running.lapsed_customers as bigint) as lapsed_customers,
        cast(
            running.active_at_month_start + running.new_customers + running.reactivated_customers
            - running.lapsed_customers as bigint
        ) as active_customers_at_end,
        cast(
            round((running.lapsed_customers - running.lapsed_same_month) / nullif(running.active_at_month_start, 0), 4)
            as double
        ) as churn_rate,
        running.month = as_of.as_of_month as is_partial_month,
        {{ lapse_after_days }} as lapse_after_days
    from running
    cross join as_of
)

select * from final
