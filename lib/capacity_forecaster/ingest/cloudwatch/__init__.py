"""The parts of the live CloudWatch source (entry point: ``ingest.cloudwatch_live``).

- ``aws``: clients with botocore retries, counted paginated calls, one-line errors;
- ``inventory``: the servers table from DescribeInstances, DescribeInstanceTypes and
  DescribeVolumes;
- ``daily``: the daily metrics table from ListMetrics and GetMetricData (daily p95).
"""
