{#-
    Privacy helpers (docs/privacy.md). Keyed hashes come from cx360_keyed_hash(value): HMAC-SHA256 as a DuckDB
    macro in plain SQL whose key pads are connection variables, set on every dbt connection and cursor by
    the dbt-duckdb plugin cx_pipeline.privacy.dbt_plugin (profiles.yml). Compiled SQL never contains the key.
    HMAC costs ~0.5 M values/s on 2 threads: hash each distinct value once, never once per row of a big table.
-#}

{#- The keyed hash (64 hex characters) of an expression; null stays null. -#}
{% macro keyed_hash(expression) -%}
    cx360_keyed_hash(cast({{ expression }} as varchar))
{%- endmacro %}


{#-
    A pseudonym for the bi schema: the keyed hash of `<domain>:<value>`. The domain keeps pseudonyms of
    different kinds (customer, order) and the suppression list's hashes (bare values) apart, so equal strings
    in two roles never share a pseudonym. Use it on distinct values (a CTE joined back), not per row.
    cx_pipeline/privacy/erasure.py recomputes customer pseudonyms the same way to delete bi rows.
-#}
{% macro pseudonymise(expression, domain) -%}
    cx360_keyed_hash('{{ domain }}:' || cast({{ expression }} as varchar))
{%- endmacro %}


{#-
    A pseudonym for a row-grain id (touchpoint, stage spell, consent version) at one SHA-256 per row instead of
    an HMAC (two SHA-256 plus pad handling): sha256(secret || utf8(value)), where the 32-byte secret is the
    HMAC of the constant `bi-row-pseudonym-secret:<domain>` under the key. The secret is computed once per
    query (the scalar subquery; inline, DuckDB would recompute it per row because error() in the keyed hash
    blocks constant folding), never stored, and cannot be computed without the key, so neither can
    any pseudonym: without the key one cannot test a guessed id against a pseudonym, nor join back to marts.
    Why not sha256(customer_key || id): customer_key sits in the same bi row, so anyone holding an id
    (marts, source systems) could compute it. SHA-256's length extension only yields digests of `secret ||
    value || padding || suffix`, i.e. of ids that contain SHA-256 padding bytes, which none do; it gives no
    way to test or link real ids. Null stays null.
-#}
{% macro row_pseudonym(expression, domain) -%}
    sha256(
        (select unhex(cx360_keyed_hash('bi-row-pseudonym-secret:{{ domain }}')))
        || encode(cast({{ expression }} as varchar))
    )
{%- endmacro %}


{#-
    Filter for staging models: true when none of `columns` (normalised identifier expressions of `relation`:
    trimmed and lower-cased emails, E.164 phones, trimmed ids) is on the suppression list
    privacy.suppressed_identifiers (keyed hashes of the identifiers of erased people). Use it on the
    normalised columns of the model's last CTE:

        select * from final
        where {{ exclude_suppressed(['email', 'user_id']) }}

    Per column: the DISTINCT values of the column are hashed once each, those on the list are kept (a tiny
    set of plaintext values), and the rows are anti-joined on plaintext. With an empty list nothing is
    hashed: the hash sits behind `case when exists (<list>)`, so that holds whatever join order DuckDB picks
    (without the guard it depended on the optimizer's size estimate of the list: a list whose rows were just
    deleted still looked non-empty). tests/test_privacy_suppression.py shows it on a connection without the
    key, where computing one hash would raise.
    `relation` is read once more per column. Tell DuckDB how (left alone, it materializes the root CTE with
    every source column, which costs more than the filter): declare `final as materialized` when the chain
    has a window (the window then runs once), or every CTE `as not materialized` when it is a plain scan
    (each extra read then scans one column; stg_segment__event_deliveries). Measured cost: docs/privacy.md.
-#}
{% macro exclude_suppressed(columns, relation='final') -%}
    {%- if columns is string -%}{%- set columns = [columns] -%}{%- endif -%}
    {%- if columns | length == 0 -%}
        {{ exceptions.raise_compiler_error("exclude_suppressed needs at least one column") }}
    {%- endif -%}
    {#- The erasure step's own identity graph (var `erasure_resolution`, built in "<schema>_erasure" and
        dropped at once) must see erased people's records: their links to identifiers that arrived later are
        what it looks for (docs/privacy.md, "Whatever order the data arrives in"). -#}
    {%- if var('erasure_resolution', false) %}
    true
    {%- else -%}
    {#- A unit test mocks every source it sees; the list is not the unit under test, so it reads the table
        itself (created on every dbt connection by the privacy plugin) and needs no fixture. -#}
    {%- if model is mapping and model.get('resource_type') == 'unit_test' -%}
        {%- set suppression_list = 'privacy.suppressed_identifiers' -%}
    {%- else -%}
        {%- set suppression_list = source('cx360_privacy', 'suppressed_identifiers') -%}
    {%- endif -%}
    {%- for column in columns %}
    {{ 'and ' if not loop.first }}({{ column }} is null or {{ column }} not in (
        select present.value
        from (
            select distinct cast({{ column }} as varchar) as value
            from {{ relation }}
            where {{ column }} is not null
        ) as present
        where
            (case when exists (select 1 from {{ suppression_list }}) then {{ keyed_hash('present.value') }} end)
            in (select suppressed.identifier_hash from {{ suppression_list }} as suppressed)
    ))
    {%- endfor %}
    {%- endif %}
{%- endmacro %}
