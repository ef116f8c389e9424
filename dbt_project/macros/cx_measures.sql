{#-
    Customer-experience measure formulas, written once (definitions: docs/cx_measures.md).

    Each measure has a "from counts" form, which rolls up correctly from the component counts the marts
    keep (promoters, detractors, satisfied answers, score sums, responses), and an aggregate form over raw
    scores built on it. A score over zero answers is null, never 0.
-#}

{#- NPS, -100..100: % promoters (9-10) minus % detractors (0-6) among all 0-10 answers. -#}
{% macro cx_nps_from_counts(promoters, detractors, responses) -%}
    round(100.0 * ({{ promoters }} - {{ detractors }}) / nullif({{ responses }}, 0), 2)
{%- endmacro %}

{% macro cx_nps(score) -%}
    {{ cx_nps_from_counts(cx_nps_promoters(score), cx_nps_detractors(score), 'count(' ~ score ~ ')') }}
{%- endmacro %}

{% macro cx_nps_promoters(score) -%}
    count(case when {{ score }} >= 9 then 1 end)
{%- endmacro %}

{% macro cx_nps_passives(score) -%}
    count(case when {{ score }} in (7, 8) then 1 end)
{%- endmacro %}

{% macro cx_nps_detractors(score) -%}
    count(case when {{ score }} <= 6 then 1 end)
{%- endmacro %}


{#- CSAT, 0..100: share (%) of satisfied answers, 4 or 5 on the 1-5 scale. -#}
{% macro cx_csat_from_counts(satisfied, responses) -%}
    round(100.0 * {{ satisfied }} / nullif({{ responses }}, 0), 2)
{%- endmacro %}

{% macro cx_csat(score) -%}
    {{ cx_csat_from_counts(cx_csat_satisfied(score), 'count(' ~ score ~ ')') }}
{%- endmacro %}

{% macro cx_csat_satisfied(score) -%}
    count(case when {{ score }} >= 4 then 1 end)
{%- endmacro %}


{#- CES, 1..7: mean Customer Effort Score as answered. The contract's scale (docs/sources.md): 1 = very easy,
    7 = very difficult, so a lower CES is better. -#}
{% macro cx_ces_from_sum(score_sum, responses) -%}
    round(1.0 * {{ score_sum }} / nullif({{ responses }}, 0), 3)
{%- endmacro %}

{% macro cx_ces(score) -%}
    {{ cx_ces_from_sum('sum(' ~ score ~ ')', 'count(' ~ score ~ ')') }}
{%- endmacro %}

{#- A high-effort contact: CES answered 5-7 (difficult to very difficult on the contract's 1-7 scale). -#}
{% macro cx_is_high_effort(score) -%}
    ({{ score }} >= 5)
{%- endmacro %}


{#- True when a score rests on fewer answers than the var `cx_low_sample_threshold` (default 30). -#}
{% macro cx_is_low_sample(responses) -%}
    ({{ responses }} < {{ var('cx_low_sample_threshold', 30) | int }})
{%- endmacro %}


{#- An expression clamped into [0, 1]; null stays null. -#}
{% macro cx_clamp01(expression) -%}
    greatest(0.0, least(1.0, {{ expression }}))
{%- endmacro %}
