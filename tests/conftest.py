"""Shared fixtures: small real models in every input format, real data, an isolated results store."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny"


def _load_example_module():  # examples/ is not a package: load make.py by path
    spec = importlib.util.spec_from_file_location("digits_make", ROOT / "examples" / "digits" / "make.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def isolated_store(tmp_path, monkeypatch):
    """Every test gets its own SQLite store; nothing touches the user's data directory."""
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    monkeypatch.setenv("EDGESDK_STORE", url)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # calibrations of shipped profiles
    return url


@pytest.fixture(scope="session")
def digits():
    return _load_example_module().digits_split(seed=0)


@pytest.fixture(scope="session")
def data_files(tmp_path_factory, digits):
    """(train.npz, val.npz): 400 training and 120 validation digits."""
    x_train, y_train, x_val, y_val = digits
    d = tmp_path_factory.mktemp("data")
    np.savez(d / "train.npz", x=x_train[:400], y=y_train[:400])
    np.savez(d / "val.npz", x=x_val[:120], y=y_val[:120])
    np.savez(d / "val_x_only.npz", x=x_val[:120])
    return d / "train.npz", d / "val.npz", d / "val_x_only.npz"


def _layers(lib):
    """The same small CNN in Keras 3 or tf_keras: conv-BN-ReLU as TFMOT's QAT expects."""
    inputs = lib.Input((8, 8, 1), name="image")
    h = lib.layers.Conv2D(8, 3, padding="same")(inputs)
    h = lib.layers.BatchNormalization()(h)
    h = lib.layers.ReLU()(h)
    h = lib.layers.MaxPooling2D()(h)
    h = lib.layers.Conv2D(16, 3, padding="same", activation="relu")(h)
    h = lib.layers.Flatten()(h)
    outputs = lib.layers.Dense(10, activation="softmax")(h)
    return lib.Model(inputs, outputs)


def _train(model, digits, epochs=4):
    x_train, y_train, _, _ = digits
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="session")
def keras3_path(tmp_path_factory, digits):
    import keras

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("k3") / "cnn.keras"
    _train(_layers(keras), digits).save(path)
    return path


@pytest.fixture(scope="session")
def tf_keras_model(digits):
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    return _train(_layers(tf_keras), digits)


@pytest.fixture(scope="session")
def h5_path(tmp_path_factory, tf_keras_model):
    path = tmp_path_factory.mktemp("h5") / "cnn.h5"
    tf_keras_model.save(path)
    return path


@pytest.fixture(scope="session")
def savedmodel_path(tmp_path_factory, tf_keras_model):
    path = tmp_path_factory.mktemp("sm") / "cnn_savedmodel"
    tf_keras_model.save(path, save_format="tf")
    return path


@pytest.fixture(scope="session")
def tflite_path(tmp_path_factory, keras3_path):
    import edgesdk

    out = tmp_path_factory.mktemp("tfl") / "cnn_int8.tflite"
    edgesdk.compress(keras3_path, "host", "int8", out)
    return out


@pytest.fixture
def mlperf_dir():
    if not MLPERF.is_dir():
        pytest.skip(f"MLPerf Tiny models not found at {MLPERF} (../shared is absent)")
    return MLPERF


OLD_RUNTIME_PYTHON = ROOT / os.environ.get("EDGESDK_OLD_RUNTIME_VENV", ".venv-tflite214") / "bin" / "python"


@pytest.fixture(scope="session")
def old_runtime_python():
    """A python with tflite-runtime 2.14 and numpy<2: an older device runtime (scripts/install.sh --dev)."""
    if not OLD_RUNTIME_PYTHON.is_file():
        pytest.skip(f"no tflite-runtime 2.14 environment at {OLD_RUNTIME_PYTHON}; run scripts/install.sh --dev")
    return str(OLD_RUNTIME_PYTHON)


@pytest.fixture(scope="session")
def newer_ops_path(tmp_path_factory):
    """A TF 2.21 dynamic-range model with per-channel dense weights: FULLY_CONNECTED version 12, which
    tflite-runtime 2.14 has no kernel for."""
    import tensorflow as tf
    import tf_keras

    from edgesdk.tflite.facts import analyze

    model = tf_keras.Sequential([tf_keras.layers.Input((64,)), tf_keras.layers.Dense(32, activation="relu"),
                                 tf_keras.layers.Dense(10)])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    out = tmp_path_factory.mktemp("newops") / "dense_dynamic.tflite"
    out.write_bytes(converter.convert())
    assert ("FULLY_CONNECTED", 12) in {(op.op, op.version) for op in analyze(out).layers}
    return out


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server (tests/pg.py), or a skip saying why none can start here."""
    from tests import pg

    reason = pg.available()
    if reason:
        pytest.skip(reason)
    server = pg.start()
    yield server
    server.stop()
