"""Quantization-aware training through TFMOT; conversion to int8 follows."""

from __future__ import annotations

from typing import Any

from ..errors import RecipeError, first_line
from ..kinds import StepKind
from .base import Step, Technique, no_value, register
from .training import FineTune, fine_tune, fresh_copy


def apply(model: Any, tune: FineTune | None) -> Any:
    """Insert fake-quantization and fine-tune; needs data (labels, or inputs to distil from)."""
    import tensorflow_model_optimization as tfmot

    if tune is None or tune.epochs == 0:
        raise RecipeError("qat needs training data: pass --data with at least inputs 'x' "
                          "(labels 'y' optional) and epochs >= 1")
    try:
        qmodel = tfmot.quantization.keras.quantize_model(fresh_copy(model))
    except (ValueError, TypeError, RuntimeError) as exc:
        raise RecipeError(f"qat: {first_line(exc)}") from exc
    return fine_tune(qmodel, tune)


def _int8_only(keras_steps: list[Step], conversions: list[Step], recipe: str) -> None:
    if conversions and conversions[0].name != "int8":
        raise RecipeError(f"qat produces an int8 model; it cannot be combined with {conversions[0].name} "
                          "(16x8 conversion of QAT models is not supported by the TFLite converter)")


register(Technique("qat", StepKind.KERAS, "quantization-aware training, then int8 conversion", no_value("qat"),
                   order=4, apply=lambda model, step, ctx: apply(model, ctx.tune), check=_int8_only, implies="int8"))
