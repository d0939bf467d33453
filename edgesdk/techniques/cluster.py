"""Weight clustering through TFMOT (sparsity-preserving after pruning)."""

from __future__ import annotations

from typing import Any

from ..errors import RecipeError
from .training import FineTune, fit, fresh_copy


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
        fit(clustered, tune)
    return tfmot.clustering.keras.strip_clustering(clustered)
