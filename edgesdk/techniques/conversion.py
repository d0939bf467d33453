"""What the precisions share: the TFLite converter on a Keras model or a SavedModel, the calibration
samples it reads, a profile's check, and :func:`precision`, which registers one.

Each precision is its own module (``fp32``, ``fp16``, ``dynamic``, ``int8``, ``int16x8``, ``mixed``,
``weights``): how it converts a Keras source (``keras``), how it quantizes a float .tflite
(``tflite``), what it needs and how the predictor costs it (:class:`.base.PrecisionSpec`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._native import quiet
from ..errors import RecipeError
from ..kinds import ModelForm, StepKind
from ..tflite import graph, ptq
from ..tflite.ptq import LayerError, last_line
from .base import (
    CONVERTIBLE,
    REGISTRY,
    Context,
    PrecisionSpec,
    Recipe,
    Step,
    Technique,
    dimension,
    no_value,
    register,
    runs,
)

dimension("precision", "the precisions", optional=False, option=True)
Convert = Callable[[Any, Step, Context], bytes]


def converter_for(source: Any) -> Any:
    """A TFLiteConverter for a tf_keras model or a SavedModel directory path."""
    import tensorflow as tf

    if isinstance(source, str):
        return tf.lite.TFLiteConverter.from_saved_model(source)
    return tf.lite.TFLiteConverter.from_keras_model(source)


def representative(calibration: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's representative dataset: one float32 sample (batch of one) at a time."""
    return ptq.generator(calibration, [np.float32])


def optimize(conv: Any, calibration: np.ndarray | None = None) -> Any:
    """Set the converter up to quantize. Dense layers get one scale per tensor, as TFLite Micro-era kernels
    and older runtimes expect; per-channel scales cost 12 bytes per output unit (40 KB on MLPerf Tiny's
    AD model) for little accuracy. Convolutions stay per-channel."""
    import tensorflow as tf

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    if calibration is not None:
        conv.representative_dataset = representative(calibration)
    return conv


def run(conv: Any, step: Step) -> bytes:
    """The converter's output.

    Raises:
        RecipeError: the converter refuses the model at this precision (its last line).
    """
    try:
        with quiet():
            return bytes(conv.convert())
    except Exception as exc:  # noqa: BLE001 - the converter raises many types; report its last line
        raise RecipeError(f"the TFLite converter refused {step}: {last_line(exc)}") from exc


def convert(source: Any, step: Step, calibration: np.ndarray | None = None) -> bytes:
    """``source`` (a tf_keras model or a SavedModel path) converted at the precision ``step`` names."""
    return REGISTRY[step.name].apply(source, step, Context(Recipe((), step), calibration=calibration))  # type: ignore[misc]


def float_tflite(source: Any) -> bytes:
    """``source`` as a plain float32 .tflite."""
    return run(converter_for(source), Step("fp32"))


def samples(step: Step, ctx: Context) -> Any:
    """The calibration samples a calibrated step needs.

    Raises:
        RecipeError: there are none.
    """
    if ctx.calibration is None:
        raise RecipeError(f"{step.name} needs calibration samples")
    return ctx.calibration


def custom_ops(content: bytes) -> list[str]:
    """The custom operators of a .tflite (named in quantizer errors)."""
    return graph.Graph(content).custom_ops()


def keras_layer_errors(conv: Any, calibration: np.ndarray) -> list[LayerError]:
    """Each quantizable layer's int8 error on a Keras source: TFLite's QuantizationDebugger runs the
    calibration samples through the int8 model and compares every layer's output with its float value.
    Sorted worst first by RMSE over the quantization step (:class:`edgesdk.tflite.ptq.LayerError`)."""
    import tensorflow as tf

    optimize(conv, calibration)
    with quiet():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=conv, debug_dataset=representative(calibration[:ptq.DEBUG_SAMPLES]))
        debugger.run()
        return ptq.statistics(debugger)


def precision(name: str, help: str, *, keras: Convert, tflite: Convert, order: int,
              parse: Callable[[str | None], Any] | None = None, search: tuple[Any, ...] = (),
              tag: str | None = None, calibrated: bool = False, dimension: str | None = "precision",
              forms: frozenset[ModelForm] = CONVERTIBLE, write: Callable[[Any], str | None] | None = None,
              spec: PrecisionSpec | None = None) -> Technique:
    """Register the precision ``name``: its conversion of a Keras source (``keras``) and its quantization
    of a float .tflite (``tflite``); ``spec`` says what a profile needs for it and how it is costed (by
    default: the profile runs ``name``, costed as float)."""
    return register(Technique(name, StepKind.CONVERT, help, parse or no_value(name), search, dimension=dimension,
                              tag=tag, order=order, forms=forms, calibrated=calibrated, apply=keras, flatbuffer=tflite,
                              write=write, precision=spec or PrecisionSpec(name)))


__all__ = ["Convert", "LayerError", "convert", "converter_for", "custom_ops", "float_tflite", "keras_layer_errors",
           "optimize", "precision", "representative", "run", "runs", "samples"]
