{#-
    Every identifier found in any source, once: (identifier_type, identifier_value) with when it was first
    and last seen, in which systems, on how many records, and whether the blocklist seed
    (seeds/identifier_blocklist.csv) rules it out. node_id is a dense integer key for the graph algorithms.

    Blocklist matching: `exact` and `prefix` compare case-insensitively; `regex` is RE2 as written (use
    `(?i)` to ignore case); identifier_type `*` applies to every type. An unknown match_type matches nothing
    (the seed's accepted_values test flags it). Regexes are first combined into one
    constant pattern per type (DuckDB compiles a pattern that comes from a column once per row, which is
    far too slow for millions of values), and only the few values that match are tested pattern by pattern
    to record which one matched.
-#}
{%- set identifier_types = ['crm_contact_id', 'email', 'phone', 'user_id', 'anonymous_id'] %}
{#- The source_system values of int_identity_observations, sorted (a flag per system aggregates ~5x faster
    than list(distinct ...)); a system missing here would be missing from source_systems. -#}
{%- set source_systems = ['crm', 'privacy', 'segment', 'shop', 'support', 'surveys'] %}

with observations as (
    select * from {{ ref('int_identity_observations') }}
),

seed as (
    select * from {{ ref('identifier_blocklist') }}
),

identifier_types as (
    select unnest([{{ "'" ~ identifier_types | join("', '") ~ "'" }}]) as identifier_type
),

-- One row per (identifier type, pattern): a `*` row is repeated for every type.
blocklist as (
    select
        identifier_types.identifier_type,
        seed.pattern,
        lower(seed.pattern) as pattern_lower,
        lower(trim(seed.match_type)) as match_type,
        seed.reason
    from seed
    inner join identifier_types
        on lower(trim(seed.identifier_type)) in (identifier_types.identifier_type, '*')
    where nullif(trim(seed.pattern), '') is not null
),

occurrences as (
    {%- for identifier_type in identifier_types %}
        select
            '{{ identifier_type }}' as identifier_type,
            {{ identifier_type }} as identifier_value,
            source_system,
            first_seen_at,
            last_seen_at,
            record_count
        from observations
        where {{ identifier_type }} is not null
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

identifiers as (
    select
        identifier_type,
        identifier_value,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        -- list_distinct drops the nulls of the systems it was not seen in
        list_sort(list_distinct([
            {%- for source_system in source_systems %}
                case when bool_or(source_system = '{{ source_system }}') then '{{ source_system }}' end
                {{- "," if not loop.last }}
            {%- endfor %}
        ])) as source_systems,
        sum(record_count) as record_count
    from occurrences
    group by identifier_type, identifier_value
),

regex_candidates as (
    {%- for identifier_type in identifier_types %}
        select
            identifier_type,
            identifier_value
        from identifiers
        where
            identifier_type = '{{ identifier_type }}'
            and regexp_matches(
                identifier_value,
                (
                    select string_agg('(?:' || blocklist.pattern || ')', '|')
                    from blocklist
                    where blocklist.match_type = 'regex' and blocklist.identifier_type = '{{ identifier_type }}'
                )
            )
        {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

blocklist_matches as (
    select
        identifiers.identifier_type,
        identifiers.identifier_value,
        blocklist.match_type,
        blocklist.pattern,
        blocklist.reason
    from identifiers
    inner join blocklist
        on
            identifiers.identifier_type = blocklist.identifier_type
            and lower(identifiers.identifier_value) = blocklist.pattern_lower
    where blocklist.match_type = 'exact'

    union all

    select
        identifiers.identifier_type,
        identifiers.identifier_value,
        blocklist.match_type,
        blocklist.pattern,
        blocklist.reason
    from identifiers
    inner join blocklist on identifiers.identifier_type = blocklist.identifier_type
    where
        blocklist.match_type = 'prefix'
        and starts_with(lower(identifiers.identifier_value), blocklist.pattern_lower)

    union all

    select
        regex_candidates.identifier_type,
        regex_candidates.identifier_value,
        blocklist.match_type,
        blocklist.pattern,
        blocklist.reason
    from regex_candidates
    inner join blocklist on regex_candidates.identifier_type = blocklist.identifier_type
    where
        blocklist.match_type = 'regex'
        and regexp_matches(regex_candidates.identifier_value, blocklist.pattern)
),

first_match as (
    select
        identifier_type,
        identifier_value,
        match_type || ':' || pattern as blocklist_rule,
        reason as blocklist_reason
    from blocklist_matches
    qualify row_number() over (
        partition by identifier_type, identifier_value
        order by case match_type when 'exact' then 1 when 'prefix' then 2 else 3 end, pattern
    ) = 1
),

final as (
    select
        row_number() over (order by identifiers.identifier_type, identifiers.identifier_value) as node_id,
        identifiers.identifier_type,
        identifiers.identifier_value,
        identifiers.first_seen_at,
        identifiers.last_seen_at,
        identifiers.source_systems,
        identifiers.record_count,
        first_match.blocklist_rule is not null as is_blocklisted,
        first_match.blocklist_rule,
        first_match.blocklist_reason
    from identifiers
    left join first_match
        on
            identifiers.identifier_type = first_match.identifier_type
            and identifiers.identifier_value = first_match.identifier_value
)

select * from final
