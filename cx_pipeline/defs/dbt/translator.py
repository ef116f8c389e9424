"""How dbt nodes are named in Dagster: the one place that keys and groups dbt's models, seeds and snapshots.

A model's key is ``[schema, relation]``: the table it writes, as BI tools and the serving copy name it
(``marts/dim_customers``, ``bi/dim_customers`` for the model ``bi_dim_customers`` whose alias is
``dim_customers``). Its group is its place in the flow (``flow_group``): the schema, except seeds, which are
reference data staged beside the sources. Python code names a model's asset with ``dbt_asset_key``, never
with a literal key. Sources keep the key their ``meta.dagster.asset_key`` gives them: the raw and privacy
assets that load those tables.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject

# The dbt nodes that become assets of the dbt build (sources are the upstream assets they depend on).
DBT_ASSET_NODE_TYPES = frozenset({"model", "seed", "snapshot"})


# The asset groups in the order data flows through them; every dependency between two groups goes forward
# in this order (tests/test_asset_graph_snapshot.py), so the collapsed lineage reads left to right.
FLOW_GROUPS = ("ingestion", "staging", "intermediate", "marts", "bi", "marketing", "exports", "serving")
# Schemas whose nodes join another group: seeds are reference data, staged beside the sources.
_GROUP_OF_SCHEMA = {"seeds": "staging"}


def dbt_asset_key(schema: str, relation: str) -> dg.AssetKey:
    """The asset key of the dbt model (or seed, snapshot) that writes ``schema.relation``."""
    return dg.AssetKey([schema, relation])


def dbt_node_asset_key(node: Mapping[str, Any]) -> dg.AssetKey | None:
    """The asset key of a manifest node (its schema and relation name), or None when the node is not an
    asset of the dbt build."""
    if node.get("resource_type") not in DBT_ASSET_NODE_TYPES:
        return None
    return dbt_asset_key(node["schema"], node.get("alias") or node["name"])


def flow_group(schema: str) -> str:
    """The asset group of the nodes built in ``schema``."""
    return _GROUP_OF_SCHEMA.get(schema, schema)


class Cx360DbtTranslator(DagsterDbtTranslator):
    """Keys models, seeds and snapshots with ``dbt_node_asset_key`` and groups them by ``flow_group``."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = self.get_resource_props(manifest, unique_id)
        key = dbt_node_asset_key(node)
        if key is None:
            return spec
        return spec.replace_attributes(key=key, group_name=flow_group(node["schema"]))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # dagster-dbt still asks this directly in places (observations of tests outside the selection,
        # self-dependencies): the same rule, so every event lands on the asset the spec declares.
        return dbt_node_asset_key(dbt_resource_props) or super().get_asset_key(dbt_resource_props)
