{#- SCD2 journey-stage history: one row per customer per stage spell (rules: docs/journey.md). -#}

with transitions as (
    select * from {{ ref('int_journey_stage_transitions_derived') }}
),

stages as (
    select * from {{ ref('journey_stages') }}
),

spells as (
    select
        transitions.*,
        lead(transitions.entered_at) over customer_spells as next_entered_at,
        row_number() over customer_spells as spell_number,
    from transitions
    window customer_spells as (partition by transitions.customer_id order by transitions.entered_at)
),

final as (
    select
        spells.customer_id || ':' || cast(spells.spell_number as varchar) as stage_spell_id,
        spells.customer_id,
        spells.spell_number,
        spells.journey_stage,
        cast(stages.stage_order as integer) as stage_order,
        spells.entered_at as valid_from,
        spells.next_entered_at as valid_to,
        spells.next_entered_at is null as is_current,
        spells.previous_stage,
        spells.transition_reason,
        spells.entered_by_touchpoint_id,
        spells.entered_by_touchpoint_type,
    from spells
    inner join stages on spells.journey_stage = stages.stage
)

select * from final
