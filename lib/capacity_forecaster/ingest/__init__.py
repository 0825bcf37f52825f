"""Stages 01 and 02: a fleet's daily metrics table and servers table, generated or read, then
validated.

- ``schema``: the two tables' columns, declared once;
- ``synthetic/``: stage 01, a synthetic fleet deterministic by seed;
- ``read``: a table's bytes (CSV or parquet) into a frame;
- ``validate``: the tables against their contracts (``coerce`` and ``dates`` convert cells,
  ``messages`` words each problem on one line);
- ``quality``: coverage and a data-quality summary of the validated fleet.

A reader for a monitoring export (CloudWatch CSV, Prometheus JSON, raw samples) belongs in a
``formats/`` module of its own that delivers the tables in ``schema`` to ``validate``.
"""
