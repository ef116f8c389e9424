"""How dbt nodes are named in Dagster: the one place that keys and groups dbt's models, seeds and snapshots.

A model's key is ``[schema, model name]`` (``marts/dim_customers``, ``bi/bi_dim_customers``) and its group is
its schema. Python code names a model's asset with ``dbt_asset_key``, never with a literal key, so a change
to the rule (say, keying ``bi`` models by the relation they write) is made here alone. Sources keep the key
their ``meta.dagster.asset_key`` gives them: the raw and privacy assets that load those tables.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtProject

# The dbt nodes that become assets of the dbt build (sources are the upstream assets they depend on).
DBT_ASSET_NODE_TYPES = frozenset({"model", "seed", "snapshot"})


def dbt_asset_key(schema: str, name: str) -> dg.AssetKey:
    """The asset key of the dbt model (or seed, snapshot) ``name`` built in ``schema``."""
    return dg.AssetKey([schema, name])


def dbt_node_asset_key(node: Mapping[str, Any]) -> dg.AssetKey | None:
    """The asset key of a manifest node, or None when the node is not an asset of the dbt build."""
    if node.get("resource_type") not in DBT_ASSET_NODE_TYPES:
        return None
    return dbt_asset_key(node["schema"], node["name"])


class Cx360DbtTranslator(DagsterDbtTranslator):
    """Keys models, seeds and snapshots with ``dbt_node_asset_key`` and groups them by schema (layer)."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = self.get_resource_props(manifest, unique_id)
        key = dbt_node_asset_key(node)
        if key is None:
            return spec
        return spec.replace_attributes(key=key, group_name=node["schema"])

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        # dagster-dbt still asks this directly in places (observations of tests outside the selection,
        # self-dependencies): the same rule, so every event lands on the asset the spec declares.
        return dbt_node_asset_key(dbt_resource_props) or super().get_asset_key(dbt_resource_props)
