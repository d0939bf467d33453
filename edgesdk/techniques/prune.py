"""Magnitude pruning (unstructured sparsity or N:M) through TFMOT, or one-shot without data."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import RecipeError, first_line
from ..kinds import ModelForm, StepKind
from ..tflite.graph import Graph
from . import flatbuffer
from .base import WEIGHT_SPACE, Technique, dimension, register, sparsity, sparsity_of
from .training import FineTune, fine_tune, fresh_copy

log = logging.getLogger(__name__)

PRUNABLE = ("Conv2D", "Dense", "DepthwiseConv2D", "Conv2DTranspose", "Conv1D")
NM_PRUNABLE = ("Conv2D", "Dense")  # TFMOT supports N:M sparsity on these only


def _targets(model: Any, nm: bool) -> list[Any]:
    kinds = NM_PRUNABLE if nm else PRUNABLE
    return [layer for layer in model.layers if type(layer).__name__ in kinds]


def one_shot(model: Any, value: Any) -> Any:
    """Zero the smallest-magnitude kernel weights of each prunable layer (no training data)."""
    model = fresh_copy(model)
    nm = isinstance(value, tuple)
    layers = _targets(model, nm)
    if not layers:
        raise RecipeError("prune found no Conv/Dense layer to prune in this model")
    for layer in layers:
        weights = layer.get_weights()
        kernel = weights[0]
        if nm:
            n, m = value
            # N:M along the input-channel axis, as TFMOT and sparse tensor cores define it.
            k = np.moveaxis(kernel, -2, -1) if kernel.ndim > 2 else kernel.T
            blocks = k.reshape(-1, m) if k.size % m == 0 else None
            if blocks is None:
                raise RecipeError(f"layer {layer.name!r}: {kernel.shape[-2]} input channels are not a "
                                  f"multiple of {m}, so {n}:{m} sparsity cannot apply")
            pruned = (blocks * flatbuffer.nm_keep(np.abs(blocks), n, m)).reshape(k.shape)
            kernel = np.moveaxis(pruned, -1, -2) if kernel.ndim > 2 else pruned.T
        else:
            kernel = kernel * ~flatbuffer.lowest(np.abs(kernel), value)
        layer.set_weights([kernel, *weights[1:]])
    return model


def apply(model: Any, value: Any, tune: FineTune | None) -> Any:
    """Prune ``model`` to ``value`` (a sparsity or an (N, M) tuple), fine-tuning when data is given."""
    if tune is None or tune.epochs == 0:
        return one_shot(model, value)
    import tensorflow_model_optimization as tfmot
    import tf_keras

    nm = isinstance(value, tuple)
    sparsity = 1 - value[0] / value[1] if nm else value
    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0,
                                                     frequency=max(1, tune.steps // 10))
    names = {layer.name for layer in _targets(model, nm)}
    if not names:
        raise RecipeError("prune found no Conv/Dense layer to prune in this model")
    kwargs: dict[str, Any] = {"pruning_schedule": schedule}
    if nm:
        kwargs["sparsity_m_by_n"] = (value[0], value[1])

    def wrap(layer: Any) -> Any:
        return tfmot.sparsity.keras.prune_low_magnitude(layer, **kwargs) if layer.name in names else layer

    try:
        # clone_function receives the layers of a throwaway copy: returning them (wrapped or not)
        # keeps their weights.
        wrapped = tf_keras.models.clone_model(fresh_copy(model), clone_function=wrap)
    except ValueError as exc:
        raise RecipeError(f"prune: {first_line(exc)}") from exc
    fine_tune(wrapped, tune, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(wrapped)


def prune_flatbuffer(content: bytes, value: Any) -> bytes:
    """Zero the smallest-magnitude weights of each layer: a fraction of them, or M-N of each M input
    channels (``value`` an (N, M) tuple; depthwise convolutions and layers whose inputs are not a
    multiple of M stay dense)."""
    graph = Graph(content)
    pruned = 0
    for layer in flatbuffer.layers(graph):
        w, integer = flatbuffer.values(graph, layer)
        if isinstance(value, tuple):
            n, m = value
            if layer.kind == "DEPTHWISE_CONV_2D" or w.shape[-1] % m:
                continue
            w = w * flatbuffer.nm_keep(np.abs(w), n, m)
        else:
            w = np.where(flatbuffer.lowest(np.abs(w), value), 0.0, w).astype(np.float32)
        flatbuffer.store(graph, layer, w, integer)
        pruned += 1
    if not pruned:
        raise RecipeError(f"prune={value[0]}:{value[1]}: no layer has a multiple of {value[1]} input channels"
                          if isinstance(value, tuple) else "prune found no layer to prune")
    return graph.to_bytes()


dimension("prune", "pruning (a bare value is magnitude pruning)", option=True)

register(Technique(
    "prune", StepKind.KERAS, "magnitude pruning to a sparsity (prune=0.5) or N:M (prune=2:4)", sparsity("prune"),
    (0.25, 0.5, 0.75, (2, 4)), dimension="prune", bare=True, order=2, fine_tuned=True,
    forms=WEIGHT_SPACE | {ModelForm.INTEGER}, apply=lambda model, step, ctx: apply(model, step.value, ctx.tune),
    strength=sparsity_of, improves=frozenset(),
    flatbuffer=lambda content, step, ctx: prune_flatbuffer(content, step.value)))
