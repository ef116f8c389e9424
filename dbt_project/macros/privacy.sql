{#-
    Privacy helpers (docs/privacy.md). Keyed hashes come from the SQL function cx360_keyed_hash(varchar),
    registered on every connection by the dbt-duckdb plugin cx_pipeline.privacy.dbt_plugin (profiles.yml):
    HMAC-SHA256 with a key kept outside the code, so compiled SQL never contains the key.
-#}

{#- The keyed hash (64 hex characters) of an expression; null stays null. -#}
{% macro keyed_hash(expression) -%}
    cx360_keyed_hash(cast({{ expression }} as varchar))
{%- endmacro %}


{#-
    A pseudonym for the bi schema: the keyed hash of `<domain>:<value>`. The domain keeps pseudonyms of
    different kinds (customer, order, touchpoint) and the suppression list's hashes (bare values) apart, so
    equal strings in two roles never share a pseudonym.
-#}
{% macro pseudonymise(expression, domain) -%}
    cx360_keyed_hash('{{ domain }}:' || cast({{ expression }} as varchar))
{%- endmacro %}


{#-
    Filter for staging models: true when none of `columns` (normalised identifier expressions: trimmed and
    lower-cased emails, E.164 phones, trimmed ids) is on the suppression list privacy.suppressed_identifiers
    (keyed hashes of the identifiers of erased people). Use it on the normalised columns, after
    normalisation, e.g.

        select * from final
        where {{ exclude_suppressed(['email', 'user_id']) }}

    One anti-join per column. With an empty list DuckDB skips the hashing entirely; otherwise it costs one
    keyed hash per row and column (about 0.5 M/s).
-#}
{% macro exclude_suppressed(columns) -%}
    {%- if columns is string -%}{%- set columns = [columns] -%}{%- endif -%}
    {%- if columns | length == 0 -%}
        {{ exceptions.raise_compiler_error("exclude_suppressed needs at least one column") }}
    {%- endif -%}
    {#- A unit test mocks every source it sees; the list is not the unit under test, so it reads the table
        itself (created by the on-run-start hook) and needs no fixture. -#}
    {%- if model is mapping and model.get('resource_type') == 'unit_test' -%}
        {%- set suppression_list = 'privacy.suppressed_identifiers' -%}
    {%- else -%}
        {%- set suppression_list = source('cx360_privacy', 'suppressed_identifiers') -%}
    {%- endif -%}
    {%- for column in columns %}
    {{ 'and ' if not loop.first }}not exists (
        select 1 from {{ suppression_list }} as suppressed
        where suppressed.identifier_hash = cx360_keyed_hash(cast({{ column }} as varchar))
    )
    {%- endfor %}
{%- endmacro %}


{#-
    The tables the Python privacy assets own (cx_pipeline/privacy/erasure.py creates the same ones), created
    empty when absent so staging views compile on a fresh warehouse. Run from `on-run-start`.
-#}
{% macro create_privacy_tables() -%}
    create schema if not exists privacy;
    create table if not exists privacy.suppressed_identifiers (
        identifier_hash varchar not null,
        identifier_type varchar not null,
        request_id varchar,
        suppressed_at timestamptz not null
    );
    create table if not exists privacy.erasure_log (
        request_id varchar not null,
        requested_at timestamptz,
        executed_at timestamptz not null,
        run_id varchar,
        customers_resolved bigint not null,
        identifiers_suppressed bigint not null,
        rows_removed bigint not null
    );
    create table if not exists privacy.erasure_audit (
        request_id varchar not null,
        executed_at timestamptz not null,
        run_id varchar,
        table_name varchar not null,
        rows_removed bigint not null
    );
{%- endmacro %}
