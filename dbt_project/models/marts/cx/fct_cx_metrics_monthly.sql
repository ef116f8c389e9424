{#-
    NPS, CSAT and CES by month, channel, journey stage (at the time of the answer) and survey touchpoint,
    with the counts they are built from so any roll-up recomputes them exactly (sum the counts, then apply
    the formulas in macros/cx_measures.sql; never average the scores). A score over fewer answers than
    `cx_low_sample_threshold` is flagged. Definitions: docs/cx_measures.md.
-#}

with answers as (
    select * from {{ ref('int_cx_survey_answers_unioned') }}
),

grouped as (
    select
        answer_month as month,
        channel,
        journey_stage,
        survey_touchpoint,
        count(*) as answers,
        count(nps_score) as nps_responses,
        {{ cx_nps_promoters('nps_score') }} as nps_promoters,
        {{ cx_nps_passives('nps_score') }} as nps_passives,
        {{ cx_nps_detractors('nps_score') }} as nps_detractors,
        count(csat_score) as csat_responses,
        {{ cx_csat_satisfied('csat_score') }} as csat_satisfied,
        count(ces_score) as ces_responses,
        coalesce(sum(ces_score), 0) as ces_score_sum
    from answers
    group by answer_month, channel, journey_stage, survey_touchpoint
),

final as (
    select
        month,
        channel,
        journey_stage,
        survey_touchpoint,
        answers,
        nps_responses,
        nps_promoters,
        nps_passives,
        nps_detractors,
        cast({{ cx_nps_from_counts('nps_promoters', 'nps_detractors', 'nps_responses') }} as double) as nps,
        csat_responses,
        csat_satisfied,
        cast({{ cx_csat_from_counts('csat_satisfied', 'csat_responses') }} as double) as csat,
        ces_responses,
        cast(ces_score_sum as bigint) as ces_score_sum,
        cast({{ cx_ces_from_sum('ces_score_sum', 'ces_responses') }} as double) as ces,
        nps_responses > 0 and {{ cx_is_low_sample('nps_responses') }} as is_nps_low_sample,
        csat_responses > 0 and {{ cx_is_low_sample('csat_responses') }} as is_csat_low_sample,
        ces_responses > 0 and {{ cx_is_low_sample('ces_responses') }} as is_ces_low_sample,
        -- Any score on this row rests on fewer answers than the threshold.
        (nps_responses > 0 and {{ cx_is_low_sample('nps_responses') }})
        or (csat_responses > 0 and {{ cx_is_low_sample('csat_responses') }})
        or (ces_responses > 0 and {{ cx_is_low_sample('ces_responses') }}) as is_low_sample
    from grouped
)

select * from final
