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

-- Every part below reads the touchpoints itself, with its own filter and columns: one CTE of the touchpoints
-- in scope read by all of them was materialised (every touchpoint, spilled to disk at 1M customers).
with touchpoints as not materialized (
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

volumes as (
    select
        touchpoints.touchpoint_type,
        touchpoints.channel,
        count(*) as touchpoints,
        count(touchpoints.customer_id) as attributed_touchpoints,
        count(distinct touchpoints.customer_id) as customers_reached
    from touchpoints
    cross join as_of
    where touchpoints.occurred_at <= as_of.as_of_at
    group by touchpoints.touchpoint_type, touchpoints.channel
),

-- Every attributed touchpoint, NPS answers carrying their score.
stream as (
    select
        touchpoints.customer_id,
        touchpoints.occurred_at,
        touchpoints.touchpoint_type,
        touchpoints.channel,
        case
            when touchpoints.source_system = 'surveys' and nps_responses.score is not null
                then { 'answer_id': touchpoints.touchpoint_id, 'score': nps_responses.score }
        end as nps_answer
    from touchpoints
    cross join as_of
    left join nps_responses
        on
            touchpoints.source_system = 'surveys'
            and touchpoints.source_record_id = nps_responses.response_id
    where touchpoints.customer_id is not null and touchpoints.occurred_at <= as_of.as_of_at
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

-- One pass over the flagged stream (read once, so never materialised): the rates, and each following
-- answer once per touchpoint type and channel, however many touchpoints preceded it.
outcome_rates as (
    select
        flagged.touchpoint_type,
        flagged.channel,
        count(*) filter (where flagged.is_mature) as mature_touchpoints,
        count(distinct flagged.customer_id) filter (where flagged.is_mature) as mature_customers,
        count(*) filter (where flagged.is_mature and flagged.converted) as converted_touchpoints,
        count(distinct flagged.customer_id) filter (
            where flagged.is_mature and flagged.converted
        ) as converted_customers,
        count(*) filter (
            where flagged.is_mature and (
                flagged.had_support_contact or flagged.had_rejection or flagged.had_abandoned_cart
            )
        ) as friction_touchpoints,
        count(*) filter (where flagged.is_mature and flagged.had_support_contact) as support_contact_touchpoints,
        count(*) filter (where flagged.is_mature and flagged.had_rejection) as rejection_touchpoints,
        count(*) filter (where flagged.is_mature and flagged.had_abandoned_cart) as abandoned_cart_touchpoints,
        count(distinct flagged.next_nps_answer) filter (where flagged.has_nps_follow_up) as follow_up_nps_responses,
        count(distinct flagged.next_nps_answer) filter (
            where flagged.has_nps_follow_up and flagged.next_nps_answer.score >= 9
        ) as follow_up_promoters,
        count(distinct flagged.next_nps_answer) filter (
            where flagged.has_nps_follow_up and flagged.next_nps_answer.score <= 6
        ) as follow_up_detractors
    from flagged
    group by flagged.touchpoint_type, flagged.channel
),

tied_nps_answers as (
    select
        touchpoints.customer_id,
        touchpoints.occurred_at as answered_at,
        case nps_responses.touchpoint
            when 'post_purchase' then 'order'
            when 'post_support' then 'support_ticket'
        end as tied_touchpoint_type,
        nps_responses.score as nps_score
    from touchpoints
    cross join as_of
    inner join nps_responses on touchpoints.source_record_id = nps_responses.response_id
    where
        touchpoints.source_system = 'surveys'
        and touchpoints.customer_id is not null
        and touchpoints.occurred_at <= as_of.as_of_at
        and nps_responses.touchpoint in ('post_purchase', 'post_support')
        and nps_responses.score is not null
),

trigger_touchpoints as (
    select
        touchpoints.customer_id,
        touchpoints.touchpoint_type,
        touchpoints.channel,
        touchpoints.occurred_at
    from touchpoints
    cross join as_of
    where
        touchpoints.customer_id is not null
        and touchpoints.touchpoint_type in ('order', 'support_ticket')
        and touchpoints.occurred_at <= as_of.as_of_at
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
        count(*) filter (where nps_score >= 9) as tied_nps_promoters,
        count(*) filter (where nps_score <= 6) as tied_nps_detractors,
        {{ cx_nps('nps_score') }} as tied_nps
    from tied_nps_matched
    group by touchpoint_type, channel
),

tied_ticket_scores as (
    select
        touchpoints.touchpoint_type,
        touchpoints.channel,
        count(tickets.csat_score) as tied_csat_responses,
        {{ cx_csat('tickets.csat_score') }} as tied_csat,
        count(tickets.ces_score) as tied_ces_responses,
        {{ cx_ces('tickets.ces_score') }} as tied_ces
    from touchpoints
    cross join as_of
    inner join tickets on touchpoints.source_record_id = tickets.ticket_id
    where
        touchpoints.source_system = 'support'
        and touchpoints.touchpoint_type = 'support_ticket'
        and touchpoints.occurred_at <= as_of.as_of_at
    group by touchpoints.touchpoint_type, touchpoints.channel
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
        -- The inputs beside the score, so no one averages NPS percentages across rows.
        coalesce(tied_nps.tied_nps_promoters, 0) as tied_nps_promoters,
        coalesce(tied_nps.tied_nps_detractors, 0) as tied_nps_detractors,
        cast(tied_nps.tied_nps as double) as tied_nps,
        coalesce(tied_ticket_scores.tied_csat_responses, 0) as tied_csat_responses,
        cast(tied_ticket_scores.tied_csat as double) as tied_csat,
        coalesce(tied_ticket_scores.tied_ces_responses, 0) as tied_ces_responses,
        cast(tied_ticket_scores.tied_ces as double) as tied_ces,
        coalesce(outcome_rates.follow_up_nps_responses, 0) as follow_up_nps_responses,
        coalesce(outcome_rates.follow_up_promoters, 0) as follow_up_nps_promoters,
        coalesce(outcome_rates.follow_up_detractors, 0) as follow_up_nps_detractors,
        cast(
            {{ cx_nps_from_counts(
                'outcome_rates.follow_up_promoters',
                'outcome_rates.follow_up_detractors',
                'outcome_rates.follow_up_nps_responses',
            ) }} as double
        ) as follow_up_nps,
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
                outcome_rates.follow_up_nps_responses > 0
                and {{ cx_is_low_sample('outcome_rates.follow_up_nps_responses') }}
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
)

select * from final
