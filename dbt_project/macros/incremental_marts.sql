{#-
    Incremental builds of the event-grain marts (docs/operations.md, "Incremental dbt models"):
    fct_journey_stage_history and fct_touchpoints. Identity and attribution are re-resolved in full on every
    run upstream (int_identifiers_resolved, int_touchpoints_attributed); these marts then rewrite only the
    rows of the customers and touchpoints that changed since their own last build, found by comparing their
    inputs with the table itself (`{{ this }}`), so a skipped or failed run is caught up by the next one.
-#}


{#-
    A SQL condition: true when any of `columns` differs between the rows `left` and `right` (null-safe).
-#}
{% macro columns_differ(left, right, columns) -%}
    (
    {%- for column in columns %}
        {{ 'or ' if not loop.first }}{{ left }}.{{ column }} is distinct from {{ right }}.{{ column }}
    {%- endfor %}
    )
{%- endmacro %}


{#-
    Post-hook of an incremental mart: delete the rows whose `key` no longer occurs in `source_relation` (a
    touchpoint withdrawn upstream, a customer id retired by a merge). delete+insert only replaces the keys it
    inserts; this removes the ones that have nothing left to insert. Empty on a full build.
-#}
{% macro incremental_delete_missing(key, source_relation) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ key }} not in (
            select source_keys.{{ key }}
            from {{ source_relation }} as source_keys
            where source_keys.{{ key }} is not null
        )
    {%- endif -%}
{%- endmacro %}


{#-
    Post-hook of bi_fct_touchpoints: delete the rows whose touchpoint is no longer in marts.fct_touchpoints
    (the pseudonym of every touchpoint id is recomputed: one SHA-256 each, no write). Empty on a full build.
-#}
{% macro bi_touchpoints_delete_missing() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where touchpoint_key not in (
            select {{ row_pseudonym('touchpoints.touchpoint_id', 'touchpoint') }}
            from {{ ref('fct_touchpoints') }} as touchpoints
        )
    {%- endif -%}
{%- endmacro %}
