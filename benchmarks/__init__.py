"""cx360 benchmarks at scale: ``python -m benchmarks.run --scales 10000,100000 --out docs/benchmarks.md``.

Modules:

- ``procmon``: runs a command and samples the resident memory of its whole process tree (dbt included).
- ``datasets``: generated landing folders cached by scale and seed, the day-sized incremental drop.
- ``pipeline``: ``cx360 run`` in its own environment, and the per-stage timings from Dagster and dbt.
- ``floor``: the DuckDB floor (read every landing file once, one aggregate per customer key).
- ``pandas_baseline``: the analyst's pandas script that the pipeline is compared with.
- ``report`` and ``svg``: statistics, scaling fits, ``docs/benchmarks.md`` and its chart.
"""
