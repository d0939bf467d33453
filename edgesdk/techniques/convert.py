"""Conversion to .tflite at the recipe's precision (post-training quantization happens here)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .._native import quiet
from ..errors import ModelError, RecipeError
from ..kinds import ModelForm, StepKind
from ..tflite import graph, ptq
from ..tflite.ptq import last_line
from .base import ANY_FORM, CONVERTIBLE, Context, Step, Technique, fraction, no_value, register

log = logging.getLogger(__name__)


def converter_for(source: Any) -> Any:
    """A TFLiteConverter for a tf_keras model or a SavedModel directory path."""
    import tensorflow as tf

    if isinstance(source, str):
        return tf.lite.TFLiteConverter.from_saved_model(source)
    return tf.lite.TFLiteConverter.from_keras_model(source)


def representative(calibration: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    """The converter's representative dataset: one float32 sample (batch of one) at a time."""
    return ptq.generator(calibration, [np.float32])


def convert(source: Any, step: Step, calibration: np.ndarray | None) -> bytes:
    """Convert ``source`` with the settings of the conversion ``step``.

    Args:
        source: a tf_keras model (possibly pruned, clustered or QAT-wrapped) or a SavedModel path.
        step: one of fp32, dynamic, fp16, int8 (value True: int8 inputs/outputs), int16x8.
        calibration: samples for int8/int16x8 calibration.

    Raises:
        RecipeError: the converter refuses the model at this precision.
    """
    import tensorflow as tf

    conv = converter_for(source)
    if step.name == "mixed":
        kind, fraction = step.value
        if kind == "float":
            return _mixed(conv, fraction, calibration)
        return _mixed_aeq(conv, kind, fraction, calibration)
    if step.name != "fp32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        # Dense layers get one scale per tensor, as TFLite Micro-era kernels and older runtimes
        # expect; per-channel scales cost 12 bytes per output unit (40 KB on MLPerf Tiny's AD model)
        # for little accuracy. Convolutions stay per-channel.
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    if step.name == "fp16":
        conv.target_spec.supported_types = [tf.float16]
    elif step.name in ("int8", "int16x8"):
        if calibration is None:
            raise RecipeError(f"{step.name} needs calibration samples")
        conv.representative_dataset = representative(calibration)
        if step.name == "int8":
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            if step.value:
                conv.inference_input_type = tf.int8
                conv.inference_output_type = tf.int8
        else:
            conv.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    try:
        with quiet():
            return bytes(conv.convert())
    except Exception as exc:  # noqa: BLE001 - the converter raises many types; report its last line
        raise RecipeError(f"the TFLite converter refused {step}: "
                          f"{last_line(exc)}") from exc


def layer_errors(conv: Any, calibration: np.ndarray) -> list[dict[str, Any]]:
    """Each quantizable layer's error when quantized to int8: TFLite's QuantizationDebugger runs the
    calibration samples through the int8 model and compares every layer's output with its float value,
    layer by layer. Sorted worst first by RMSE over the quantization step (``rmse_per_step``): how many
    steps of its own grid the layer is off, the converter documentation's measure of sensitivity."""
    import tensorflow as tf

    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative(calibration)
    conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    with quiet():
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=conv, debug_dataset=representative(calibration[:ptq.DEBUG_SAMPLES]))
        debugger.run()
        return ptq.statistics(debugger)


def _mixed(conv: Any, fraction: float, calibration: np.ndarray | None) -> bytes:
    """int8, with the ceil(fraction x layers) most sensitive layers (``layer_errors``) left float."""
    import tensorflow as tf

    if calibration is None:
        raise RecipeError("mixed needs calibration samples")
    try:
        errors = layer_errors(conv, calibration)
        keep = [r["tensor"] for r in errors[:max(1, int(np.ceil(fraction * len(errors))))]]
        log.info("mixed: %d of %d layers kept float: %s", len(keep), len(errors),
                 ", ".join(f"{r['op']} {r['rmse_per_step']:.2f}" for r in errors[:len(keep)]))
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=keep)
        with quiet():
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=representative(calibration[:ptq.DEBUG_SAMPLES]),
                debug_options=options)
            return bytes(debugger.get_nondebug_quantized_model())
    except RecipeError:
        raise
    except Exception as exc:  # noqa: BLE001 - the converter and debugger raise many types
        raise RecipeError(f"mixed precision failed in the TFLite quantization debugger: "
                          f"{last_line(exc)}") from exc


def _mixed_aeq(conv: Any, kind: str, fraction: float, calibration: np.ndarray | None) -> bytes:
    """int8 throughout with ai-edge-quantizer, and int16 activations or int4 weights per layer by each
    layer's sensitivity (:func:`layer_errors`; :func:`edgesdk.tflite.ptq.mixed_aeq`)."""
    if calibration is None:
        raise RecipeError("mixed needs calibration samples")
    try:
        with quiet():
            float_model = bytes(conv.convert())  # before layer_errors sets the converter up for int8
        errors = layer_errors(conv, calibration)
    except Exception as exc:  # noqa: BLE001 - the converter and debugger raise many types
        raise RecipeError(f"mixed precision failed in the TFLite converter: "
                          f"{last_line(exc)}") from exc
    return ptq.mixed_aeq(float_model, errors, kind, fraction, calibration)


MIXED = ("float", "int16x8", "int4")


def _mixed_value(value: str | None) -> tuple[str, float]:
    """``0.1`` (the most sensitive tenth of the layers kept float), ``int16x8:0.1`` (given int16
    activations) or ``int4:0.5`` (the least sensitive half of the convolutions and fully connected
    layers given int4 weights)."""
    kind, _, raw = (value or "").rpartition(":")
    kind = kind or "float"
    if kind not in MIXED:
        raise RecipeError(f"mixed expects F, int16x8:F or int4:F (F a fraction of the layers), e.g. mixed=0.1. "
                          f"Received: mixed={value}")
    what = {"float": "the fraction of layers kept float", "int16x8": "the fraction of layers given int16 "
            "activations", "int4": "the fraction of convolutions and fully connected layers given int4 weights"}
    return kind, fraction("mixed", raw if value is not None else None, what[kind], received=value)


def _int8(value: str | None) -> bool:
    if value not in (None, "io"):
        raise RecipeError(f"int8 takes no value, or int8=io for int8 inputs and outputs. Received: int8={value}")
    return value == "io"


def _convert(source: Any, step: Step, ctx: Context) -> bytes:
    if step.name == "weights":  # weight-only: ai-edge-quantizer on the float conversion
        return ptq.weight_only(convert(source, Step("fp32"), None), step.value)
    return convert(source, step, ctx.calibration)


def quantize(content: bytes, step: Step, ctx: Context) -> bytes:
    """A conversion step on a float .tflite (normalized): the converter's calibration wrapper or
    ai-edge-quantizer (:mod:`edgesdk.tflite.ptq`); on an integer model, int8 keeps it and int8=io
    turns its float interface to int8."""
    found = graph.Graph(content)
    custom, cal = found.custom_ops(), ctx.calibration
    if graph.quantized_activations(found):
        try:
            return graph.int8_interface(content) if step.value else content
        except ModelError as exc:
            raise RecipeError(str(exc)) from exc
    if step.name in ("int8", "int16x8", "mixed") and cal is None:
        raise RecipeError(f"{step.name} needs calibration samples")
    if step.name == "fp32":
        return content
    if step.name == "fp16":
        return graph.cast_fp16(content)
    if step.name == "dynamic":
        return ptq.dynamic(content)
    if step.name == "weights":
        return ptq.weight_only(content, step.value)
    if step.name == "int8":
        return ptq.int8(content, cal, bool(step.value), custom)
    if step.name == "int16x8":
        return ptq.int16x8(content, cal, custom)
    kind, share = step.value
    if kind == "float":
        return ptq.mixed_float(content, share, cal, custom)
    errors, _ = ptq.layer_errors(content, cal, custom)
    return ptq.mixed_aeq(content, errors, kind, share, cal)


def _precision(name: str, help: str, parse: Callable[[str | None], Any] | None = None,
               search: tuple[Any, ...] = (), order: int = 0, tag: str | None = None, calibrated: bool = False,
               dimension: str | None = "precision", forms: frozenset[ModelForm] = CONVERTIBLE) -> None:
    register(Technique(name, StepKind.CONVERT, help, parse or no_value(name), search, dimension=dimension,
                       tag=tag, order=order, forms=forms, calibrated=calibrated, apply=_convert,
                       flatbuffer=quantize))


def _bits(value: str | None) -> int:
    if value not in (None, "int8", "int4", "8", "4"):
        raise RecipeError(f"weights expects int8 or int4 (weight-only quantization), e.g. weights=int4. "
                          f"Received: weights={value}")
    return 4 if value in ("int4", "4") else 8


# The precision dimension of a search lists them in this order (the order of edgesdk.kinds.Precision).
_precision("fp32", "plain float32 conversion", order=0)
_precision("dynamic", "dynamic-range: int8 weights, float activations", order=2)
_precision("fp16", "float16 weights (GPU delegates compute in fp16)", order=1)
_precision("int8", "full-integer int8, calibrated; int8=io also makes inputs/outputs int8", _int8, order=3,
           calibrated=True, forms=CONVERTIBLE | {ModelForm.INTEGER})
_precision("int16x8", "int16 activations, int8 weights, calibrated", order=4, calibrated=True)
_precision("mixed", "mixed precision, int8 with per-layer exceptions chosen by each layer's sensitivity on the "
           "calibration data: mixed=F keeps the fraction F most sensitive layers float; mixed=int16x8:F gives them "
           "int16 activations; mixed=int4:F gives the F least sensitive convolutions and fully connected layers "
           "int4 weights (the last two through ai-edge-quantizer)", _mixed_value, (0.1, 0.25), order=5, tag="float",
           calibrated=True)


_precision("weights", "weight-only quantization: int8 (weights=int8) or int4 (weights=int4) weights stored behind "
           "DEQUANTIZE ops, float arithmetic (through ai-edge-quantizer); not searched by tune", _bits, order=6,
           dimension=None)


def strip_strings(content: bytes) -> bytes:
    """Remove tensor names, the description and signatures with TFLite's own flatbuffer tool."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


register(Technique("strip", StepKind.POST, "drop tensor names and signatures: a smaller file for flash-limited targets",
                   no_value("strip"), (False, True), forms=ANY_FORM,
                   apply=lambda tflite, step, ctx: strip_strings(tflite)))
