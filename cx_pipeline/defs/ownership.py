"""Who owns each asset and where its code lives, applied once to the whole code location (``definitions.py``).

Owners follow the asset's area (the first part of its key, for privacy and reports) or else its group (its
layer): an asset gets the team of the group it joins, and a new group needs a line in ``OWNERS_BY_GROUP``
(tests/test_conventions.py fails until it has one). The team
names are placeholders for the teams (or e-mail addresses) of whoever runs cx360; Dagster shows them on every
asset and filters by them. The dbt exposures (``dbt_project/models/_exposures.yml``) name the same teams.

Code references: a dbt model links to its ``.sql`` file (dagster-dbt's ``enable_code_references``, set in
``defs/dbt/assets.py``), a Python asset to the function that computes it (``dg.with_source_code_references``
below). Both are local paths, which the Dagster UI opens in an editor; a deployment that serves the UI away
from a checkout can map them to the repository with ``dg.link_code_references_to_git``.
"""

import warnings
from collections.abc import Mapping, Sequence

import dagster as dg

DATA_PLATFORM = "team:data-platform"
ANALYTICS_ENGINEERING = "team:analytics-engineering"
PRIVACY = "team:privacy"
CX_ANALYTICS = "team:cx-analytics"

# An asset's area, where its key says it (the first part of the key), names its owners before its group does:
# the privacy tables and checks and the CX report sit in the groups of the flow they run in.
OWNERS_BY_KEY_PREFIX: Mapping[str, tuple[str, ...]] = {
    # Erasure, suppression and their verification (docs/privacy.md).
    "privacy": (PRIVACY,),
    # The CX report (docs/cx_measures.md).
    "reports": (CX_ANALYTICS,),
}

OWNERS_BY_GROUP: Mapping[str, tuple[str, ...]] = {
    # Landing files to raw tables, and the files handed to BI tools and marketing tools.
    "ingestion": (DATA_PLATFORM,),
    "serving": (DATA_PLATFORM,),
    "exports": (DATA_PLATFORM,),
    # The dbt layers (a dbt model's group is its schema).
    "seeds": (ANALYTICS_ENGINEERING,),
    "staging": (ANALYTICS_ENGINEERING,),
    "intermediate": (ANALYTICS_ENGINEERING,),
    "marts": (ANALYTICS_ENGINEERING,),
    "marketing": (ANALYTICS_ENGINEERING,),
    "bi": (ANALYTICS_ENGINEERING,),
    "privacy": (PRIVACY,),
    # CLV and the CX report (docs/cx_measures.md, docs/clv.md).
    "cx": (CX_ANALYTICS,),
}


def owners_of(key: dg.AssetKey, group_name: str | None) -> tuple[str, ...]:
    """The owners of asset ``key`` in ``group_name``: by the key's area, else by the group; none when neither
    has a line above."""
    return OWNERS_BY_KEY_PREFIX.get(key.path[0]) or OWNERS_BY_GROUP.get(group_name or "", ())


def _with_owners(spec: dg.AssetSpec) -> dg.AssetSpec:
    if spec.owners:  # set on the asset itself: the asset knows best
        return spec
    return spec.replace_attributes(owners=list(owners_of(spec.key, spec.group_name)))


CODE_REFERENCES_KEY = "dagster/code_references"


def code_references(spec: dg.AssetSpec) -> list[dg.LocalFileCodeReference | dg.UrlCodeReference]:
    """The code references recorded on ``spec`` (empty when it has none)."""
    value = spec.metadata.get(CODE_REFERENCES_KEY)
    return list(value.code_references) if isinstance(value, dg.CodeReferencesMetadataValue) else []


def _has_code_references(assets_def: dg.AssetsDefinition) -> bool:
    return any(code_references(spec) for spec in assets_def.specs)


def with_source_code_references(
    assets: Sequence[dg.AssetsDefinition | dg.AssetSpec],
) -> list[dg.AssetsDefinition | dg.AssetSpec]:
    """Python assets gain a reference to their function; assets that carry references already (the dbt
    models, to their ``.sql`` files) keep theirs alone."""
    with warnings.catch_warnings():
        # Code references are marked beta in Dagster 1.13; they are what the UI's code links read.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return [
            dg.with_source_code_references([asset])[0]
            if isinstance(asset, dg.AssetsDefinition) and not _has_code_references(asset)
            else asset
            for asset in assets
        ]


def with_owners_and_code_references(definitions: dg.Definitions) -> dg.Definitions:
    """``definitions`` with owners on every asset and code references on every Python asset."""
    referenced = dg.Definitions(
        assets=with_source_code_references(list(definitions.assets or ())),
        asset_checks=definitions.asset_checks,
        schedules=definitions.schedules,
        sensors=definitions.sensors,
        jobs=definitions.jobs,
        resources=definitions.resources,
        executor=definitions.executor,
        loggers=definitions.loggers,
        metadata=definitions.metadata,
        component_tree=definitions.component_tree,
    )
    with warnings.catch_warnings():
        # Marked preview in Dagster 1.13; it is the documented way to set attributes on loaded specs.
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return referenced.map_asset_specs(func=_with_owners)
