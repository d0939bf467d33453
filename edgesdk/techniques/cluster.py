"""Weight clustering through TFMOT (sparsity-preserving after pruning)."""

from __future__ import annotations

from typing import Any

from ..errors import RecipeError
from ..kinds import StepKind
from .base import REGISTRY, Context, Step, Technique, register
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
        raise RecipeError(f"cluster: {str(exc).splitlines()[0]}") from exc
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


def _apply(model: Any, step: Step, ctx: Context) -> Any:
    pruned = any(REGISTRY[s.name].dimension == "prune" for s in ctx.recipe.keras_steps)
    return apply(model, step.value, ctx.tune, preserve_sparsity=pruned)


register(Technique("cluster", StepKind.KERAS, "weight clustering into N shared values (cluster=16)", _clusters,
                   (8, 16, 32), dimension="cluster", bare=True, order=3, fine_tuned=True, apply=_apply))
