{#-
    Helpers for the touchpoint, journey and profile models (docs/journey.md, docs/profile.md).
-#}

{#-
    The moment the rules are evaluated at, as a SQL expression. The var `as_of` (an ISO timestamp, UTC)
    pins it; left null it is the latest event time in `fallback_relation`, so a rebuild of the same data
    gives the same answer (never the wall clock).
-#}
{% macro journey_as_of(fallback_relation, fallback_column='occurred_at') -%}
    {%- set as_of = var('as_of', none) -%}
    {%- if as_of is none or (as_of | string | trim) in ('', 'none', 'None', 'null') -%}
        (select max({{ fallback_column }}) from {{ fallback_relation }})
    {%- else -%}
        cast('{{ as_of | string | trim }}' as timestamptz)
    {%- endif -%}
{%- endmacro %}


{#- A list var rendered as the inside of an SQL `in (...)`: 'a', 'b'. Quotes in values are doubled. -#}
{% macro sql_value_list(values) -%}
    {%- if values is string -%}{%- set values = [values] -%}{%- endif -%}
    {%- if values | length == 0 -%}
        {{ exceptions.raise_compiler_error("sql_value_list needs at least one value") }}
    {%- endif -%}
    {%- for value in values -%}
        '{{ value | string | replace("'", "''") }}'{{ ', ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}


{#- The host of a URL, lower-cased and without a leading `www.`; null when there is none. -#}
{% macro url_host(column) -%}
    nullif(regexp_extract(lower({{ column }}), '^[a-z][a-z0-9+.-]*://(?:www[.])?([^/:?#]+)', 1), '')
{%- endmacro %}


{#-
    A free-text source label (e.g. a consent's `source`) mapped onto the touchpoint channels
    web | app | store | email | phone | chat | social; anything unrecognised is `web`. An unsubscribe link
    lives in an email; a support request is handled by email.
-#}
{% macro channel_from_label(column) -%}
    case
        when {{ column }} is null then 'web'
        when regexp_matches(lower({{ column }}), '(^|[^a-z])(app|ios|android|mobile_app)([^a-z]|$)') then 'app'
        when regexp_matches(lower({{ column }}), 'store|shop_till|pos|till|in_person') then 'store'
        when regexp_matches(lower({{ column }}), 'e-?mail|newsletter|unsubscribe|support') then 'email'
        when regexp_matches(lower({{ column }}), 'phone|call|sms|text') then 'phone'
        when regexp_matches(lower({{ column }}), 'chat') then 'chat'
        when regexp_matches(lower({{ column }}), 'social|facebook|instagram|twitter|tiktok') then 'social'
        else 'web'
    end
{%- endmacro %}
