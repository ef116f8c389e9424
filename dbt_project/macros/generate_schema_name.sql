{#- Models land in the schema named by their folder (staging, intermediate, marts, ...), not
    "<target>_<schema>", so BI tools and the Dagster assets see stable schema names.
    With the var `erasure_resolution` (the erasure step's own identity graph, cx_pipeline/privacy/
    resolution_graph.py) every node lands in "<schema>_erasure" instead, beside the real ones. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set schema = target.schema if custom_schema_name is none else custom_schema_name | trim -%}
    {%- if var('erasure_resolution', false) -%}
        {{ schema }}_erasure
    {%- else -%}
        {{ schema }}
    {%- endif -%}
{%- endmacro %}
