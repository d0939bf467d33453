"""int16x8: int16 activations with int8 weights (the converter's 16x8 mode), calibrated."""

from __future__ import annotations

from typing import Any

from ..tflite import ptq
from .base import Context, PrecisionSpec, Step
from .conversion import converter_for, custom_ops, optimize, precision, run, samples


def _keras(source: Any, step: Step, ctx: Context) -> bytes:
    import tensorflow as tf

    conv = optimize(converter_for(source), samples(step, ctx))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return run(conv, step)


def _tflite(content: bytes, step: Step, ctx: Context) -> bytes:
    return ptq.int16x8(content, samples(step, ctx), custom_ops(content))


precision("int16x8", "int16 activations, int8 weights, calibrated", keras=_keras, tflite=_tflite, order=4,
          calibrated=True, spec=PrecisionSpec("int16x8", cost="int16x8", bits=lambda value: 8.0))
