{#-
    Abandoned-cart reminder (purpose email_marketing, lawful basis consent): customers whose open cart
    (marts.dim_customers: never ordered, no order since) was last touched within the last
    `abandoned_cart_window_days` days before `as_of` and at least `abandoned_cart_min_idle_hours` ago, with
    the items still in it. Only customers granting email_marketing now and with an email. docs/privacy.md.
-#}
{%- set window_days = var('abandoned_cart_window_days') -%}
{%- set min_idle_hours = var('abandoned_cart_min_idle_hours') -%}

with customers as (
    select * from {{ ref('dim_customers') }}
),

consents as (
    select * from {{ ref('int_consent_current') }}
    where purpose = 'email_marketing' and is_granted
),

cart_events as (
    select * from {{ ref('stg_shop__cart_events') }}
),

candidates as (
    select customers.*
    from customers
    inner join consents on customers.customer_id = consents.customer_id
    where
        customers.has_open_cart
        and not customers.has_erasure_request
        and customers.email is not null
        and customers.open_cart_last_event_at
        > customers.profile_as_of - to_days({{ window_days }})
        and customers.open_cart_last_event_at
        <= customers.profile_as_of - to_hours({{ min_idle_hours }})
),

-- Net quantity per product (added - removed), at the latest added price and name: the profile's rule.
cart_items as (
    select
        cart_events.cart_id,
        cart_events.product_id,
        arg_max(cart_events.product_name, (cart_events.occurred_at, cart_events.event_id))
        filter (where cart_events.event_type = 'item_added') as product_name,
        sum(
            case cart_events.event_type
                when 'item_added' then coalesce(cart_events.quantity, 1)
                when 'item_removed' then -coalesce(cart_events.quantity, 1)
                else 0
            end
        ) as quantity,
        arg_max(cart_events.unit_price, (cart_events.occurred_at, cart_events.event_id))
        filter (where cart_events.event_type = 'item_added') as unit_price,
    from cart_events
    inner join candidates on cart_events.cart_id = candidates.open_cart_id
    where
        cart_events.product_id is not null
        and cart_events.event_type in ('item_added', 'item_removed')
        and cart_events.occurred_at <= candidates.profile_as_of
    group by cart_events.cart_id, cart_events.product_id
    having sum(
        case cart_events.event_type
            when 'item_added' then coalesce(cart_events.quantity, 1)
            when 'item_removed' then -coalesce(cart_events.quantity, 1)
            else 0
        end
    ) > 0
),

items_per_cart as (
    select
        cart_id,
        to_json(
            list(
                {
                    'product_id': product_id,
                    'product_name': product_name,
                    'quantity': quantity,
                    'unit_price': unit_price
                }
                order by product_id
            )
        ) as items,
    from cart_items
    group by cart_id
),

final as (
    select
        candidates.customer_id,
        candidates.email,
        candidates.first_name,
        candidates.open_cart_id as cart_id,
        candidates.open_cart_last_event_at as cart_last_activity_at,
        candidates.open_cart_item_count as cart_item_count,
        candidates.open_cart_value as cart_value,
        cast(items_per_cart.items as varchar) as cart_items,
        'email_marketing' as consent_purpose,
        candidates.profile_as_of as audience_as_of,
    from candidates
    inner join items_per_cart on candidates.open_cart_id = items_per_cart.cart_id
)

select * from final
