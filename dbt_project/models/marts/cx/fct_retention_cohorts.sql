{#-
    Monthly retention cohorts: customers grouped by the month of their first order (UTC), and for every
    later month up to `as_of` the number and share of them who placed at least one order in that month.
    Month 0 is the first-order month (100% by definition). Definitions: docs/cx_measures.md.
-#}

with orders as (
    select * from {{ ref('fct_cx_orders') }}
),

as_of as (
    select
        cast({{ dbt.date_trunc('month', journey_as_of(ref('int_touchpoints_attributed'))) }} as date)
            as as_of_month
),

customer_months as (
    select
        customer_id,
        order_month,
        sum(net_revenue) as net_revenue
    from orders
    group by customer_id, order_month
),

cohorts as (
    select
        customer_id,
        min(order_month) as cohort_month
    from customer_months
    group by customer_id
),

cohort_sizes as (
    select
        cohort_month,
        count(*) as cohort_customers
    from cohorts
    group by cohort_month
),

activity as (
    select
        cohorts.cohort_month,
        {{ dbt.datediff('cohorts.cohort_month', 'customer_months.order_month', 'month') }}
            as months_since_first_order,
        count(*) as active_customers,
        sum(customer_months.net_revenue) as net_revenue
    from customer_months
    inner join cohorts on customer_months.customer_id = cohorts.customer_id
    group by all
),

-- Every (cohort, month) pair up to the as_of month, so months nobody ordered in show as 0.
spine as (
    select
        cohort_sizes.cohort_month,
        cohort_sizes.cohort_customers,
        as_of.as_of_month,
        unnest(
            range(0, {{ dbt.datediff('cohort_sizes.cohort_month', 'as_of.as_of_month', 'month') }} + 1) -- noqa: LT05
        ) as months_since_first_order
    from cohort_sizes
    cross join as_of
),

final as (
    select
        spine.cohort_month,
        cast(spine.months_since_first_order as integer) as months_since_first_order,
        cast({{ dbt.dateadd('month', 'spine.months_since_first_order', 'spine.cohort_month') }} as date)
            as activity_month,
        spine.cohort_customers,
        coalesce(activity.active_customers, 0) as active_customers,
        cast(round(coalesce(activity.active_customers, 0) / spine.cohort_customers, 4) as double)
            as retention_rate,
        cast(coalesce(activity.net_revenue, 0) as decimal(18, 2)) as net_revenue,
        {{ dbt.dateadd('month', 'spine.months_since_first_order', 'spine.cohort_month') }}
        = spine.as_of_month as is_partial_month
    from spine
    left join activity
        on
            spine.cohort_month = activity.cohort_month
            and spine.months_since_first_order = activity.months_since_first_order
)

select * from final
