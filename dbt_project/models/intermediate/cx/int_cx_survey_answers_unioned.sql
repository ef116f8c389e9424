{#-
    One row per survey answer of a resolved customer up to `as_of`: NPS responses (0-10) and support
    tickets carrying a CSAT (1-5) and/or CES (1-7) score. Each answer is dated, placed in a channel and
    stamped with the journey stage the customer was in at that moment (definitions: docs/cx_measures.md).

    - NPS: dated by responded_at; survey_touchpoint = the survey's trigger (post_purchase, post_support,
      relationship, onboarding).
    - CSAT/CES: tickets record no answer time, so the answer is dated by the ticket's creation (the moment
      of the support contact); survey_touchpoint = 'support_ticket'.
    - Channel: the touchpoint channel vocabulary (web|app|store|email|phone|chat|social) of the answer's
      touchpoint (NPS in_store -> store, sms -> phone; ticket web_form -> web).
    - Journey stage: the stage spell in force at the answer (the latest stage entered at or before it);
      'unknown' if none.
-#}

with attributed as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

nps_responses as (
    select * from {{ ref('stg_surveys__nps_responses') }}
),

tickets as (
    select * from {{ ref('stg_support__tickets') }}
),

stage_transitions as (
    select
        customer_id,
        entered_at,
        journey_stage
    from {{ ref('int_journey_stage_transitions_derived') }}
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

survey_touchpoints as (
    select
        attributed.touchpoint_id,
        attributed.customer_id,
        attributed.source_system,
        attributed.source_record_id,
        attributed.occurred_at,
        attributed.channel
    from attributed
    cross join as_of
    where
        attributed.customer_id is not null
        and attributed.occurred_at <= as_of.as_of_at
        and attributed.touchpoint_type in ('survey_response', 'support_ticket')
),

nps_answers as (
    select
        survey_touchpoints.touchpoint_id,
        survey_touchpoints.customer_id,
        'nps' as survey,
        nps_responses.response_id as answer_source_id,
        nps_responses.responded_at as answered_at,
        survey_touchpoints.channel,
        coalesce(nps_responses.touchpoint, 'unknown') as survey_touchpoint,
        nps_responses.score as nps_score,
        nps_responses.nps_class,
        cast(null as integer) as csat_score,
        cast(null as integer) as ces_score
    from survey_touchpoints
    inner join nps_responses on survey_touchpoints.source_record_id = nps_responses.response_id
    where survey_touchpoints.source_system = 'surveys' and nps_responses.score is not null
),

ticket_answers as (
    select
        survey_touchpoints.touchpoint_id,
        survey_touchpoints.customer_id,
        'ticket' as survey,
        tickets.ticket_id as answer_source_id,
        tickets.created_at as answered_at,
        survey_touchpoints.channel,
        'support_ticket' as survey_touchpoint,
        cast(null as integer) as nps_score,
        cast(null as varchar) as nps_class,
        cast(tickets.csat_score as integer) as csat_score,
        cast(tickets.ces_score as integer) as ces_score
    from survey_touchpoints
    inner join tickets on survey_touchpoints.source_record_id = tickets.ticket_id
    where
        survey_touchpoints.source_system = 'support'
        and (tickets.csat_score is not null or tickets.ces_score is not null)
),

answers as (
    select * from nps_answers
    union all
    select * from ticket_answers
),

-- The spell entered last at or before the answer: an ASOF join (one ordered merge per customer).
staged as (
    select
        answers.*,
        stage_transitions.journey_stage
    from answers
    asof left join stage_transitions
        on
            answers.customer_id = stage_transitions.customer_id
            and answers.answered_at >= stage_transitions.entered_at
),

final as (
    select
        survey || ':' || answer_source_id as answer_id,
        touchpoint_id,
        customer_id,
        survey,
        answer_source_id,
        answered_at,
        cast({{ dbt.date_trunc('month', 'answered_at') }} as date) as answer_month,
        channel,
        survey_touchpoint,
        coalesce(journey_stage, 'unknown') as journey_stage,
        nps_score,
        nps_class,
        csat_score,
        ces_score
    from staged
)

select * from final
