{#-
    Pseudonymised journey-stage history for BI (relation bi.fct_journey_stage_history): the SCD2 spells with
    customer_key (keyed hash) instead of customer_id and the touchpoint that caused each transition as a
    touchpoint_key that joins bi.fct_touchpoints (the same row_pseudonym). docs/privacy.md.
-#}

with stage_history as not materialized (
    select * from {{ ref('fct_journey_stage_history') }}
),

customer_keys as (
    select
        customer_id,
        {{ pseudonymise('customer_id', 'customer') }} as customer_key
    from stage_history
    where customer_id is not null
    group by customer_id
),

final as (
    select
        {{ row_pseudonym('stage_history.stage_spell_id', 'stage_spell') }} as stage_spell_key,
        customer_keys.customer_key,
        stage_history.spell_number,
        stage_history.journey_stage,
        stage_history.stage_order,
        stage_history.valid_from,
        {{ utc_date('stage_history.valid_from') }} as valid_from_date_utc,
        stage_history.valid_to,
        stage_history.is_current,
        stage_history.previous_stage,
        stage_history.transition_reason,
        {{ row_pseudonym('stage_history.entered_by_touchpoint_id', 'touchpoint') }} as entered_by_touchpoint_key,
        stage_history.entered_by_touchpoint_type,
    from stage_history
    left join customer_keys on stage_history.customer_id = customer_keys.customer_id
)

select * from final
