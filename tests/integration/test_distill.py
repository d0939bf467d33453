"""Knowledge distillation: fine-tuning on the float model's softened outputs, without labels."""

from __future__ import annotations

import numpy as np
import pytest

import edgesdk
from edgesdk.errors import RecipeError
from edgesdk.techniques import parse_recipe
from edgesdk.techniques.training import distillation, softened


def test_softened_targets_and_the_loss():
    import tensorflow as tf

    logits = np.array([[4.0, 1.0, 0.0], [0.0, 0.0, 3.0]], np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    # the same softened targets from logits or from probabilities; flatter at a higher temperature
    assert np.allclose(softened(logits, 4.0), softened(probs, 4.0), atol=1e-5)
    assert softened(logits, 4.0).max() < softened(logits, 1.0).max()
    loss, target = distillation(probs, 4.0)
    same = float(tf.reduce_mean(loss(tf.constant(target), tf.constant(probs))))
    other = float(tf.reduce_mean(loss(tf.constant(target), tf.constant(probs[::-1].copy()))))
    assert abs(same) < 1e-4 and other > 0.1  # KL: zero when the student matches the teacher


def test_recipe_rules():
    assert str(parse_recipe("channels=0.5,distill,int8")) == "channels=0.5,distill=4,int8"
    assert str(parse_recipe("distill=2,sparsegpt=0.5")) == "sparsegpt=0.5,distill=2,fp32"
    with pytest.raises(RecipeError, match="combine it with"):
        parse_recipe("distill,int8")
    with pytest.raises(RecipeError, match="temperature"):
        parse_recipe("prune=0.5,distill=-1")


def _one_shot_and_distilled(model, train, val, tmp_path):
    """channels=0.5 without fine-tuning, and with 3 epochs of distillation on the inputs alone."""
    unlabeled = tmp_path / "x_only.npz"
    np.savez(unlabeled, x=np.load(train)["x"])
    one_shot = edgesdk.compress(model, "host", "channels=0.5,fp32", tmp_path / "a.tflite", val, epochs=0)
    distilled = edgesdk.compress(model, "host", "channels=0.5,distill=4,fp32", tmp_path / "b.tflite", val,
                                 train_data=unlabeled, epochs=3)
    return one_shot.quality, distilled.quality


def test_distillation_recovers_a_pruned_model_without_labels(tmp_path):
    """Half the channels of the digits CNN removed; fine-tuned on unlabeled inputs only, by distillation:
    much of the accuracy comes back (evaluated against the held-out labels)."""
    from .test_tune import MODEL, TRAIN, VAL

    one_shot, distilled = _one_shot_and_distilled(MODEL, TRAIN, VAL, tmp_path)
    assert distilled["after"] > one_shot["after"] + 0.3, (one_shot, distilled)
    assert distilled["after"] > 0.85
    with pytest.raises(RecipeError, match="--epochs"):
        edgesdk.compress(MODEL, "host", "channels=0.5,distill,fp32", tmp_path / "c.tflite", VAL, epochs=0)


def test_distillation_on_a_tf_keras_model(h5_path, data_files, tmp_path):
    """The same on a tf_keras .h5 (the conftest CNN): distillation from unlabeled inputs beats no fine-tuning."""
    train, val, _ = data_files
    one_shot, distilled = _one_shot_and_distilled(h5_path, train, val, tmp_path)
    assert distilled["after"] > one_shot["after"] + 0.1, (one_shot, distilled)
