-- Every Segment message the ingestion did not flag as a re-delivery (`not _is_duplicate`), typed and
-- normalised. stg_segment__events keeps one row per messageId on top of it as a belt; the pipeline (the
-- identity graph, int_touchpoints_unioned) reads this view directly, as messageId is unique here already
-- (tested), and so spares the row_number over every message (docs/identity.md).
{#- The JSON fields read from properties and traits, each object parsed once per row (one `->>` per field
    parsed it again for every field: 3x slower over the Segment stream). -#}
{#- Order Completed follows the Segment e-commerce spec: `revenue` (or `subtotal`) excludes shipping and tax,
    `total` includes them, `products` lists the order's items (stg_segment__order_products). Identify traits
    arrive camelCase (the Segment Spec: firstName) or snake_case (Segment's warehouse and storage exports:
    first_name); both are read. -#}
{%- set property_keys = [
    'url', 'path', 'referrer', 'product_id', 'name', 'category', 'price', 'quantity', 'order_id', 'total',
    'revenue', 'query', 'cart_id', 'subtotal', 'shipping', 'tax', 'discount', 'coupon', 'currency',
] -%}
{%- set trait_keys = ['email', 'phone', 'firstName', 'lastName', 'first_name', 'last_name'] -%}
{%- set prop = {} -%}
{%- for key in property_keys -%}{%- do prop.update({key: 'property_values[' ~ loop.index ~ ']'}) -%}{%- endfor -%}
{%- set trait = {} -%}
{%- for key in trait_keys -%}{%- do trait.update({key: 'trait_values[' ~ loop.index ~ ']'}) -%}{%- endfor %}

with source as not materialized (
    select * from {{ source('segment', 'web_events') }}
),

deliveries as not materialized (
    select
        *,
        json_extract_string(properties, [{{ "'$." ~ property_keys | join("', '$.") ~ "'" }}]) as property_values,
        json_extract_string(traits, [{{ "'$." ~ trait_keys | join("', '$.") ~ "'" }}]) as trait_values,
    from source
    where not coalesce(_is_duplicate, false)
),

final as not materialized (
    select
        {{ nullif_blank('message_id') }} as message_id,
        lower({{ nullif_blank('type') }}) as event_type,
        case lower({{ nullif_blank('type') }})
            when 'track' then {{ nullif_blank('event') }}
            when 'page' then {{ nullif_blank('name') }}
        end as event_name,
        {{ nullif_blank('anonymous_id') }} as anonymous_id,
        {{ nullif_blank('user_id') }} as user_id,
        event_timestamp as occurred_at,
        coalesce({{ nullif_blank('context_page_url') }}, {{ nullif_blank(prop.url) }}) as page_url,
        coalesce({{ nullif_blank('context_page_path') }}, {{ nullif_blank(prop.path) }}) as page_path,
        coalesce(
            {{ nullif_blank('context_page_referrer') }}, {{ nullif_blank(prop.referrer) }}
        ) as referrer,
        {{ nullif_blank('context_campaign_source') }} as campaign_source,
        {{ nullif_blank('context_campaign_medium') }} as campaign_medium,
        {{ nullif_blank('context_campaign_name') }} as campaign_name,
        lower({{ nullif_blank('context_device_type') }}) as device_type,
        {{ nullif_blank('context_user_agent') }} as user_agent,
        {{ nullif_blank(prop.product_id) }} as product_id,
        {{ nullif_blank(prop.name) }} as product_name,
        {{ nullif_blank(prop.category) }} as category,
        try_cast({{ prop.price }} as decimal(18, 4)) as price,
        try_cast({{ prop.quantity }} as bigint) as quantity,
        {{ nullif_blank(prop.order_id) }} as order_id,
        {{ nullif_blank(prop.cart_id) }} as cart_id,
        cast(coalesce(
            try_cast({{ prop.revenue }} as decimal(18, 4)),
            try_cast({{ prop.subtotal }} as decimal(18, 4)),
            try_cast({{ prop.total }} as decimal(18, 4))
            - coalesce(try_cast({{ prop.shipping }} as decimal(18, 4)), 0)
            - coalesce(try_cast({{ prop.tax }} as decimal(18, 4)), 0)
        ) as decimal(18, 4)) as order_revenue,
        try_cast({{ prop.total }} as decimal(18, 4)) as order_total,
        try_cast({{ prop.discount }} as decimal(18, 4)) as order_discount,
        {{ nullif_blank(prop.coupon) }} as order_coupon,
        upper({{ nullif_blank(prop.currency) }}) as currency,
        {{ nullif_blank(prop.query) }} as search_query,
        {{ normalize_email(trait.email) }} as trait_email,
        {{ normalize_phone(trait.phone) }} as trait_phone,
        coalesce({{ nullif_blank(trait['firstName']) }}, {{ nullif_blank(trait['first_name']) }}) as trait_first_name,
        coalesce({{ nullif_blank(trait['lastName']) }}, {{ nullif_blank(trait['last_name']) }}) as trait_last_name,
        properties,
        _source_file,
        _source_line,
        _loaded_at
    from deliveries
)

-- Records of erased people stay out, even when delivered again (suppression list, docs/privacy.md). The
-- filter reads final once more per identifier column: the CTEs are not materialized, so each such read
-- scans one column instead of DuckDB copying every event.
select * from final
where {{ exclude_suppressed(['user_id', 'anonymous_id', 'trait_email', 'trait_phone']) }}
