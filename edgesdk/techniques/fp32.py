"""fp32: the plain float32 conversion (a float .tflite stays as it is)."""

from __future__ import annotations

from typing import Any

from .base import Context, PrecisionSpec, Step
from .conversion import converter_for, precision, run


def _keras(source: Any, step: Step, ctx: Context) -> bytes:
    return run(converter_for(source), step)


precision("fp32", "plain float32 conversion", keras=_keras, tflite=lambda content, step, ctx: content, order=0,
          spec=PrecisionSpec("fp32", keeps_storage=False))
