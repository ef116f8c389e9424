{#-
    Per-customer survey measures up to `as_of` (definitions: docs/cx_measures.md): the latest NPS answer
    and its class, the customer's own NPS over all their answers, CSAT (share of 4-5 answers and mean score)
    and CES (mean score), each with its answer count. Formulas: macros/cx_measures.sql.
-#}

with answers as (
    select * from {{ ref('int_cx_survey_answers_unioned') }}
),

final as (
    select
        customer_id,
        count(nps_score) as nps_response_count,
        arg_max(nps_score, (answered_at, answer_id)) filter (where nps_score is not null) as latest_nps_score,
        arg_max(nps_class, (answered_at, answer_id)) filter (where nps_score is not null) as latest_nps_class,
        max(answered_at) filter (where nps_score is not null) as latest_nps_at,
        cast({{ cx_nps('nps_score') }} as double) as customer_nps,
        count(csat_score) as csat_response_count,
        cast({{ cx_csat('csat_score') }} as double) as csat_satisfied_pct,
        cast(round(avg(csat_score), 3) as double) as average_csat_score,
        count(ces_score) as ces_response_count,
        cast({{ cx_ces('ces_score') }} as double) as average_ces_score,
        max(answered_at) as last_answer_at
    from answers
    group by customer_id
)

select * from final
