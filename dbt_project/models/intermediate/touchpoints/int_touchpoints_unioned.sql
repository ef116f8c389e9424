{#-
    Every interaction from every source, one row each, in one shape: what happened, when, where, and the
    identifiers the record carried (attribution to a customer happens once, in int_touchpoints_attributed).
    touchpoint_id = '<source_system>:<source record id>' is stable across runs. Rules: docs/journey.md.

    Incremental (docs/operations.md, "Incremental dbt models"): a build reads only the records of the landing
    files not built yet (within `touchpoints_lookback_hours` of the newest one built) and replaces their rows
    (delete+insert on touchpoint_id). Records are placed by their own time, so a late event lands on its day.
    Hooks (macros/incremental_touchpoints.sql) rebuild after a replaced landing file and withdraw rows a new
    record made obsolete. The first build and `--full-refresh` read everything.
-#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='touchpoint_id',
        pre_hook="{{ touchpoints_rebuild_if_needed() }}",
        post_hook=[
            "{{ touchpoints_withdraw_segment_copies() }}",
            "{{ touchpoints_withdraw_stale_crm_updates() }}",
        ],
    )
}}
{%- set app_device_types = var('app_device_types') -%}
{%- set mirrored_events = ['Product Added', 'Product Removed', 'Checkout Started', 'Order Completed'] -%}

with
{%- if is_incremental() %}

-- The landing files whose records are not built yet (macros/incremental_touchpoints.sql).
new_loads as (
    {{ touchpoints_unbuilt_loads() }}
),

{%- endif %}

segment_deliveries as (
    select * from {{ ref('stg_segment__event_deliveries') }}
    {%- if is_incremental() %}
        where _loaded_at in (select loaded_at from new_loads)
    {%- endif %}
),
{%- if is_incremental() %}

-- Those of the new messages built already, with the load of the delivery that was built (`in`, so the
-- hash table holds the new messages, not every message built).
segment_built as (
    select
        touchpoint_id,
        _loaded_at,
    from {{ this }}
    where
        source_system = 'segment'
        and touchpoint_id in (select 'segment:' || segment_deliveries.message_id from segment_deliveries)
),
{%- endif %}

-- One row per messageId without ranking every message: the ingestion flags each re-delivery
-- (`_is_duplicate`, filtered by the deliveries view) and blocks a load that leaves two unflagged rows with
-- one key; the `unique` tests on stg_segment__event_deliveries.message_id and on touchpoint_id check it
-- again. stg_segment__events' row_number belt over every message was most of this model's memory (3.8 ->
-- 1.6 GB RSS at 100k customers) and would not fit the memory limit at 1M. A message built from an earlier
-- delivery keeps it.
segment_events as (
    select segment_deliveries.*
    from segment_deliveries
    {%- if is_incremental() %}
        left join segment_built
            on
                'segment:' || segment_deliveries.message_id = segment_built.touchpoint_id
                and segment_built._loaded_at < segment_deliveries._loaded_at
        where segment_built.touchpoint_id is null
    {%- endif %}
),

-- Every cart event: the shop's carts and orders decide which Segment events are copies.
cart_events as (
    select * from {{ ref('stg_shop__cart_events') }}
),

cart_events_loaded as (
    select * from cart_events
    {%- if is_incremental() %}
        where _loaded_at in (select loaded_at from new_loads)
    {%- endif %}
),

-- The channel of each order (and cart), to place returns and cancellations where the purchase happened.
order_channels as (
    select
        order_id,
        min(channel) as channel,
    from cart_events
    where order_id is not null
    group by order_id
),

-- Rejections loaded in the window, and those of orders with new cart events (their channel may change).
product_rejections as (
    select * from {{ ref('stg_shop__product_rejections') }}
    {%- if is_incremental() %}
        where
            _loaded_at in (select loaded_at from new_loads)
            or order_id in (select order_id from cart_events_loaded)
    {%- endif %}
),

tickets as (
    select * from {{ ref('stg_support__tickets') }}
    {%- if is_incremental() %}
        where _loaded_at in (select loaded_at from new_loads)
    {%- endif %}
),

nps_responses as (
    select * from {{ ref('stg_surveys__nps_responses') }}
    {%- if is_incremental() %}
        where _loaded_at in (select loaded_at from new_loads)
    {%- endif %}
),

consent_events as (
    select * from {{ ref('stg_privacy__consent_events') }}
    {%- if is_incremental() %}
        where _loaded_at in (select loaded_at from new_loads)
    {%- endif %}
),

-- A contact's latest version: a new one replaces both its `created` and its `updated` row.
crm_contacts as (
    select * from {{ ref('stg_crm__contacts') }}
    {%- if is_incremental() %}
        where _loaded_at in (select loaded_at from new_loads)
    {%- endif %}
),

-- Carts and orders the shop backend recorded: Segment's client-side copies of their events are dropped.
shop_carts as (
    select distinct cart_id from cart_events
    where cart_id is not null
),

shop_orders as (
    select distinct order_id from cart_events
    where event_type = 'order_placed' and order_id is not null
),

-- One pass over the Segment stream: a commerce event whose cart or order the shop recorded is a mirror.
segment_keyed as (
    select
        *,
        case
            when event_type = 'track' and event_name in ({{ sql_value_list(mirrored_events) }})
                then cart_id
        end as mirror_cart_id,
        case
            when event_type = 'track' and event_name in ({{ sql_value_list(mirrored_events) }}) then order_id
        end as mirror_order_id,
        case when event_type = 'page' then {{ url_host('referrer') }} end as referrer_host,
        case when event_type = 'page' then {{ url_host('page_url') }} end as page_host,
    from segment_events
),

segment_classified as (
    select
        segment_keyed.*,
        coalesce(
            segment_keyed.referrer_host is not null
            and segment_keyed.referrer_host is distinct from segment_keyed.page_host,
            false
        ) as has_external_referrer,
    from segment_keyed
    -- `not in`, not an anti join: DuckDB builds the hash table of a `not in` on the subquery (the shop's
    -- keys) whatever it estimates, while an anti join was flipped to build on the Segment stream, every
    -- event with its properties, and ran out of memory (the suppression filters make it look small).
    where
        (
            segment_keyed.mirror_cart_id is null
            or segment_keyed.mirror_cart_id not in (select shop_carts.cart_id from shop_carts)
        )
        and (
            segment_keyed.mirror_order_id is null
            or segment_keyed.mirror_order_id not in (select shop_orders.order_id from shop_orders)
        )
),

from_segment as (
    select
        'segment:' || message_id as touchpoint_id,
        'segment' as source_system,
        message_id as source_record_id,
        occurred_at,
        case
            when event_type = 'identify' then 'identify'
            when
                event_type = 'page'
                and (
                    campaign_source is not null
                    or campaign_medium is not null
                    or campaign_name is not null
                    or has_external_referrer
                )
                then 'campaign_arrival'
            when event_type = 'page' then 'page_view'
            when event_name = 'Product Viewed' then 'product_view'
            when event_name = 'Products Searched' then 'search'
            when event_name = 'Product Added' then 'cart_add'
            when event_name = 'Product Removed' then 'cart_remove'
            when event_name = 'Cart Viewed' then 'cart_view'
            when event_name = 'Checkout Started' then 'checkout_start'
            when event_name = 'Order Completed' then 'order'
            else 'other_event'
        end as touchpoint_type,
        coalesce(event_name, event_type) as event_detail,
        case
            when device_type in ({{ sql_value_list(app_device_types) }}) then 'app'
            else 'web'
        end as channel,
        user_id,
        trait_email as email,
        trait_phone as phone,
        cast(null as varchar) as crm_contact_id,
        anonymous_id,
        product_id,
        order_id,
        -- A page reached from another site without UTM tags: source = referring host, medium = referral.
        coalesce(
            campaign_source,
            case when has_external_referrer then referrer_host end
        ) as campaign_source,
        coalesce(
            campaign_medium,
            case
                when has_external_referrer and campaign_source is null then 'referral'
            end
        ) as campaign_medium,
        campaign_name,
        -- Revenue excluding shipping and tax, as the shop's order lines (docs/cx_measures.md, Revenue).
        case when event_name = 'Order Completed' then order_revenue end as revenue,
        trait_first_name as first_name,
        trait_last_name as last_name,
        cart_id,
        _loaded_at,
    from segment_classified
),

from_cart_events as (
    select
        'shop:' || event_id as touchpoint_id,
        'shop' as source_system,
        event_id as source_record_id,
        occurred_at,
        case event_type
            when 'item_added' then 'cart_add'
            when 'item_removed' then 'cart_remove'
            when 'checkout_started' then 'checkout_start'
            when 'order_placed' then 'order'
            when 'cart_abandoned' then 'cart_abandoned'
            else 'other_event'
        end as touchpoint_type,
        event_type as event_detail,
        channel,
        user_id,
        email,
        cast(null as varchar) as phone,
        cast(null as varchar) as crm_contact_id,
        anonymous_id,
        product_id,
        order_id,
        cast(null as varchar) as campaign_source,
        cast(null as varchar) as campaign_medium,
        cast(null as varchar) as campaign_name,
        case when event_type = 'order_placed' then line_amount end as revenue,
        cast(null as varchar) as first_name,
        cast(null as varchar) as last_name,
        cart_id,
        _loaded_at,
    from cart_events_loaded
),

from_rejections as (
    select
        'shop_rejection:' || rejections.rejection_id as touchpoint_id,
        'shop' as source_system,
        rejections.rejection_id as source_record_id,
        rejections.occurred_at,
        case rejections.rejection_type
            when 'returned' then 'return'
            else 'rejection'
        end as touchpoint_type,
        rejections.rejection_type as event_detail,
        coalesce(order_channels.channel, 'web') as channel,
        rejections.user_id,
        rejections.email,
        cast(null as varchar) as phone,
        cast(null as varchar) as crm_contact_id,
        cast(null as varchar) as anonymous_id,
        rejections.product_id,
        rejections.order_id,
        cast(null as varchar) as campaign_source,
        cast(null as varchar) as campaign_medium,
        cast(null as varchar) as campaign_name,
        cast(null as decimal(18, 4)) as revenue,
        cast(null as varchar) as first_name,
        cast(null as varchar) as last_name,
        cast(null as varchar) as cart_id,
        rejections._loaded_at,
    from product_rejections as rejections
    left join order_channels on rejections.order_id = order_channels.order_id
),

from_tickets as (
    select
        'support:' || ticket_id as touchpoint_id,
        'support' as source_system,
        ticket_id as source_record_id,
        created_at as occurred_at,
        'support_ticket' as touchpoint_type,
        category as event_detail,
        case channel when 'web_form' then 'web' else channel end as channel,
        cast(null as varchar) as user_id,
        requester_email as email,
        requester_phone as phone,
        cast(null as varchar) as crm_contact_id,
        cast(null as varchar) as anonymous_id,
        cast(null as varchar) as product_id,
        cast(null as varchar) as order_id,
        cast(null as varchar) as campaign_source,
        cast(null as varchar) as campaign_medium,
        cast(null as varchar) as campaign_name,
        cast(null as decimal(18, 4)) as revenue,
        cast(null as varchar) as first_name,
        cast(null as varchar) as last_name,
        cast(null as varchar) as cart_id,
        _loaded_at,
    from tickets
),

from_nps as (
    select
        'surveys:' || response_id as touchpoint_id,
        'surveys' as source_system,
        response_id as source_record_id,
        responded_at as occurred_at,
        'survey_response' as touchpoint_type,
        touchpoint as event_detail,
        case channel
            when 'in_store' then 'store'
            when 'sms' then 'phone'
            else coalesce(channel, 'email')
        end as channel,
        user_id,
        email,
        cast(null as varchar) as phone,
        cast(null as varchar) as crm_contact_id,
        cast(null as varchar) as anonymous_id,
        cast(null as varchar) as product_id,
        cast(null as varchar) as order_id,
        cast(null as varchar) as campaign_source,
        cast(null as varchar) as campaign_medium,
        cast(null as varchar) as campaign_name,
        cast(null as decimal(18, 4)) as revenue,
        cast(null as varchar) as first_name,
        cast(null as varchar) as last_name,
        cast(null as varchar) as cart_id,
        _loaded_at,
    from nps_responses
),

from_consents as (
    select
        'privacy:' || consent_event_id as touchpoint_id,
        'privacy' as source_system,
        consent_event_id as source_record_id,
        recorded_at as occurred_at,
        'consent_change' as touchpoint_type,
        purpose || ':' || status as event_detail,
        {{ channel_from_label('consent_source') }} as channel,
        user_id,
        email,
        cast(null as varchar) as phone,
        cast(null as varchar) as crm_contact_id,
        cast(null as varchar) as anonymous_id,
        cast(null as varchar) as product_id,
        cast(null as varchar) as order_id,
        cast(null as varchar) as campaign_source,
        cast(null as varchar) as campaign_medium,
        cast(null as varchar) as campaign_name,
        cast(null as decimal(18, 4)) as revenue,
        cast(null as varchar) as first_name,
        cast(null as varchar) as last_name,
        cast(null as varchar) as cart_id,
        _loaded_at,
    from consent_events
),

-- The CRM keeps the latest version of a contact: its creation, and its latest update when later.
crm_moments as (
    select
        contact_id,
        email,
        phone,
        first_name,
        last_name,
        crm_lifecycle_stage,
        'created' as moment,
        created_at as occurred_at,
        _loaded_at,
    from crm_contacts
    union all
    select
        contact_id,
        email,
        phone,
        first_name,
        last_name,
        crm_lifecycle_stage,
        'updated' as moment,
        updated_at as occurred_at,
        _loaded_at,
    from crm_contacts
    where updated_at > created_at
),

from_crm as (
    select
        'crm:' || contact_id || ':' || moment as touchpoint_id,
        'crm' as source_system,
        contact_id as source_record_id,
        occurred_at,
        'crm_update' as touchpoint_type,
        moment || coalesce(':' || crm_lifecycle_stage, '') as event_detail,
        'email' as channel,
        cast(null as varchar) as user_id,
        email,
        phone,
        contact_id as crm_contact_id,
        cast(null as varchar) as anonymous_id,
        cast(null as varchar) as product_id,
        cast(null as varchar) as order_id,
        cast(null as varchar) as campaign_source,
        cast(null as varchar) as campaign_medium,
        cast(null as varchar) as campaign_name,
        cast(null as decimal(18, 4)) as revenue,
        first_name,
        last_name,
        cast(null as varchar) as cart_id,
        _loaded_at,
    from crm_moments
),

final as (
    select * from from_segment
    union all
    select * from from_cart_events
    union all
    select * from from_rejections
    union all
    select * from from_tickets
    union all
    select * from from_nps
    union all
    select * from from_consents
    union all
    select * from from_crm
)

select * from final
