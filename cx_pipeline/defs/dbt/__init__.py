"""dbt in Dagster: the project and its manifest (``project``), how dbt nodes are keyed (``translator``) and
the ``@dbt_assets`` definition (``assets``). Nothing here runs dbt or reads the manifest on import."""
