"""Weight clustering through TFMOT (sparsity-preserving after pruning)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import RecipeError, first_line
from ..kinds import ModelForm, StepKind
from ..tflite.graph import Graph
from . import flatbuffer
from .base import REGISTRY, WEIGHT_SPACE, Context, Step, Technique, dimension, register
from .training import FineTune, fine_tune, fresh_copy


def apply(model: Any, clusters: int, tune: FineTune | None, preserve_sparsity: bool) -> Any:
    """Cluster every clusterable layer's weights into ``clusters`` centroids.

    Without data the centroids come from k-means++ on the weights alone; with data the model is
    fine-tuned with the centroids trainable, as TFMOT recommends.
    """
    import tensorflow_model_optimization as tfmot

    params: dict[str, Any] = {
        "number_of_clusters": clusters,
        "cluster_centroids_init": tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS,
    }
    if preserve_sparsity:
        from tensorflow_model_optimization.python.core.clustering.keras.experimental import cluster

        wrap = cluster.cluster_weights
        params["preserve_sparsity"] = True
    else:
        wrap = tfmot.clustering.keras.cluster_weights
    try:
        # cluster_weights mutates the model it is given (and returns None for Keras 3 models).
        clustered = wrap(fresh_copy(model), **params)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise RecipeError(f"cluster: {first_line(exc)}") from exc
    if clustered is None:
        raise RecipeError("cluster: TFMOT returned no model (a Keras 3 model reached it unbridged)")
    if tune is not None and tune.epochs:
        fine_tune(clustered, tune)
    return tfmot.clustering.keras.strip_clustering(clustered)


def _clusters(value: str | None) -> int:
    if value is None or not value.isdigit() or not 2 <= int(value) <= 256:
        raise RecipeError(f"cluster expects a number of clusters from 2 to 256, e.g. cluster=16. "
                          f"Received: cluster={value}")
    return int(value)


def _pruned(ctx: Context) -> bool:
    return any(REGISTRY[s.name].dimension == "prune" for s in ctx.recipe.keras_steps)


def _apply(model: Any, step: Step, ctx: Context) -> Any:
    return apply(model, step.value, ctx.tune, preserve_sparsity=_pruned(ctx))


def kmeans(values: np.ndarray, k: int, iterations: int = 30) -> np.ndarray:
    """1-D k-means: the centroid each value is replaced by (initialised at evenly spaced quantiles,
    which for one dimension converges where k-means++ does, without randomness)."""
    flat = values.ravel().astype(np.float64)
    k = min(k, len(np.unique(flat)))
    centroids = np.quantile(flat, (np.arange(k) + 0.5) / k)
    for _ in range(iterations):
        edges = (centroids[1:] + centroids[:-1]) / 2
        labels = np.searchsorted(edges, flat)
        sums = np.bincount(labels, flat, minlength=k)
        counts = np.bincount(labels, minlength=k)
        moved = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        if np.allclose(moved, centroids):
            break
        centroids = np.sort(moved)
    edges = (centroids[1:] + centroids[:-1]) / 2
    return centroids[np.searchsorted(edges, flat)].reshape(values.shape)


def cluster_flatbuffer(content: bytes, k: int, preserve_sparsity: bool) -> bytes:
    """Replace each layer's weights by ``k`` shared values (k-means per layer); after pruning the zeros
    stay zeros and the other weights share the k values. An int8 weight is clustered in its stored
    integers (each channel's scale already normalizes it), so the tensor holds at most k distinct bytes."""
    graph = Graph(content)
    for layer in flatbuffer.layers(graph):
        w, integer = flatbuffer.values(graph, layer)
        if integer:
            stored = graph.constant(layer.weight)
            assert stored is not None
            w = stored.astype(np.float64)
        if preserve_sparsity:
            nonzero = w != 0
            if nonzero.any():
                w = w.copy()
                w[nonzero] = kmeans(w[nonzero], k)
        else:
            w = kmeans(w, k)
        if integer:
            graph.set_constant(layer.weight, np.clip(np.round(w), -128, 127).astype(np.int8))
        else:
            flatbuffer.store(graph, layer, w.astype(np.float32), integer)
    return graph.to_bytes()


def _flat(content: bytes, step: Step, ctx: Context) -> bytes:
    return cluster_flatbuffer(content, step.value, _pruned(ctx))


dimension("cluster", "cluster counts", option=True)

register(Technique("cluster", StepKind.KERAS, "weight clustering into N shared values (cluster=16)", _clusters,
                   (8, 16, 32), dimension="cluster", bare=True, order=3, fine_tuned=True,
                   forms=WEIGHT_SPACE | {ModelForm.INTEGER}, apply=_apply,
                   flatbuffer=_flat, strength=lambda count: 1.0 / count, improves=frozenset()))
