{#-
    Link rules: why identifiers seen on one record are taken to belong to one person. When one pair of
    identifiers is first seen by several rules at the same instant, the most trustworthy rule (lowest rank)
    names the edge. Rules and ranks: docs/identity.md.
-#}
{% macro identity_link_rule_rank(column) -%}
    case {{ column }}
        when 'crm_record' then 1
        when 'identify_call' then 2
        when 'cart_event' then 3
        when 'product_rejection' then 4
        when 'support_ticket' then 5
        when 'consent_record' then 6
        when 'nps_response' then 7
        when 'erasure_request' then 8
        when 'web_event' then 9
        else 99
    end
{%- endmacro %}


{#- Anchor priority of identifier types: the lower, the better an anchor (and customer id source). -#}
{% macro identifier_type_rank(column) -%}
    case {{ column }}
        when 'crm_contact_id' then 1
        when 'user_id' then 2
        when 'email' then 3
        when 'phone' then 4
        when 'anonymous_id' then 5
        else 9
    end
{%- endmacro %}


{#- The customer id of a cluster, derived from its anchor identifier only: 'cx_' + 16 hex digits. -#}
{% macro customer_id_from_anchor(identifier_type, identifier_value) -%}
    'cx_' || left({{ dbt.hash(identifier_type ~ " || ':' || " ~ identifier_value) }}, 16)
{%- endmacro %}
