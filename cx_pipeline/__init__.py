"""cx360: a customer 360 data pipeline on Dagster, dbt and DuckDB."""
