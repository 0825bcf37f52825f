"""What the stage's steps share: the server-row shape of their frames and a float tolerance."""

from __future__ import annotations

import pandas as pd

TOLERANCE = 1e-9  # slack for float rounding when sizes and loads are compared


def with_server_column(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with ``server_id`` as a column (accepts it as the index or a column)."""
    if "server_id" in frame.columns:
        return frame.reset_index(drop=True)
    if frame.index.name == "server_id":
        return frame.reset_index()
    raise ValueError("expected a server_id column or index")
