"""dynamic: dynamic-range quantization, int8 weights with activations quantized on the fly."""

from __future__ import annotations

from typing import Any

from ..tflite import ptq
from .base import Context, PrecisionSpec, Step
from .conversion import converter_for, optimize, precision, run


def _keras(source: Any, step: Step, ctx: Context) -> bytes:
    return run(optimize(converter_for(source)), step)


precision("dynamic", "dynamic-range: int8 weights, float activations", keras=_keras,
          tflite=lambda content, step, ctx: ptq.dynamic(content), order=2,
          spec=PrecisionSpec("dynamic", cost="dynamic", bits=lambda value: 8.0,
                             nothing_note="dynamic-range leaves weights of fewer than "
                             f"{ptq.DYNAMIC_MIN_ELEMENTS} values float, as the converter does"))
