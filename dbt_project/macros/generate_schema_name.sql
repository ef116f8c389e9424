{#- Models land in the schema named by their folder (staging, intermediate, marts, ...), not
    "<target>_<schema>", so BI tools and the Dagster assets see stable schema names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
