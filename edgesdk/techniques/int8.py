"""int8: full-integer quantization, calibrated; ``int8=io`` also makes the inputs and outputs int8. On an
integer .tflite it keeps the model (or turns its float interface to int8)."""

from __future__ import annotations

from typing import Any

from ..errors import ModelError, RecipeError
from ..kinds import ModelForm
from ..tflite import graph, ptq
from .base import CONVERTIBLE, Context, PrecisionSpec, Step
from .conversion import converter_for, custom_ops, optimize, precision, run, samples


def _keras(source: Any, step: Step, ctx: Context) -> bytes:
    import tensorflow as tf

    conv = optimize(converter_for(source), samples(step, ctx))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if step.value:
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    return run(conv, step)


def _tflite(content: bytes, step: Step, ctx: Context) -> bytes:
    if graph.quantized_activations(graph.Graph(content)):  # an integer model keeps its quantization
        try:
            return graph.int8_interface(content) if step.value else content
        except ModelError as exc:
            raise RecipeError(str(exc)) from exc
    return ptq.int8(content, samples(step, ctx), bool(step.value), custom_ops(content))


def _io(value: str | None) -> bool:
    if value not in (None, "io"):
        raise RecipeError(f"int8 takes no value, or int8=io for int8 inputs and outputs. Received: int8={value}")
    return value == "io"


precision("int8", "full-integer int8, calibrated; int8=io also makes inputs/outputs int8", keras=_keras,
          tflite=_tflite, parse=_io, order=3, calibrated=True, forms=CONVERTIBLE | {ModelForm.INTEGER},
          write=lambda io: "io" if io else None, spec=PrecisionSpec("int8", cost="int8", bits=lambda value: 8.0))
