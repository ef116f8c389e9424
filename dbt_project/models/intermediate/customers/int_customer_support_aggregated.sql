{#-
    Per-customer support and survey measures, up to `as_of`: tickets (all, still open), median first-response
    and resolution minutes, average CSAT and CES; the latest NPS answer.
-#}

with attributed as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

tickets as (
    select * from {{ ref('stg_support__tickets') }}
),

nps_responses as (
    select * from {{ ref('stg_surveys__nps_responses') }}
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

customer_records as (
    select
        attributed.customer_id,
        attributed.source_system,
        attributed.source_record_id,
    from attributed
    cross join as_of
    where
        attributed.customer_id is not null
        and attributed.occurred_at <= as_of.as_of_at
        and attributed.touchpoint_type in ('support_ticket', 'survey_response')
),

ticket_measures as (
    select
        customer_records.customer_id,
        count(*) as ticket_count,
        count(*) filter (where tickets.status in ('new', 'open', 'pending', 'hold')) as open_ticket_count,
        max(tickets.created_at) as last_ticket_at,
        median(tickets.first_response_minutes) as median_first_response_minutes,
        median(tickets.resolution_minutes) as median_resolution_minutes,
        avg(tickets.csat_score) as average_csat_score,
        avg(tickets.ces_score) as average_ces_score,
    from customer_records
    inner join tickets on customer_records.source_record_id = tickets.ticket_id
    where customer_records.source_system = 'support'
    group by customer_records.customer_id
),

nps_measures as (
    select
        customer_records.customer_id,
        count(*) as nps_response_count,
        arg_max(nps_responses.score, (nps_responses.responded_at, nps_responses.response_id)) as latest_nps_score,
        arg_max(
            nps_responses.nps_class, (nps_responses.responded_at, nps_responses.response_id)
        ) as latest_nps_class,
        max(nps_responses.responded_at) as latest_nps_at,
    from customer_records
    inner join nps_responses on customer_records.source_record_id = nps_responses.response_id
    where customer_records.source_system = 'surveys'
    group by customer_records.customer_id
),

final as (
    select
        coalesce(ticket_measures.customer_id, nps_measures.customer_id) as customer_id,
        coalesce(ticket_measures.ticket_count, 0) as ticket_count,
        coalesce(ticket_measures.open_ticket_count, 0) as open_ticket_count,
        ticket_measures.last_ticket_at,
        cast(ticket_measures.median_first_response_minutes as double) as median_first_response_minutes,
        cast(ticket_measures.median_resolution_minutes as double) as median_resolution_minutes,
        cast(ticket_measures.average_csat_score as double) as average_csat_score,
        cast(ticket_measures.average_ces_score as double) as average_ces_score,
        coalesce(nps_measures.nps_response_count, 0) as nps_response_count,
        nps_measures.latest_nps_score,
        nps_measures.latest_nps_class,
        nps_measures.latest_nps_at,
    from ticket_measures
    full outer join nps_measures on ticket_measures.customer_id = nps_measures.customer_id
)

select * from final
