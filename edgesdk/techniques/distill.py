"""Knowledge distillation: the fine-tuning of the recipe's other steps fits the float model's outputs
softened at a temperature (Hinton et al.; the loss is in :mod:`.training`), labels unused."""

from __future__ import annotations

import dataclasses

from ..errors import RecipeError
from ..kinds import StepKind
from .base import Context, Step, Technique, listed, register, techniques


def _temperature(value: str | None) -> float:
    if value is None:
        return 4.0
    try:
        t = float(value)
    except ValueError:
        raise RecipeError(f"distill expects a temperature, e.g. distill=4. Received: distill={value}") from None
    if not 0.0 < t <= 100.0:
        raise RecipeError(f"distill temperature must be in (0, 100]. Received: distill={value}")
    return t


def _prepare(step: Step, ctx: Context) -> None:
    if ctx.tune is None:
        raise RecipeError("distill fine-tunes on the float model's outputs: give --data or --train-data, "
                          "and --epochs of 1 or more")
    ctx.tune = dataclasses.replace(ctx.tune, y=None, temperature=step.value)


def _with_others(keras_steps: list[Step], conversions: list[Step], recipe: str) -> None:
    if not any(s.name != "distill" for s in keras_steps):
        names = [t.name for t in techniques(StepKind.KERAS) if t.name != "distill" and t.transforms]
        raise RecipeError(f"distill is how the other steps are fine-tuned: combine it with {listed(names)} "
                          "(e.g. channels=0.5,distill=4,int8)")


register(Technique("distill", StepKind.KERAS, "knowledge distillation: the fine-tuning of the other steps fits the "
                   "float model's outputs softened at temperature T (distill=4), labels unused: unlabeled data is "
                   "enough", _temperature, order=5, prepare=_prepare, check=_with_others))
