{#-
    Per-customer touchpoint summary: first/last seen, first- and last-touch channel and campaign, counts per
    channel. One pass (one group-by) over the attributed stream, up to `as_of`.
-#}

with attributed as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

as_of as (
    select {{ journey_as_of(ref('int_touchpoints_attributed')) }} as as_of_at
),

touchpoints as (
    select
        attributed.*,
        (
            attributed.campaign_source is not null
            or attributed.campaign_medium is not null
            or attributed.campaign_name is not null
        ) as has_campaign,
        {
            'source': attributed.campaign_source,
            'medium': attributed.campaign_medium,
            'name': attributed.campaign_name
        } as campaign,
    from attributed
    cross join as_of
    where attributed.customer_id is not null and attributed.occurred_at <= as_of.as_of_at
),

aggregated as (
    select
        customer_id,
        count(*) as touchpoint_count,
        count(*) filter (where is_anonymous_at_time) as stitched_touchpoint_count,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        arg_min(channel, (occurred_at, touchpoint_id)) as first_touch_channel,
        arg_max(channel, (occurred_at, touchpoint_id)) as last_touch_channel,
        arg_min(campaign, (occurred_at, touchpoint_id)) filter (where has_campaign) as first_campaign,
        arg_max(campaign, (occurred_at, touchpoint_id)) filter (where has_campaign) as last_campaign,
        count(*) filter (where channel = 'web') as web_touchpoint_count,
        count(*) filter (where channel = 'app') as app_touchpoint_count,
        count(*) filter (where channel = 'store') as store_touchpoint_count,
        count(*) filter (where channel = 'email') as email_touchpoint_count,
        count(*) filter (where channel = 'phone') as phone_touchpoint_count,
        count(*) filter (where channel = 'chat') as chat_touchpoint_count,
        count(*) filter (where channel = 'social') as social_touchpoint_count,
        count(distinct channel) as distinct_channel_count,
    from touchpoints
    group by customer_id
),

final as (
    select
        aggregated.customer_id,
        aggregated.touchpoint_count,
        aggregated.stitched_touchpoint_count,
        aggregated.first_seen_at,
        aggregated.last_seen_at,
        aggregated.first_touch_channel,
        first_campaign.source as first_touch_campaign_source,
        first_campaign.medium as first_touch_campaign_medium,
        first_campaign.name as first_touch_campaign_name,
        aggregated.last_touch_channel,
        last_campaign.source as last_touch_campaign_source,
        last_campaign.medium as last_touch_campaign_medium,
        last_campaign.name as last_touch_campaign_name,
        aggregated.web_touchpoint_count,
        aggregated.app_touchpoint_count,
        aggregated.store_touchpoint_count,
        aggregated.email_touchpoint_count,
        aggregated.phone_touchpoint_count,
        aggregated.chat_touchpoint_count,
        aggregated.social_touchpoint_count,
        aggregated.distinct_channel_count,
    from aggregated
)

select * from final
