"""fp16: float16 weights (GPU delegates compute in fp16; CPUs dequantize them once)."""

from __future__ import annotations

from typing import Any

from ..tflite import graph
from .base import Context, PrecisionSpec, Step
from .conversion import converter_for, optimize, precision, run


def _keras(source: Any, step: Step, ctx: Context) -> bytes:
    import tensorflow as tf

    conv = optimize(converter_for(source))
    conv.target_spec.supported_types = [tf.float16]
    return run(conv, step)


precision("fp16", "float16 weights (GPU delegates compute in fp16)", keras=_keras,
          tflite=lambda content, step, ctx: graph.cast_fp16(content), order=1,
          spec=PrecisionSpec("fp16", keeps_storage=False, bits=lambda value: 16.0,
                             nothing_note="no float32 weight to store as fp16"))
