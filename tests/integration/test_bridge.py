"""The Keras 3 -> tf_keras bridge: same outputs, TFMOT accepts the result, unknown layers named."""

import numpy as np
import pytest

from edgesdk.bridge import to_tf_keras
from edgesdk.errors import ModelError


def _same(k3_model, x):
    bridged = to_tf_keras(k3_model)
    got, want = bridged.predict(x, verbose=0), k3_model.predict(x, verbose=0)
    for g, w in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want], strict=True):
        assert np.abs(g - w).max() < 1e-5
    return bridged


def test_functional_with_branches():
    import keras

    inputs = keras.Input((8, 8, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", kernel_regularizer=keras.regularizers.L2(1e-4))(inputs)
    a = keras.layers.BatchNormalization()(a)
    b = keras.layers.DepthwiseConv2D(3, padding="same")(a)
    c = keras.layers.Concatenate()([keras.layers.Add()([a, b]), a])
    c = keras.layers.GlobalAveragePooling2D()(c)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Dropout(0.2)(c))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 3)).astype(np.float32)
    bridged = _same(model, x)
    import tensorflow_model_optimization as tfmot
    import tf_keras

    assert isinstance(bridged, tf_keras.Model)
    assert tfmot.sparsity.keras.prune_low_magnitude(bridged) is not None


def test_sequential_and_multi_io():
    import keras

    seq = keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(2)])
    _same(seq, np.ones((2, 6), np.float32))
    a, b = keras.Input((4,), name="a"), keras.Input((4,), name="b")
    joined = keras.layers.Concatenate()([a, b])
    model = keras.Model([a, b], [keras.layers.Dense(2)(joined), keras.layers.Dense(3)(joined)])
    bridged = to_tf_keras(model)
    x = np.ones((2, 4), np.float32)
    for g, w in zip(bridged.predict([x, x], verbose=0), model.predict([x, x], verbose=0), strict=True):
        assert np.abs(g - w).max() < 1e-5


def test_subclassed_model_is_refused():
    import keras

    class Net(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ModelError, match="subclassed model of class 'Net'"):
        to_tf_keras(Net())
