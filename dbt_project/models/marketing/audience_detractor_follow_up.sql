{#-
    Detractor follow-up for the CX team (purpose cx_follow_up, lawful basis legitimate interest: no
    marketing consent is needed). Customers whose latest NPS answer is a detractor (0-6) given within the
    last `detractor_follow_up_window_days` days before `as_of`, with the answer to follow up on.

    Excluded, because they objected to being contacted (GDPR Art. 21) or asked to be erased:
      - "refused all contact": at least one consent record and every purpose they ever recorded is now
        denied or withdrawn;
      - any purpose listed in `detractor_follow_up_objection_purposes` is now denied or withdrawn;
      - an erasure request.
    No consent records at all is not an objection. docs/privacy.md.
-#}
{%- set window_days = var('detractor_follow_up_window_days') -%}
{%- set objection_purposes = var('detractor_follow_up_objection_purposes') -%}

with customers as (
    select * from {{ ref('dim_customers') }}
),

consents as (
    select * from {{ ref('int_consent_current') }}
),

nps_responses as (
    select * from {{ ref('stg_surveys__nps_responses') }}
),

touchpoints as (
    select * from {{ ref('fct_touchpoints') }}
    where source_system = 'surveys' and customer_id is not null
),

objections as (
    select customer_id
    from consents
    group by customer_id
    having
        not bool_or(is_granted)
    {%- if objection_purposes | length > 0 %}
            or bool_or(not is_granted and purpose in ({{ sql_value_list(objection_purposes) }}))
        {%- endif %}
),

latest_answers as (
    select
        touchpoints.customer_id,
        nps_responses.response_id,
        nps_responses.score,
        nps_responses.nps_class,
        nps_responses.touchpoint,
        nps_responses.comment,
        nps_responses.responded_at,
    from touchpoints
    inner join nps_responses on touchpoints.source_record_id = nps_responses.response_id
    inner join customers on touchpoints.customer_id = customers.customer_id
    where nps_responses.responded_at <= customers.profile_as_of
    qualify row_number() over (
        partition by touchpoints.customer_id
        order by nps_responses.responded_at desc, nps_responses.response_id desc
    ) = 1
),

final as (
    select
        customers.customer_id,
        customers.first_name,
        customers.last_name,
        customers.email,
        customers.phone,
        latest_answers.score as nps_score,
        latest_answers.touchpoint as nps_touchpoint,
        latest_answers.comment as nps_comment,
        latest_answers.responded_at as nps_responded_at,
        customers.open_ticket_count,
        'cx_follow_up' as consent_purpose,
        'legitimate_interest' as lawful_basis,
        customers.profile_as_of as audience_as_of,
    from latest_answers
    inner join customers on latest_answers.customer_id = customers.customer_id
    left join objections on latest_answers.customer_id = objections.customer_id
    where
        latest_answers.nps_class = 'detractor'
        and latest_answers.responded_at > customers.profile_as_of - to_days({{ window_days }})
        and objections.customer_id is null
        and not customers.has_erasure_request
        and (customers.email is not null or customers.phone is not null)
)

select * from final
