"""Quantization-aware training through TFMOT; conversion to int8 follows."""

from __future__ import annotations

from typing import Any

from ..errors import RecipeError
from ..kinds import StepKind
from .base import Technique, no_value, register
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
        raise RecipeError(f"qat: {str(exc).splitlines()[0]}") from exc
    return fine_tune(qmodel, tune)


register(Technique("qat", StepKind.KERAS, "quantization-aware training, then int8 conversion", no_value("qat"), (True,),
                   order=4, apply=lambda model, step, ctx: apply(model, ctx.tune)))
