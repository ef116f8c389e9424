{#-
    SCD2 journey-stage history: one row per customer per stage spell (rules: docs/journey.md).

    Incremental (docs/operations.md, "Incremental dbt models"): the spells are derived from the transitions
    of every customer (int_journey_stage_transitions_derived, rebuilt on every run: a few rows per customer)
    and compared with the table; only the customers with a spell added, removed or changed are rewritten
    (delete+insert on customer_id). A customer id that has no spell left (retired by a merge, erased) is
    deleted by the post-hook. `--full-refresh` rebuilds everything.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='customer_id',
        on_schema_change='fail',
        post_hook=[
            "{{ incremental_delete_missing('customer_id', ref('int_journey_stage_transitions_derived')) }}",
        ],
    )
}}
{%- set compared_columns = [
    'customer_id', 'spell_number', 'journey_stage', 'stage_order', 'valid_from', 'valid_to', 'is_current',
    'previous_stage', 'transition_reason', 'entered_by_touchpoint_id', 'entered_by_touchpoint_type',
] -%}

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

history as (
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
),

{%- if is_incremental() %}

built as (
    select * from {{ this }}
),

-- Customers with a spell that is new, gone or different from the one built (a merge, a late event, a
-- lapse reached because `as_of` moved, retroactive stitching): all their spells are rewritten.
changed_customers as (
    select distinct coalesce(history.customer_id, built.customer_id) as customer_id
    from history
    full outer join built on history.stage_spell_id = built.stage_spell_id
    where
        history.stage_spell_id is null
        or built.stage_spell_id is null
        or {{ columns_differ('history', 'built', compared_columns) }}
),
{%- endif %}

final as (
    select history.*
    from history
    {%- if is_incremental() %}
        where history.customer_id in (select changed_customers.customer_id from changed_customers)
    {%- endif %}
)

select * from final
