"""The base of every params section, shared by the schema and the options it embeds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ParamsSection(BaseModel):
    """A params section: unknown keys are errors and values cannot change."""

    model_config = ConfigDict(extra="forbid", frozen=True)
