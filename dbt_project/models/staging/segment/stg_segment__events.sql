-- One row per Segment message: the first delivery of each messageId wins. The ingestion flags re-deliveries
-- (`_is_duplicate`, filtered in stg_segment__event_deliveries); the row_number is a belt against duplicates
-- it did not flag.
with deliveries as (
    select * from {{ ref('stg_segment__event_deliveries') }}
),

final as (
    select *
    from deliveries
    qualify row_number() over (
        partition by message_id
        order by _loaded_at, _source_file, _source_line
    ) = 1
)

select * from final
