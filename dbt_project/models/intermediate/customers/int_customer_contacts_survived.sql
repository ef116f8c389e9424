{#-
    The golden-record contact details of each customer (survivorship, docs/profile.md). For each field:
      1. the most recent non-null value in the customer's CRM contacts (by updated_at);
      2. else the most recent non-null Segment identify trait (email, phone, first/last name);
      3. else the value seen most often across every source's records (ties: the most recent).
    Emails and phones must be identifiers the identity layer linked to this customer, so a blocklisted
    placeholder (test@example.com, 0000000000) never survives. A surviving name in capitals is shown in the
    mixed-case spelling another record of the customer has for it.
-#}

with identifiers as (
    select * from {{ ref('int_identifiers_resolved') }}
    where customer_id is not null
),

crm_contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

attributed as (
    select * from {{ ref('int_touchpoints_attributed') }}
),

crm_records as (
    select
        identifiers.customer_id,
        crm_contacts.contact_id as record_id,
        crm_contacts.updated_at as recorded_at,
        crm_contacts.first_name,
        crm_contacts.last_name,
        crm_contacts.email,
        crm_contacts.phone,
        crm_contacts.city,
        crm_contacts.country,
        crm_contacts.company,
    from crm_contacts
    inner join identifiers
        on
            identifiers.identifier_type = 'crm_contact_id'
            and crm_contacts.contact_id = identifiers.identifier_value
),

identify_records as (
    select
        customer_id,
        source_record_id as record_id,
        occurred_at as recorded_at,
        first_name,
        last_name,
        email,
        phone,
    from attributed
    where source_system = 'segment' and touchpoint_type = 'identify' and customer_id is not null
),

candidates as (
    {%- for field in ['first_name', 'last_name', 'email', 'phone', 'city', 'country', 'company'] %}
        select
            customer_id,
            '{{ field }}' as field,
            {{ field }} as field_value,
            1 as priority,
            0 as frequency,
            recorded_at,
            record_id,
        from crm_records
        where {{ field }} is not null
        union all
    {%- endfor %}
    {%- for field in ['first_name', 'last_name', 'email', 'phone'] %}
        select
            customer_id,
            '{{ field }}' as field,
            {{ field }} as field_value,
            2 as priority,
            0 as frequency,
            recorded_at,
            record_id,
        from identify_records
        where {{ field }} is not null
        union all
    {%- endfor %}
    {%- for field in ['email', 'phone'] %}
        select
            customer_id,
            '{{ field }}' as field,
            {{ field }} as field_value,
            3 as priority,
            count(*) as frequency,
            max(occurred_at) as recorded_at,
            max(touchpoint_id) as record_id,
        from attributed
        where customer_id is not null and {{ field }} is not null
        group by customer_id, {{ field }}
        {{- ' union all' if not loop.last }}
    {%- endfor %}
),

-- Emails and phones survive only as identifiers linked to the same customer.
valid_candidates as (
    select candidates.*
    from candidates
    left join identifiers
        on
            candidates.customer_id = identifiers.customer_id
            and candidates.field = identifiers.identifier_type
            and candidates.field_value = identifiers.identifier_value
    where candidates.field not in ('email', 'phone') or identifiers.customer_id is not null
),

survivors as (
    select *
    from valid_candidates
    qualify row_number() over (
        partition by customer_id, field
        order by priority asc, frequency desc, recorded_at desc, record_id desc, field_value asc
    ) = 1
),

-- A name typed in capitals (a CRM duplicate in upper case) is shown in the customer's own spelling when any
-- source has the same name in mixed case (most recent first); the surviving value itself does not change.
spellings as (
    select
        survivors.customer_id,
        survivors.field,
        arg_max(
            valid_candidates.field_value, (valid_candidates.recorded_at, valid_candidates.record_id)
        ) as field_value,
    from survivors
    inner join valid_candidates
        on
            survivors.customer_id = valid_candidates.customer_id
            and survivors.field = valid_candidates.field
            and lower(survivors.field_value) = lower(valid_candidates.field_value)
    where
        survivors.field in ('first_name', 'last_name', 'city', 'company')
        and survivors.field_value = upper(survivors.field_value)
        and valid_candidates.field_value <> upper(valid_candidates.field_value)
    group by survivors.customer_id, survivors.field
),

spelled as (
    select
        survivors.customer_id,
        survivors.field,
        coalesce(spellings.field_value, survivors.field_value) as field_value,
    from survivors
    left join spellings
        on
            survivors.customer_id = spellings.customer_id
            and survivors.field = spellings.field
),

final as (
    select
        customer_id,
        max(field_value) filter (where field = 'first_name') as first_name,
        max(field_value) filter (where field = 'last_name') as last_name,
        max(field_value) filter (where field = 'email') as email,
        max(field_value) filter (where field = 'phone') as phone,
        max(field_value) filter (where field = 'city') as city,
        max(field_value) filter (where field = 'country') as country,
        max(field_value) filter (where field = 'company') as company,
    from spelled
    group by customer_id
)

select * from final
