"""mixed: int8 with per-layer exceptions chosen by each layer's sensitivity on the calibration data.

``mixed=F`` keeps the fraction F most sensitive layers float (the converter's QuantizationDebugger);
``mixed=int16x8:F`` gives them int16 activations; ``mixed=int4:F`` gives the F least sensitive
convolutions and fully connected layers int4 weights (the last two through ai-edge-quantizer).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .._native import quiet
from ..errors import RecipeError
from ..profiles import Profile
from ..tflite import ptq
from ..tflite.ptq import last_line
from .base import Context, PrecisionSpec, Step, fraction
from .conversion import converter_for, custom_ops, keras_layer_errors, precision, representative, samples

log = logging.getLogger(__name__)
KINDS = ("float", "int16x8", "int4")
_NEEDS = {"float": ("int8", "fp32"), "int16x8": ("int8", "int16x8"), "int4": ("int8",)}
_SHOWN = {"float": "int8/float", "int16x8": "int8/int16x8", "int4": "int8 with int4-weight"}


def _keep_float(conv: Any, share: float, calibration: np.ndarray) -> bytes:
    """int8, with the ceil(share x layers) most sensitive layers left float."""
    import tensorflow as tf

    try:
        errors = keras_layer_errors(conv, calibration)
        keep = [r.tensor for r in errors[:max(1, int(np.ceil(share * len(errors))))]]
        log.info("mixed: %d of %d layers kept float: %s", len(keep), len(errors),
                 ", ".join(f"{r.op} {r.rmse_per_step:.2f}" for r in errors[:len(keep)]))
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=keep)
        with quiet():
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=representative(calibration[:ptq.DEBUG_SAMPLES]),
                debug_options=options)
            return bytes(debugger.get_nondebug_quantized_model())
    except RecipeError:
        raise
    except Exception as exc:  # noqa: BLE001 - the converter and debugger raise many types
        raise RecipeError(f"mixed precision failed in the TFLite quantization debugger: {last_line(exc)}") from exc


def _keras(source: Any, step: Step, ctx: Context) -> bytes:
    kind, share = step.value
    calibration = samples(step, ctx)
    conv = converter_for(source)
    if kind == "float":
        return _keep_float(conv, share, calibration)
    try:
        with quiet():
            float_model = bytes(conv.convert())  # before the errors set the converter up for int8
        errors = keras_layer_errors(conv, calibration)
    except Exception as exc:  # noqa: BLE001 - the converter and debugger raise many types
        raise RecipeError(f"mixed precision failed in the TFLite converter: {last_line(exc)}") from exc
    return ptq.mixed_aeq(float_model, errors, kind, share, calibration)


def _tflite(content: bytes, step: Step, ctx: Context) -> bytes:
    kind, share = step.value
    calibration, custom = samples(step, ctx), custom_ops(content)
    if kind == "float":
        return ptq.mixed_float(content, share, calibration, custom)
    return ptq.mixed_aeq(content, ptq.layer_errors(content, calibration, custom), kind, share, calibration)


def _value(value: str | None) -> tuple[str, float]:
    """``0.1`` (the most sensitive tenth of the layers kept float), ``int16x8:0.1`` (given int16
    activations) or ``int4:0.5`` (the least sensitive half of the convolutions and fully connected
    layers given int4 weights)."""
    kind, _, raw = (value or "").rpartition(":")
    kind = kind or "float"
    if kind not in KINDS:
        raise RecipeError(f"mixed expects F, int16x8:F or int4:F (F a fraction of the layers), e.g. mixed=0.1. "
                          f"Received: mixed={value}")
    what = {"float": "the fraction of layers kept float", "int16x8": "the fraction of layers given int16 "
            "activations", "int4": "the fraction of convolutions and fully connected layers given int4 weights"}
    return kind, fraction("mixed", raw if value is not None else None, what[kind], received=value)


def _problem(profile: Profile, value: Any, shown: str) -> str | None:
    """int8 with float layers needs a target that runs both; with int16 activations int8 and int16x8;
    with int4 weights int8 on LiteRT, whose CPU kernels unpack int4 weights (``value`` None: a mixed
    model, int8 with float layers)."""
    kind = value[0] if value else "float"
    needs = set(_NEEDS[kind])
    if not needs <= set(profile.precisions):
        return (f"profile {profile.name!r} ({profile.compute_class}) cannot run mixed {_SHOWN[kind]} models: it "
                f"runs {', '.join(profile.precisions)}, and {shown} needs {' and '.join(sorted(needs))}")
    if kind == "int4" and profile.runtime != "litert":
        return (f"profile {profile.name!r} runs {profile.runtime}, which has no int4-weight kernels; "
                f"{shown} needs LiteRT on a CPU")
    return None


def _bits(value: tuple[str, float]) -> float:
    """int8 weights but for the share F: float32 (mixed=F), int4 (mixed=int4:F) or int8 (int16x8 activations)."""
    tag, share = value
    return 8.0 + share * {"float": 24.0, "int4": -4.0}.get(tag, 0.0)


precision("mixed", "mixed precision, int8 with per-layer exceptions chosen by each layer's sensitivity on the "
          "calibration data: mixed=F keeps the fraction F most sensitive layers float; mixed=int16x8:F gives them "
          "int16 activations; mixed=int4:F gives the F least sensitive convolutions and fully connected layers "
          "int4 weights (the last two through ai-edge-quantizer)", keras=_keras, tflite=_tflite, parse=_value,
          search=(0.1, 0.25, ("int4", 0.5)), order=5, tag="float", calibrated=True,
          spec=PrecisionSpec("int8", cost="int8", problem=_problem, bits=_bits))
