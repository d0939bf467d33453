"""Compression techniques and recipes.

A recipe is a comma-separated list of steps, e.g. ``prune=0.5,cluster=16,int8``. Keras-level steps
(channels, lowrank, one pruning step, cluster, qat; distill changes how they fine-tune) transform the
model in that order; one conversion step (a precision: fp32, dynamic, fp16, int8, int16x8, mixed,
weights, each its own module on :mod:`.conversion`) fixes the precision of the .tflite (fp32 if none is
named, int8 after qat); post steps (strip) rewrite the flatbuffer.

Each technique is one module that registers a :class:`Technique` (:mod:`.base`): its parser, search
values and dimension, order, the model forms it accepts, ``apply(model, step, ctx)`` and, where it
accepts a .tflite, ``flatbuffer(content, step, ctx)`` (the weight-space ones build on
:mod:`.flatbuffer`). A new technique is a module plus its line below.
"""

from __future__ import annotations

# isort: off
# Each module registers its techniques; the order here is the order `edgesdk techniques` lists them.
from . import channels, lowrank, prune, oneshot, cluster, distill, qat  # noqa: F401
from . import fp32, dynamic, fp16, int8, int16x8, mixed, weights, strip  # noqa: F401
# isort: on
from .base import (
    ANY_FORM,
    CONVERTIBLE,
    DIMENSIONS,
    FLATBUFFER_FORMS,
    KERAS_ONLY,
    REGISTRY,
    Context,
    Dimension,
    PrecisionSpec,
    Recipe,
    Step,
    Technique,
    dimension,
    fraction,
    listed,
    parse_recipe,
    parse_step,
    register,
    techniques,
)

__all__ = ["ANY_FORM", "CONVERTIBLE", "DIMENSIONS", "Dimension", "dimension", "listed", "FLATBUFFER_FORMS",
            "KERAS_ONLY", "REGISTRY", "Context", "PrecisionSpec", "Recipe", "Step", "Technique", "fraction",
           "parse_recipe", "parse_step", "register", "techniques"]
