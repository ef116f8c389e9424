{#-
    Several row rules checked in one read of the model: not null, unique and accepted values, column by
    column. It replaces the one-test-per-rule generics on models that are expensive to read (a staging view
    over every Segment event re-applies the suppression list on each read: four reads of it cost ~3 min at
    1M customers). Fails with one row per broken rule: rule, column, failing rows (for `unique`: the rows
    beyond the first of each repeated value).

        data_tests:
          - row_rules:
              arguments:
                not_null: [message_id, event_type]
                unique: [message_id]
                accepted_values: {event_type: [page, track, identify]}
-#}
{% test row_rules(model, not_null=[], unique=[], accepted_values={}) %}
    {%- if not (not_null or unique or accepted_values) -%}
        {{ exceptions.raise_compiler_error("row_rules needs at least one of not_null, unique, accepted_values") }}
    {%- endif -%}
    {%- set checks = [] -%}
    {%- for column in not_null -%}
        {%- do checks.append(("not_null", column, "count(*) filter (where " ~ adapter.quote(column) ~ " is null)")) -%}
    {%- endfor -%}
    {%- for column, values in accepted_values.items() -%}
        {%- do checks.append((
            "accepted_values",
            column,
            "count(*) filter (where " ~ adapter.quote(column) ~ " not in (" ~ sql_value_list(values) ~ "))",
        )) -%}
    {%- endfor -%}
    {%- for column in unique -%}
        {#- count(distinct) ignores nulls, so subtract the non-null rows only: the values held more than once. -#}
        {%- do checks.append((
            "unique",
            column,
            "count(" ~ adapter.quote(column) ~ ") - count(distinct " ~ adapter.quote(column) ~ ")",
        )) -%}
    {%- endfor %}

with counted as materialized (
    select
    {%- for rule, column, expression in checks %}
        {{ expression }} as check_{{ loop.index }},
    {%- endfor %}
    from {{ model }}
),

rules as (
    {%- for rule, column, expression in checks %}
    select
        '{{ rule }}' as rule,
        '{{ column }}' as column_name,
        check_{{ loop.index }} as failing_rows,
    from counted
    {{- "\n    union all" if not loop.last }}
    {%- endfor %}
)

select * from rules
where failing_rows > 0
{% endtest %}
