"""Progress reports: one shape for every long job (compress, calibrate, tune, suite runs).

A job calls its ``progress`` callback with an :class:`Event`: what is happening, for whom (a device,
or the host), how far along, and a detail of the job's own (a tune's trial row and best candidate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    text: str
    who: str = "host"
    done: int | None = None
    total: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


Progress = Callable[[Event], None]
