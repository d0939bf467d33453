"""The one base for configuration read from files (profiles, suites): unknown fields are refused, and
a loaded configuration cannot change."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
