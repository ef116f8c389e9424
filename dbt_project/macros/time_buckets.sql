{#- Calendar buckets in UTC, whatever the session's time zone: a BI tool that truncates a TIMESTAMPTZ itself
    follows its own client's zone (October's revenue read 10,702.89 in UTC and 10,525.00 in Los Angeles).
    The bi tables carry these columns beside each timestamp analysts bucket by. -#}
{% macro utc_date(timestamp) -%}
    cast(timezone('UTC', {{ timestamp }}) as date)
{%- endmacro %}

{% macro utc_month(timestamp) -%}
    cast(date_trunc('month', timezone('UTC', {{ timestamp }})) as date)
{%- endmacro %}
