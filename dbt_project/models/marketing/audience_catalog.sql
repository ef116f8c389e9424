{#-
    One row per audience: the purpose it serves, its lawful basis and the consent rule applied, with the
    moment the rules were evaluated at. The export asset (cx_pipeline/defs/exports.py) copies these into
    each export's manifest.json. docs/privacy.md.
-#}

with customers as (
    select * from {{ ref('dim_customers') }}
),

audiences as (
    select * from (
        values
        (
            'audience_abandoned_cart',
            'email_marketing',
            'consent',
            'email_marketing granted now (latest consent event per customer is a grant); no erasure request',
            'Open cart last touched within {{ var("abandoned_cart_window_days") }} days, no order since'
        ),
        (
            'audience_viewed_not_bought',
            'personalization',
            'consent',
            'personalization granted now (latest consent event per customer is a grant); no erasure request',
            'Active on >= {{ var("viewed_not_bought_min_visit_days") }} days within '
            || '{{ var("viewed_not_bought_window_days") }} days; products viewed and never bought'
        ),
        (
            'audience_win_back',
            'email_marketing',
            'consent',
            'email_marketing granted now (latest consent event per customer is a grant); no erasure request',
            'Loyal earlier, now lapsed or inactive for {{ var("win_back_at_risk_after_days") }} days'
        ),
        (
            'audience_detractor_follow_up',
            'cx_follow_up',
            'legitimate_interest',
            'No consent needed; excluded: every recorded purpose denied/withdrawn (refused all contact), '
            || 'a denied/withdrawn purpose listed in detractor_follow_up_objection_purposes, or an erasure request',
            'Latest NPS answer is a detractor, within {{ var("detractor_follow_up_window_days") }} days'
        ),
        (
            'suppression_list',
            'suppression',
            'legal_obligation',
            'None: the list of who must not be contacted (GDPR Art. 17 and 21), as keyed hashes',
            'Every identifier of an erased person; the emails and phones of everyone whose email or SMS '
            || 'marketing consent is denied or withdrawn now'
        )
    ) as audiences (audience_name, purpose, lawful_basis, consent_rule, selection_rule)  -- noqa: LT02, AL05
),

as_of as (
    select max(profile_as_of) as as_of_at from customers
),

final as (
    select
        audiences.audience_name,
        audiences.purpose,
        audiences.lawful_basis,
        audiences.consent_rule,
        audiences.selection_rule,
        as_of.as_of_at as audience_as_of,
        '{{ invocation_id }}' as dbt_invocation_id,
        cast('{{ run_started_at.isoformat() }}' as timestamptz) as built_at,
    from audiences
    cross join as_of
)

select * from final
