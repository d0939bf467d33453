"""The one base for configuration read from files (profiles, suites): unknown fields are refused, a
loaded configuration cannot change, no number is NaN or infinite, and a yes/no field takes only true or
false (``StrictBool``: not "yes", not 1)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictBool


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


__all__ = ["Strict", "StrictBool"]
