{#-
    The incremental build of int_touchpoints_unioned (docs/operations.md, "Incremental dbt models").

    An incremental build reads the staged records of the landing files not built yet (found in the ingestion
    manifest, see touchpoints_unbuilt_loads) and replaces their touchpoints (delete+insert on touchpoint_id).
    Two hooks keep the table equal to a full rebuild where a new record changes or removes an older row:
    - pre-hook: a landing file replaced by a changed version since the last build may have lost records, which
      only a rebuild drops: the table is emptied and the build re-reads everything, in the same transaction
      (also when the table predates the incremental model);
    - post-hook: rows a new record made obsolete are withdrawn (Segment's copy of a cart or order the shop
      recorded in this batch; a CRM contact's `updated` row when its latest version has no later update).
    On a full build (first build, `--full-refresh`) both hooks are empty.
-#}


{#-
    The loads (landing file versions, by their `loaded_at` in the ingestion manifest) whose records are not in
    the table yet, among those loaded at most `touchpoints_lookback_hours` before the newest load it holds: as a
    query returning `loaded_at`. Usually these are the files of the new delivery; a file stamped earlier than one
    already built (a second ingestion host, a clock set back) is still picked up within the lookback. Every
    load when the table is empty. The records of a file commit together, and a build reads one snapshot, so a
    load with any row in the table has all its records built.
-#}
{% macro touchpoints_unbuilt_loads() -%}
    {#- Every source int_touchpoints_unioned reads (contracts.py names; erasure_requests is not one). -#}
    {%- set touchpoint_sources = [
        'web_events', 'cart_events', 'product_rejections', 'support_interactions', 'nps_responses',
        'gdpr_consents', 'crm_contacts',
    ] -%}
    {%- set lookback_start -%}
        coalesce(
            (select max(_loaded_at) from {{ this }}) - to_hours({{ var('touchpoints_lookback_hours') | int }}),
            cast('-infinity' as timestamptz)
        )
    {%- endset -%}
    select manifest.loaded_at
    from {{ ingestion_manifest() }} as manifest
    where
        manifest.source in ({{ sql_value_list(touchpoint_sources) }})
        and manifest.superseded_at is null
        and manifest.rows_loaded > 0
        and manifest.loaded_at >= {{ lookback_start }}
        and manifest.loaded_at not in (
            select distinct built._loaded_at from {{ this }} as built
            where built._loaded_at >= {{ lookback_start }}
        )
{%- endmacro %}


{#- The ingestion manifest (raw.loaded_files, written by cx_pipeline/ingestion; not a dbt source). -#}
{% macro ingestion_manifest() -%}
    {{ adapter.quote('raw') }}.{{ adapter.quote('loaded_files') }}
{%- endmacro %}


{#-
    Pre-hook: empty the table when an incremental build must read everything, in the build's transaction.
    - A table built before the model was incremental lacks the load column: the two columns are added (at the
      end, where the model selects them) and the table is emptied.
    - A landing file replaced by a changed version after the newest load built may have lost records.
-#}
{% macro touchpoints_rebuild_if_needed() -%}
    {%- if is_incremental() -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- if '_loaded_at' not in columns -%}
            alter table {{ this }} add column if not exists cart_id varchar;
            alter table {{ this }} add column _loaded_at timestamptz;
            delete from {{ this }}
        {%- else -%}
            delete from {{ this }}
            where exists (
                select 1
                from {{ ingestion_manifest() }}
                where superseded_at > (select max(_loaded_at) from {{ this }})
            )
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}


{#-
    Post-hook: Segment's client-side copy of a cart or order event goes once the shop's record of that cart or
    order is in the table (the rule of int_touchpoints_unioned's `segment_classified`, for copies built first).
-#}
{% macro touchpoints_withdraw_segment_copies() -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where
            source_system = 'segment'
            and touchpoint_type in ('cart_add', 'cart_remove', 'checkout_start', 'order')
            and (
                cart_id in (
                    select cart_id from {{ this }}
                    where source_system = 'shop' and cart_id is not null
                )
                or order_id in (
                    select order_id from {{ this }}
                    where source_system = 'shop' and touchpoint_type = 'order' and order_id is not null
                )
            )
    {%- endif -%}
{%- endmacro %}


{#-
    Post-hook: a contact's `updated` row goes when a later version rebuilt its `created` row without one (the
    two rows of one version share its `_loaded_at`).
-#}
{% macro touchpoints_withdraw_stale_crm_updates() -%}
    {%- if is_incremental() -%}
        delete from {{ this }} as crm_updated
        where
            crm_updated.source_system = 'crm'
            and crm_updated.touchpoint_id = 'crm:' || crm_updated.source_record_id || ':updated'
            and exists (
                select 1
                from {{ this }} as crm_created
                where
                    crm_created.touchpoint_id = 'crm:' || crm_updated.source_record_id || ':created'
                    and crm_created._loaded_at > crm_updated._loaded_at
            )
    {%- endif -%}
{%- endmacro %}
