{#-
    Connected components of an undirected graph with full transitive closure, in one SQL statement.

    `edges` names a relation or CTE with integer columns `node_a` and `node_b` (default `node_id_a`,
    `node_id_b`; one row per edge, either direction, duplicates allowed). The macro renders a subquery returning `(node, component)` for every node
    that has an edge, where `component` is the smallest node id of its connected component.

    Method: min-label propagation with DuckDB's keyed recursive CTE (`USING KEY`, DuckDB >= 1.3). Every node
    starts with the smallest id among itself and its neighbours; each round, only the nodes whose label just
    dropped pass it on to their neighbours, and a neighbour keeps the smaller label. A node also takes the
    label of its label ("pointer jumping"), which shortens long chains. Labels only decrease and are always ids
    of nodes in the same component, so the loop ends, and it ends when no label can drop any more: then every
    edge joins nodes with equal labels, i.e. one label per component. Rounds ~ the graph diameter; verified
    against a union-find on long chains and random graphs (docs/identity.md).
-#}
{% macro connected_components(edges, node_a='node_id_a', node_b='node_id_b') -%}
    (
        with recursive
        directed as (
            select {{ node_a }} as src, {{ node_b }} as dst from {{ edges }}
            union
            select {{ node_b }} as src, {{ node_a }} as dst from {{ edges }}
        ),

        labels (node, component) using key (node) as (
            select
                src as node,
                least(src, min(dst)) as component
            from directed
            group by src

            union

            (
                select
                    directed.dst as node,
                    min(least(changed.component, jump.component)) as component
                from labels as changed
                inner join recurring.labels as jump on changed.component = jump.node
                inner join directed on changed.node = directed.src
                inner join recurring.labels as current_label on directed.dst = current_label.node
                group by directed.dst
                having min(least(changed.component, jump.component)) < min(current_label.component)
            )
        )

        select
            node,
            component
        from labels
    )
{%- endmacro %}
