{#-
    Pseudonymised journey-stage history for BI (relation bi.fct_journey_stage_history): the SCD2 spells with
    customer_key (keyed hash) instead of customer_id and the touchpoint that caused each transition as a
    touchpoint_key that joins bi.fct_touchpoints. docs/privacy.md.
-#}

with stage_history as (
    select * from {{ ref('fct_journey_stage_history') }}
),

final as (
    select
        {{ pseudonymise('stage_spell_id', 'stage_spell') }} as stage_spell_key,
        {{ pseudonymise('customer_id', 'customer') }} as customer_key,
        spell_number,
        journey_stage,
        stage_order,
        valid_from,
        valid_to,
        is_current,
        previous_stage,
        transition_reason,
        {{ pseudonymise('entered_by_touchpoint_id', 'touchpoint') }} as entered_by_touchpoint_key,
        entered_by_touchpoint_type,
    from stage_history
)

select * from final
