{#-
    CX per touchpoint type and channel, up to `as_of`: volume, reach, conversion to an order, the friction
    that followed, and the survey scores tied to the touchpoint (definitions: docs/cx_measures.md).

    Outcomes come from window functions over each customer's time-ordered touchpoint stream ("the first
    order strictly after this touchpoint"), one sort of the stream for every outcome, never a range join:
    - conversion: an order touchpoint strictly later than the touchpoint and within `cx_touchpoint_window_days`;
    - friction: a support ticket, a return / rejection or an abandoned cart strictly later, within the window;
    - rates are over *mature* touchpoints (attributed to a customer and at least a full window before
      `as_of`), so recent touchpoints whose window is still open do not drag the rates down.
    Survey ties:
    - tied CSAT/CES: a support_ticket touchpoint carries its own ticket's scores;
    - tied NPS: a post_purchase answer belongs to the customer's latest order touchpoint at or before it,
      a post_support answer to the latest support_ticket touchpoint, each within the window;
    - follow-up NPS: every NPS answer (any survey) that is the customer's first answer strictly after a
      touchpoint and within the window, counted once per touchpoint type and channel.
-#}
{%- set window_days = var('cx_touchpoint_window_days', 30) | int -%}

with touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
),

nps_responses as (
    select * from {{ ref('stg_surveys__nps_responses') }}
),

tickets as (
    select * from {{ ref('stg_support__tickets') }}
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

in_scope as (
    select touchpoints.*
    from touchpoints
    cross join as_of
    where touchpoints.occurred_at <= as_of.as_of_at
),

volumes as (
    select
        touchpoint_type,
        channel,
        count(*) as touchpoints,
        count(customer_id) as attributed_touchpoints,
        count(distinct customer_id) as customers_reached
    from in_scope
    group by touchpoint_type, channel
),

-- Every attributed touchpoint, NPS answers carrying their score.
stream as (
    select
        in_scope.touchpoint_id,
        in_scope.customer_id,
        in_scope.occurred_at,
        in_scope.touchpoint_type,
        in_scope.channel,
        case
            when in_scope.source_system = 'surveys' and nps_responses.score is not null
                then { 'answer_id': in_scope.touchpoint_id, 'score': nps_responses.score }
        end as nps_answer
    from in_scope
    left join nps_responses
        on
            in_scope.source_system = 'surveys'
            and in_scope.source_record_id = nps_responses.response_id
    where in_scope.customer_id is not null
),

outcomes as (
    select
        stream.touchpoint_type,
        stream.channel,
        stream.customer_id,
        stream.occurred_at,
        stream.occurred_at <= as_of.as_of_at - interval {{ window_days }} day as is_mature,
        min(case when stream.touchpoint_type = 'order' then stream.occurred_at end) over later
            as next_order_at,
        min(case when stream.touchpoint_type = 'support_ticket' then stream.occurred_at end) over later
            as next_support_contact_at,
        min(case when stream.touchpoint_type in ('return', 'rejection') then stream.occurred_at end) over later
            as next_rejection_at,
        min(case when stream.touchpoint_type = 'cart_abandoned' then stream.occurred_at end) over later
            as next_abandoned_cart_at,
        min(case when stream.nps_answer is not null then stream.occurred_at end) over later as next_nps_at,
        first_value(stream.nps_answer ignore nulls) over later as next_nps_answer
    from stream
    cross join as_of
    window later as (
        partition by stream.customer_id
        order by stream.occurred_at
        range between current row and unbounded following exclude group
    )
),

flagged as (
    select
        touchpoint_type,
        channel,
        customer_id,
        is_mature,
        next_nps_answer,
        next_nps_at <= occurred_at + interval {{ window_days }} day as has_nps_follow_up,
        coalesce(next_order_at <= occurred_at + interval {{ window_days }} day, false) as converted,
        coalesce(next_support_contact_at <= occurred_at + interval {{ window_days }} day, false)
            as had_support_contact,
        coalesce(next_rejection_at <= occurred_at + interval {{ window_days }} day, false) as had_rejection,
        coalesce(next_abandoned_cart_at <= occurred_at + interval {{ window_days }} day, false)
            as had_abandoned_cart
    from outcomes
),

outcome_rates as (
    select
        touchpoint_type,
        channel,
        count(*) filter (where is_mature) as mature_touchpoints,
        count(distinct customer_id) filter (where is_mature) as mature_customers,
        count(*) filter (where is_mature and converted) as converted_touchpoints,
        count(distinct customer_id) filter (where is_mature and converted) as converted_customers,
        count(*) filter (
            where is_mature and (had_support_contact or had_rejection or had_abandoned_cart)
        ) as friction_touchpoints,
        count(*) filter (where is_mature and had_support_contact) as support_contact_touchpoints,
        count(*) filter (where is_mature and had_rejection) as rejection_touchpoints,
        count(*) filter (where is_mature and had_abandoned_cart) as abandoned_cart_touchpoints
    from flagged
    group by touchpoint_type, channel
),

-- Each following answer once per touchpoint type and channel, however many touchpoints preceded it.
follow_up_answers as (
    select distinct
        flagged.touchpoint_type,
        flagged.channel,
        next_nps_answer.answer_id,
        next_nps_answer.score as nps_score
    from flagged
    where flagged.has_nps_follow_up
),

follow_up_nps as (
    select
        touchpoint_type,
        channel,
        count(nps_score) as follow_up_nps_responses,
        {{ cx_nps('nps_score') }} as follow_up_nps
    from follow_up_answers
    group by touchpoint_type, channel
),

tied_nps_answers as (
    select
        in_scope.customer_id,
        in_scope.occurred_at as answered_at,
        case nps_responses.touchpoint
            when 'post_purchase' then 'order'
            when 'post_support' then 'support_ticket'
        end as tied_touchpoint_type,
        nps_responses.score as nps_score
    from in_scope
    inner join nps_responses on in_scope.source_record_id = nps_responses.response_id
    where
        in_scope.source_system = 'surveys'
        and in_scope.customer_id is not null
        and nps_responses.touchpoint in ('post_purchase', 'post_support')
        and nps_responses.score is not null
),

trigger_touchpoints as (
    select
        customer_id,
        touchpoint_type,
        channel,
        occurred_at
    from in_scope
    where customer_id is not null and touchpoint_type in ('order', 'support_ticket')
),

-- The latest touchpoint of the trigger type at or before the answer: an ASOF join per customer.
tied_nps_matched as (
    select
        trigger_touchpoints.touchpoint_type,
        trigger_touchpoints.channel,
        tied_nps_answers.nps_score
    from tied_nps_answers
    asof inner join trigger_touchpoints
        on
            tied_nps_answers.customer_id = trigger_touchpoints.customer_id
            and tied_nps_answers.tied_touchpoint_type = trigger_touchpoints.touchpoint_type
            and tied_nps_answers.answered_at >= trigger_touchpoints.occurred_at
    where tied_nps_answers.answered_at <= trigger_touchpoints.occurred_at + interval {{ window_days }} day
),

tied_nps as (
    select
        touchpoint_type,
        channel,
        count(nps_score) as tied_nps_responses,
        {{ cx_nps('nps_score') }} as tied_nps
    from tied_nps_matched
    group by touchpoint_type, channel
),

tied_ticket_scores as (
    select
        in_scope.touchpoint_type,
        in_scope.channel,
        count(tickets.csat_score) as tied_csat_responses,
        {{ cx_csat('tickets.csat_score') }} as tied_csat,
        count(tickets.ces_score) as tied_ces_responses,
        {{ cx_ces('tickets.ces_score') }} as tied_ces
    from in_scope
    inner join tickets on in_scope.source_record_id = tickets.ticket_id
    where in_scope.source_system = 'support' and in_scope.touchpoint_type = 'support_ticket'
    group by in_scope.touchpoint_type, in_scope.channel
),

final as (
    select
        volumes.touchpoint_type,
        volumes.channel,
        volumes.touchpoints,
        volumes.attributed_touchpoints,
        volumes.customers_reached,
        coalesce(outcome_rates.mature_touchpoints, 0) as mature_touchpoints,
        coalesce(outcome_rates.converted_touchpoints, 0) as converted_touchpoints,
        cast(round(outcome_rates.converted_touchpoints / nullif(outcome_rates.mature_touchpoints, 0), 4) as double)
            as conversion_rate,
        coalesce(outcome_rates.converted_customers, 0) as converted_customers,
        cast(round(outcome_rates.converted_customers / nullif(outcome_rates.mature_customers, 0), 4) as double)
            as customer_conversion_rate,
        coalesce(outcome_rates.friction_touchpoints, 0) as friction_touchpoints,
        cast(round(outcome_rates.friction_touchpoints / nullif(outcome_rates.mature_touchpoints, 0), 4) as double)
            as friction_rate,
        cast(
            round(outcome_rates.support_contact_touchpoints / nullif(outcome_rates.mature_touchpoints, 0), 4)
            as double
        ) as support_contact_rate,
        cast(
            round(outcome_rates.rejection_touchpoints / nullif(outcome_rates.mature_touchpoints, 0), 4) as double
        ) as rejection_rate,
        cast(
            round(outcome_rates.abandoned_cart_touchpoints / nullif(outcome_rates.mature_touchpoints, 0), 4)
            as double
        ) as abandoned_cart_rate,
        coalesce(tied_nps.tied_nps_responses, 0) as tied_nps_responses,
        cast(tied_nps.tied_nps as double) as tied_nps,
        coalesce(tied_ticket_scores.tied_csat_responses, 0) as tied_csat_responses,
        cast(tied_ticket_scores.tied_csat as double) as tied_csat,
        coalesce(tied_ticket_scores.tied_ces_responses, 0) as tied_ces_responses,
        cast(tied_ticket_scores.tied_ces as double) as tied_ces,
        coalesce(follow_up_nps.follow_up_nps_responses, 0) as follow_up_nps_responses,
        cast(follow_up_nps.follow_up_nps as double) as follow_up_nps,
        -- Any score on this row rests on fewer answers than `cx_low_sample_threshold`.
        coalesce(
            (tied_nps.tied_nps_responses > 0 and {{ cx_is_low_sample('tied_nps.tied_nps_responses') }})
            or (
                tied_ticket_scores.tied_csat_responses > 0
                and {{ cx_is_low_sample('tied_ticket_scores.tied_csat_responses') }}
            )
            or (
                tied_ticket_scores.tied_ces_responses > 0
                and {{ cx_is_low_sample('tied_ticket_scores.tied_ces_responses') }}
            )
            or (
                follow_up_nps.follow_up_nps_responses > 0
                and {{ cx_is_low_sample('follow_up_nps.follow_up_nps_responses') }}
            ),
            false
        ) as is_low_sample,
        {{ window_days }} as window_days
    from volumes
    left join outcome_rates
        on volumes.touchpoint_type = outcome_rates.touchpoint_type and volumes.channel = outcome_rates.channel
    left join tied_nps
        on volumes.touchpoint_type = tied_nps.touchpoint_type and volumes.channel = tied_nps.channel
    left join tied_ticket_scores
        on
            volumes.touchpoint_type = tied_ticket_scores.touchpoint_type
            and volumes.channel = tied_ticket_scores.channel
    left join follow_up_nps
        on volumes.touchpoint_type = follow_up_nps.touchpoint_type and volumes.channel = follow_up_nps.channel
)

select * from final
