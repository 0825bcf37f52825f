"""Stage 07: utilisation profiles, K-Means clusters, right-sizing and consolidation.

The modules are the stage's steps, in order:

- ``profiles``: one row of utilisation features per server from the cleaned daily history;
- ``clustering``: scaled K-Means, clusters numbered and labelled from their centroids (never from
  the arbitrary K-Means index, so the same fleet in any row order gets the same answer);
- ``rightsizing``: forecast peak demand plus headroom -> a realistic instance size and a finding;
- ``consolidation``: 2-D first-fit-decreasing packing of over-provisioned and idle servers onto
  fewer hosts of the same environment and criticality;
- ``recommendations``: the JSON summary and the one-row-per-server product table.

Savings are alternatives per server, never added twice: a server freed by consolidation saves
its whole ``monthly_cost_usd`` (consolidation saving); a server that stays and hosts nobody else
keeps its right-sizing saving (a downsize, or the whole cost for an idle decommission
candidate); a server that stays as a host of freed servers saves nothing, because its capacity
now carries their load. Total = consolidation + right-sizing of servers neither freed nor hosting.
Plain functions on frames; no I/O.
"""
