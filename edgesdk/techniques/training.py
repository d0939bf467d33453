"""Fine-tuning shared by the training-based techniques (pruning, clustering, QAT).

With labels, the model is fine-tuned on them. With inputs only, it is fine-tuned to reproduce the
original model's outputs (self-distillation), which keeps fidelity without labelled data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


DEFAULT_EPOCHS = 2   # fine-tuning epochs per compression: compress, tune and suites alike


@dataclass(frozen=True)
class FineTune:
    """Data and settings for fine-tuning. ``y`` None means: distil from ``teacher`` outputs."""

    x: np.ndarray
    y: np.ndarray | None
    teacher: np.ndarray
    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 32
    learning_rate: float = 1e-4
    seed: int = 0
    temperature: float | None = None   # set: knowledge distillation from the teacher's softened outputs

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise ValueError(f"epochs must be >= 0. Received: {self.epochs}")
        if len(self.x) == 0:
            raise ValueError("fine-tuning needs at least one sample")

    @property
    def steps(self) -> int:
        return max(1, -(-len(self.x) // self.batch_size)) * max(self.epochs, 1)


def fresh_copy(model: Any) -> Any:
    """A new tf_keras model with the same graph and weights (TFMOT mutates what it is given)."""
    import tf_keras

    clone = tf_keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def batch_norm_gains(model: Any) -> dict[str, np.ndarray]:
    """Layer name -> gamma / sqrt(moving variance + eps) of the BatchNormalization that is its only
    consumer: the per-output scale that layer's errors are multiplied by."""
    consumers: dict[str, list[str]] = {}
    for entry in model.get_config()["layers"]:
        for node in entry.get("inbound_nodes") or []:
            for ref in node:
                consumers.setdefault(ref[0], []).append(entry["name"])
    gains = {}
    for name, users in consumers.items():
        bn = model.get_layer(users[0]) if len(users) == 1 else None
        if bn is None or type(bn).__name__ != "BatchNormalization":
            continue
        weights = {w.name.split("/")[-1].split(":")[0]: w.numpy() for w in bn.weights}
        gamma = weights.get("gamma", np.ones_like(weights["moving_variance"]))
        gains[name] = np.abs(gamma) / np.sqrt(weights["moving_variance"] + bn.epsilon)
    return gains


def _outputs_are_probabilities(teacher: np.ndarray) -> bool:
    t = teacher.reshape(len(teacher), -1)
    return bool(t.shape[1] > 1 and (t >= -1e-6).all() and np.allclose(t.sum(axis=1), 1.0, atol=1e-3))


def softened(outputs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) of a classifier's outputs (logits, or probabilities whose log is taken)."""
    logits = np.log(np.clip(outputs, 1e-7, 1.0)) if _outputs_are_probabilities(outputs) else outputs
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def distillation(teacher: np.ndarray, temperature: float) -> tuple[Any, np.ndarray]:
    """Hinton et al.'s distillation loss: T^2 KL(teacher_T || student_T), with the targets it fits.

    Labels play no part: only the teacher's outputs on the (unlabeled) inputs."""
    import tensorflow as tf

    from_probs = _outputs_are_probabilities(teacher)

    def loss(target: Any, output: Any) -> Any:
        logits = tf.math.log(tf.clip_by_value(output, 1e-7, 1.0)) if from_probs else output
        log_student = tf.nn.log_softmax(logits / temperature, axis=-1)
        log_target = tf.math.log(tf.clip_by_value(target, 1e-12, 1.0))
        return tf.reduce_sum(target * (log_target - log_student), axis=-1) * temperature ** 2

    return loss, softened(teacher, temperature)


def fine_tune(model: Any, tune: FineTune, callbacks: list[Any] | None = None) -> Any:
    """Compile ``model`` with a loss that fits the data, and train it for ``tune.epochs`` epochs."""
    import tensorflow as tf
    import tf_keras

    tf.random.set_seed(tune.seed)
    loss: Any
    if tune.temperature is not None and tune.teacher.ndim == 2 and tune.teacher.shape[1] > 1:
        loss, target = distillation(tune.teacher, tune.temperature)
    elif tune.y is not None and np.issubdtype(tune.y.dtype, np.integer) and tune.teacher.ndim == 2:
        loss = tf_keras.losses.SparseCategoricalCrossentropy(
            from_logits=not _outputs_are_probabilities(tune.teacher))
        target = tune.y
    elif tune.y is not None:
        loss, target = tf_keras.losses.MeanSquaredError(), tune.y
    else:
        loss, target = tf_keras.losses.MeanSquaredError(), tune.teacher
    model.compile(optimizer=tf_keras.optimizers.Adam(tune.learning_rate), loss=loss)
    if tune.epochs:
        log.info("fine-tuning for %d epoch(s) on %d samples", tune.epochs, len(tune.x))
        model.fit(tune.x, target, epochs=tune.epochs, batch_size=tune.batch_size, shuffle=True,
                  callbacks=callbacks or [], verbose=0)
    return model
