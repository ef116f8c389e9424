{#-
    The consent-gated profile marketing tools may load: only customers who grant email_marketing or
    personalization now (as of `as_of`), without an erasure request, and only the fields a marketer needs.
    Fields tied to one purpose are null unless that purpose is granted: the email needs email_marketing, the
    product lists need personalization. No phone, last name, address or source-system ids. docs/privacy.md.
-#}

with customers as (
    select * from {{ ref('dim_customers') }}
),

consents as (
    select * from {{ ref('int_consent_current') }}
),

granted as (
    select
        customer_id,
        bool_or(purpose = 'email_marketing' and is_granted) as email_marketing_granted,
        bool_or(purpose = 'personalization' and is_granted) as personalization_granted,
    from consents
    where purpose in ('email_marketing', 'personalization')
    group by customer_id
),

final as (
    select
        customers.customer_id,
        case when granted.email_marketing_granted then customers.email end as email,
        customers.first_name,
        customers.country,
        customers.journey_stage,
        customers.journey_stage_since,
        customers.order_count,
        customers.first_order_at,
        customers.last_order_at,
        customers.net_revenue,
        customers.average_order_value,
        customers.has_open_cart,
        case
            when granted.personalization_granted then customers.products_viewed
        end as products_viewed,
        case
            when granted.personalization_granted then customers.products_purchased
        end as products_purchased,
        granted.email_marketing_granted,
        granted.personalization_granted,
        customers.profile_as_of,
    from customers
    inner join granted on customers.customer_id = granted.customer_id
    where
        (granted.email_marketing_granted or granted.personalization_granted)
        and not customers.has_erasure_request
)

select * from final
