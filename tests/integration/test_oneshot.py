"""wanda and sparsegpt recipes on real models: Keras 3 and tf_keras, convolutions, depthwise, residual adds."""

from __future__ import annotations

import numpy as np
import pytest

import edgesdk
from edgesdk.errors import RecipeError
from edgesdk.tflite.facts import analyze
from tests.tflite_weights import kernels


@pytest.fixture(params=["keras3", "tf_keras"])
def model_path(request, keras3_path, h5_path):
    return keras3_path if request.param == "keras3" else h5_path


@pytest.mark.parametrize("recipe", ["wanda=0.5", "sparsegpt=0.5", "sparsegpt=2:4"])
def test_recipe_prunes_every_conv_and_dense_kernel(recipe, model_path, data_files, tmp_path):
    train, val, _ = data_files
    out = tmp_path / "out.tflite"
    result = edgesdk.compress(model_path, "host", f"{recipe},fp32", out, val, train_data=train, epochs=0)
    found = kernels(out.read_bytes())
    assert found and analyze(out).precision == "fp32"
    for op, k in found:
        if recipe.endswith("2:4"):
            if k.shape[-1] % 4 == 0:  # input channels last in a TFLite kernel; N:M along them
                assert ((k.reshape(-1, 4) == 0).sum(axis=1) >= 2).all(), op
        else:
            assert np.mean(k == 0) >= 0.44, (op, float(np.mean(k == 0)))  # 4 of 9 in a 3x3x1 filter
    q = result.quality
    assert q["after"] >= q["before"] - 0.25, q


def test_second_order_beats_magnitude_without_fine_tuning(tmp_path):
    """The bundled digits CNN (conv, batch norm, pooling, dense), 50 % of every kernel, no training:
    sparsegpt's weight update keeps far more accuracy than magnitude pruning; wanda at least as much."""
    from .test_tune import MODEL, TRAIN, VAL

    accuracy = {}
    for recipe in ("prune=0.5", "wanda=0.5", "sparsegpt=0.5"):
        result = edgesdk.compress(MODEL, "host", f"{recipe},fp32", tmp_path / "m.tflite", VAL, train_data=TRAIN,
                                  epochs=0)
        accuracy[recipe.split("=")[0]] = result.quality["after"]
    assert accuracy["sparsegpt"] > accuracy["prune"] + 0.1, accuracy
    assert accuracy["wanda"] >= accuracy["prune"] - 0.01, accuracy


def test_fine_tuning_keeps_the_masks(keras3_path, data_files, tmp_path):
    train, val, _ = data_files
    out = tmp_path / "ft.tflite"
    edgesdk.compress(keras3_path, "host", "sparsegpt=0.5,fp32", out, val, train_data=train, epochs=1)
    for op, k in kernels(out.read_bytes()):
        assert np.mean(k == 0) >= 0.44, (op, float(np.mean(k == 0)))


def test_depthwise_convolutions_are_pruned_per_channel(data_files, tmp_path):
    import tf_keras as k

    train, val, _ = data_files
    x = inp = k.Input((8, 8, 1))
    x = k.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = k.layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2, activation="relu")(x)
    x = k.layers.Conv2D(16, 1, activation="relu")(x)
    model = k.Model(inp, k.layers.Dense(10)(k.layers.GlobalAveragePooling2D()(x)))
    src = tmp_path / "dw.h5"
    model.save(src)
    from edgesdk.techniques import oneshot
    from edgesdk.techniques.training import fresh_copy

    calibration = np.load(train)["x"][:64].reshape(-1, 8, 8, 1).astype(np.float32)
    pruned = oneshot.apply(fresh_copy(model), "sparsegpt", 0.5, calibration, None)
    kernel = pruned.layers[2].get_weights()[0]  # (3, 3, 8, 2): 16 filters of 9 weights
    assert 0.49 < (kernel == 0).mean() < 0.7  # half, and the filters of channels the ReLU never opens
    assert (kernel == 0).reshape(9, -1).sum(axis=0).std() > 0  # filters that matter keep more weights
    # N:M runs along input channels: the depthwise filters (one input channel each) and the first
    # convolution (one input channel) stay dense; the 1x1 convolution (8 inputs) and the dense layer get it
    nm = oneshot.apply(fresh_copy(model), "wanda", (2, 4), calibration, None)
    assert (nm.layers[1].get_weights()[0] != 0).all() and (nm.layers[2].get_weights()[0] != 0).all()
    pointwise = nm.layers[3].get_weights()[0]  # (1, 1, 8, 16)
    assert ((np.moveaxis(pointwise, 2, -1).reshape(-1, 4) == 0).sum(axis=1) == 2).all()
    with pytest.raises(RecipeError, match="no layer has a multiple of 3"):
        oneshot.apply(fresh_copy(model), "wanda", (1, 3), calibration, None)
    out = tmp_path / "dw.tflite"
    result = edgesdk.compress(src, "host", "wanda=0.5,fp32", out, val, train_data=train, epochs=0)
    assert result.quality is not None


def test_one_shot_methods_need_calibration_data(keras3_path, tmp_path):
    with pytest.raises(RecipeError, match="calibration activations"):
        edgesdk.compress(keras3_path, "host", "sparsegpt=0.5,fp32", tmp_path / "x.tflite")
    assert not (tmp_path / "x.tflite").exists()


def test_a_recipe_prunes_once():
    from edgesdk.techniques import parse_recipe

    with pytest.raises(RecipeError, match="prunes once"):
        parse_recipe("prune=0.5,sparsegpt=0.5,int8")
    with pytest.raises(RecipeError, match="wanda sparsity must be in"):
        parse_recipe("wanda=1.5")
    assert str(parse_recipe("sparsegpt=2:4,cluster=16,int8")) == "sparsegpt=2:4,cluster=16,int8"


@pytest.mark.slow
def test_residual_model_ic_keeps_more_with_sparsegpt(mlperf_dir, tmp_path):
    """MLPerf Tiny IC (ResNet-8, residual adds): at 50 % sparsity without fine-tuning, sparsegpt agrees
    with the float model's top-1 more often than magnitude pruning."""
    from benchmarks import mlperf

    ic = next(t for t in mlperf.tasks(mlperf_dir) if t.name == "ic")
    np.savez(tmp_path / "val.npz", x=mlperf.calibration(ic, count=64, seed=1))
    np.savez(tmp_path / "train.npz", x=mlperf.calibration(ic, count=64, seed=0))
    agreement = {}
    for recipe in ("prune=0.5", "sparsegpt=0.5"):
        result = edgesdk.compress(ic.source, "host", f"{recipe},fp32", tmp_path / "ic.tflite", tmp_path / "val.npz",
                                  train_data=tmp_path / "train.npz", epochs=0)
        agreement[recipe] = result.quality["top1_agreement"]
    assert agreement["sparsegpt=0.5"] > agreement["prune=0.5"], agreement


def test_entropy_coded_size_shows_what_clustering_and_sparsity_save(keras3_path, data_files, tmp_path):
    """Raw .tflite bytes barely move with clustering or sparsity; the ideal entropy-coded size of the
    weights does."""
    train, val, _ = data_files
    sizes = {}
    for recipe in ("fp32", "cluster=16,fp32", "sparsegpt=0.75,fp32", "int8"):
        r = edgesdk.compress(keras3_path, "host", recipe, tmp_path / "e.tflite", val, train_data=train, epochs=0)
        assert 0 < r.weight_entropy_bytes <= r.weight_bytes < r.model_bytes
        sizes[recipe] = r
    plain, clustered, sparse = sizes["fp32"], sizes["cluster=16,fp32"], sizes["sparsegpt=0.75,fp32"]
    assert plain.weight_entropy_bytes > 0.9 * plain.weight_bytes  # distinct floats: nothing to gain
    assert abs(clustered.weight_bytes - plain.weight_bytes) < 0.05 * plain.weight_bytes
    assert clustered.weight_entropy_bytes < 0.25 * plain.weight_entropy_bytes  # 16 values: about 4 bits each
    assert sparse.weight_entropy_bytes < 0.6 * plain.weight_entropy_bytes
    assert sizes["int8"].weight_entropy_bytes < 0.35 * plain.weight_entropy_bytes
