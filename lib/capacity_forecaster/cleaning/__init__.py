"""Stage 03 (ETL): cleaned daily series with calendar and lag features, long by metric.

The steps, one module each: ``grid`` (the long daily grid per server x metric), ``outliers``
and ``imputation`` (brought together by ``clean``), ``calendar_features``, ``lag_features``;
``features`` runs them (``build_features``) and checks the product (``check_features``).
``calendar_effects`` measures each series' rise in the business calendar's windows on the raw
values (processed/calendar_effects.parquet).
"""
