{#-
    The customer 360 profile: one row per resolved customer. The heavy per-customer work happens in the
    int_customer_* models; this joins them once on customer_id. Field guide: docs/profile.md.
-#}

with customers as (
    select distinct customer_id
    from {{ ref('int_identifiers_resolved') }}
    where customer_id is not null
),

contacts as (
    select * from {{ ref('int_customer_contacts_survived') }}
),

identifiers as (
    select * from {{ ref('int_customer_identifiers_aggregated') }}
),

current_stages as (
    select * from {{ ref('fct_journey_stage_history') }}
    where is_current
),

touchpoints as (
    select * from {{ ref('int_customer_touchpoints_aggregated') }}
),

products as (
    select * from {{ ref('int_customer_products_aggregated') }}
),

carts as (
    select * from {{ ref('int_customer_carts_aggregated') }}
),

orders as (
    select * from {{ ref('int_customer_orders_aggregated') }}
),

support as (
    select * from {{ ref('int_customer_support_aggregated') }}
),

privacy as (
    select * from {{ ref('int_customer_consents_pivoted') }}
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

rfm as (
    select * from {{ ref('fct_customer_rfm') }}
),

churn_risk as (
    select * from {{ ref('fct_customer_churn_risk') }}
),

survey_measures as (
    select * from {{ ref('int_customer_cx_measures') }}
),

friction as (
    select * from {{ ref('fct_customer_friction') }}
),

final as (
    select
        customers.customer_id,
        -- golden record
        contacts.first_name,
        contacts.last_name,
        contacts.email,
        contacts.phone,
        contacts.city,
        contacts.country,
        contacts.company,
        -- linked identifiers
        coalesce(identifiers.identifier_count, 0) as identifier_count,
        coalesce(identifiers.crm_contact_id_count, 0) as crm_contact_id_count,
        coalesce(identifiers.email_count, 0) as email_count,
        coalesce(identifiers.phone_count, 0) as phone_count,
        coalesce(identifiers.user_id_count, 0) as user_id_count,
        coalesce(identifiers.anonymous_id_count, 0) as anonymous_id_count,
        coalesce(identifiers.crm_contact_ids, []) as crm_contact_ids,
        coalesce(identifiers.emails, []) as emails,
        coalesce(identifiers.phones, []) as phones,
        coalesce(identifiers.user_ids, []) as user_ids,
        coalesce(identifiers.anonymous_ids, []) as anonymous_ids,
        -- journey
        current_stages.journey_stage,
        current_stages.valid_from as journey_stage_since,
        current_stages.entered_by_touchpoint_type as journey_stage_entered_by,
        -- activity
        touchpoints.first_seen_at,
        touchpoints.last_seen_at,
        touchpoints.first_touch_channel,
        touchpoints.first_touch_campaign_source,
        touchpoints.first_touch_campaign_medium,
        touchpoints.first_touch_campaign_name,
        touchpoints.last_touch_channel,
        touchpoints.last_touch_campaign_source,
        touchpoints.last_touch_campaign_medium,
        touchpoints.last_touch_campaign_name,
        coalesce(touchpoints.touchpoint_count, 0) as touchpoint_count,
        coalesce(touchpoints.stitched_touchpoint_count, 0) as stitched_touchpoint_count,
        coalesce(touchpoints.web_touchpoint_count, 0) as web_touchpoint_count,
        coalesce(touchpoints.app_touchpoint_count, 0) as app_touchpoint_count,
        coalesce(touchpoints.store_touchpoint_count, 0) as store_touchpoint_count,
        coalesce(touchpoints.email_touchpoint_count, 0) as email_touchpoint_count,
        coalesce(touchpoints.phone_touchpoint_count, 0) as phone_touchpoint_count,
        coalesce(touchpoints.chat_touchpoint_count, 0) as chat_touchpoint_count,
        coalesce(touchpoints.social_touchpoint_count, 0) as social_touchpoint_count,
        coalesce(touchpoints.distinct_channel_count, 0) as distinct_channel_count,
        -- products
        coalesce(products.products_viewed_count, 0) as products_viewed_count,
        coalesce(products.products_viewed, []) as products_viewed,
        coalesce(products.products_carted_count, 0) as products_carted_count,
        coalesce(products.products_carted, []) as products_carted,
        coalesce(products.products_rejected_count, 0) as products_rejected_count,
        coalesce(products.products_rejected, []) as products_rejected,
        coalesce(products.top_rejection_reasons, []) as top_rejection_reasons,
        coalesce(products.products_purchased_count, 0) as products_purchased_count,
        coalesce(products.products_purchased, []) as products_purchased,
        -- open abandoned cart
        carts.open_cart_id is not null as has_open_cart,
        carts.open_cart_id,
        carts.open_cart_last_event_at,
        coalesce(carts.open_cart_item_count, 0) as open_cart_item_count,
        coalesce(carts.open_cart_value, 0) as open_cart_value,
        -- orders
        coalesce(orders.order_count, 0) as order_count,
        orders.first_order_at,
        orders.last_order_at,
        coalesce(orders.gross_revenue, 0) as gross_revenue,
        coalesce(orders.refunded_amount, 0) as refunded_amount,
        coalesce(orders.net_revenue, 0) as net_revenue,
        orders.average_order_value,
        coalesce(orders.return_count, 0) as return_count,
        coalesce(orders.cancellation_count, 0) as cancellation_count,
        -- support and surveys
        coalesce(support.ticket_count, 0) as ticket_count,
        coalesce(support.open_ticket_count, 0) as open_ticket_count,
        support.median_first_response_minutes,
        support.median_resolution_minutes,
        support.average_csat_score,
        support.average_ces_score,
        coalesce(support.nps_response_count, 0) as nps_response_count,
        support.latest_nps_score,
        support.latest_nps_class,
        support.latest_nps_at,
        -- privacy
        coalesce(privacy.consent_email_marketing, false) as consent_email_marketing,
        coalesce(privacy.consent_sms_marketing, false) as consent_sms_marketing,
        coalesce(privacy.consent_personalization, false) as consent_personalization,
        coalesce(privacy.consent_analytics, false) as consent_analytics,
        coalesce(privacy.consent_third_party_sharing, false) as consent_third_party_sharing,
        privacy.consent_updated_at,
        coalesce(privacy.has_erasure_request, false) as has_erasure_request,
        privacy.erasure_requested_at,
        rfm.recency_score,
        rfm.frequency_score,
        rfm.monetary_score,
        rfm.rfm_cell,
        rfm.rfm_segment,
        rfm.historical_clv,
        churn_risk.churn_risk_score,
        churn_risk.churn_risk_band,
        cast(survey_measures.csat_satisfied_pct as double) as csat_satisfied_pct,
        coalesce(friction.abandoned_carts, 0) as abandoned_cart_count,
        coalesce(friction.recent_friction_events, 0) as recent_friction_event_count,
        as_of.as_of_at as profile_as_of,
    from customers
    cross join as_of
    left join contacts on customers.customer_id = contacts.customer_id
    left join identifiers on customers.customer_id = identifiers.customer_id
    left join current_stages on customers.customer_id = current_stages.customer_id
    left join touchpoints on customers.customer_id = touchpoints.customer_id
    left join products on customers.customer_id = products.customer_id
    left join carts on customers.customer_id = carts.customer_id
    left join orders on customers.customer_id = orders.customer_id
    left join support on customers.customer_id = support.customer_id
    left join privacy on customers.customer_id = privacy.customer_id
    left join rfm on customers.customer_id = rfm.customer_id
    left join churn_risk on customers.customer_id = churn_risk.customer_id
    left join survey_measures on customers.customer_id = survey_measures.customer_id
    left join friction on customers.customer_id = friction.customer_id
)

select * from final
