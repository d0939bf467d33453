"""Structured channel pruning: coupled channels found in the graph, a smaller model rebuilt that runs."""

from __future__ import annotations

import numpy as np
import pytest

import edgesdk
from edgesdk.errors import RecipeError
from edgesdk.techniques import channels, parse_recipe
from edgesdk.tflite.facts import analyze


def _residual_model():
    """conv-bn-relu stem, a residual block (add), a depthwise branch concatenated, flatten, dense."""
    import tf_keras as k

    k.utils.set_random_seed(0)
    inp = k.Input((8, 8, 3))
    stem = k.layers.ReLU()(k.layers.BatchNormalization()(k.layers.Conv2D(16, 3, padding="same")(inp)))
    body = k.layers.Conv2D(16, 3, padding="same", activation="relu")(stem)
    body = k.layers.Conv2D(16, 3, padding="same")(body)
    res = k.layers.Add()([stem, body])
    dw = k.layers.DepthwiseConv2D(3, padding="same")(res)
    side = k.layers.Conv2D(8, 1)(res)
    cat = k.layers.Concatenate()([dw, side])
    pooled = k.layers.MaxPooling2D()(cat)
    head = k.layers.Dense(12, activation="relu")(k.layers.Flatten()(pooled))
    return k.Model(inp, k.layers.Dense(10)(head))


def _filters(model):
    return {layer.name: layer.get_weights()[0].shape for layer in model.layers if type(layer).__name__ in
            ("Conv2D", "Dense", "DepthwiseConv2D")}


def test_coupled_channels_share_one_space_and_outputs_are_frozen():
    model = _residual_model()
    spaces, _, outputs = channels.plan(model)
    names = [layer.name for layer in model.layers]
    conv = [n for n in names if n.startswith("conv2d")]
    stem, body2 = conv[0], conv[2]
    # the residual add ties the stem conv and the second body conv: one space, two producers
    assert spaces.find(outputs[stem][0]) == spaces.find(outputs[body2][0])
    assert sorted(spaces.get(outputs[stem][0]).producers) == sorted([stem, body2])
    last = names[-1]
    assert spaces.get(outputs[last][0]).frozen  # the model's output keeps its 10 classes
    cat = next(n for n in names if n.startswith("concatenate"))
    assert len(outputs[cat]) == 2  # the concatenation lays the two spaces side by side
    flat = next(n for n in names if n.startswith("flatten"))
    assert len(outputs[flat]) == 2 * 16  # repeated for each of the 4x4 positions


def test_half_the_channels_gives_a_smaller_model_that_runs():
    model = _residual_model()
    before = _filters(model)
    smaller = channels.apply(model, ("l2", 0.5), None, None)
    after = _filters(smaller)
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 3)).astype(np.float32)
    assert smaller.predict(x, verbose=0).shape == (4, 10)
    convs = [n for n in before if n.startswith("conv2d")]
    assert [after[n][-1] for n in convs] == [8, 8, 8, 4]  # every conv's filters halved
    assert after[convs[1]][-2] == 8  # and the input channels of its consumers
    dw = next(n for n in before if n.startswith("depthwise"))
    assert after[dw] == (3, 3, 8, 1)
    dense = [n for n in before if n.startswith("dense")]
    assert after[dense[0]] == (16 * 12, 6) and after[dense[1]] == (6, 10)  # flatten: 16 positions x 12 channels
    assert smaller.count_params() < 0.35 * model.count_params()
    # the kept channels are the original ones: the first conv's kept filters are the original's, unchanged
    k0, k1 = model.get_layer(convs[0]).get_weights()[0], smaller.get_layer(convs[0]).get_weights()[0]
    assert all(any(np.array_equal(k1[..., j], k0[..., i]) for i in range(16)) for j in range(8))


def test_l2_keeps_the_strongest_filters():
    model = _residual_model()
    first = model.layers[1]
    kernel, bias = first.get_weights()
    kernel[..., 5] *= 100.0  # filter 5 becomes the strongest of the coupled space by far
    first.set_weights([kernel, bias])
    smaller = channels.apply(model, ("l2", 0.75), None, None)
    kept = smaller.layers[1].get_weights()[0]
    assert any(np.array_equal(kept[..., j], kernel[..., 5]) for j in range(kept.shape[-1]))


def test_sequential_models_and_parsing():
    import tf_keras as k

    seq = k.Sequential([k.Input((20,)), k.layers.Dense(32, activation="relu"), k.layers.Dense(4)])
    smaller = channels.apply(seq, ("l1", 0.5), None, None)
    assert smaller.layers[1].get_weights()[0].shape == (20, 16)
    assert str(parse_recipe("channels=0.5,int8")) == "channels=0.5,int8"
    assert str(parse_recipe("channels=act:0.25,sparsegpt=0.5,fp32")) == "channels=act:0.25,sparsegpt=0.5,fp32"
    for bad, message in (("channels=1.5", "in \\(0, 1\\)"), ("channels=x:0.5", "criterion"),
                         ("channels", "needs a value")):
        with pytest.raises(RecipeError, match=message):
            parse_recipe(bad)
    with pytest.raises(RecipeError, match="activations"):
        channels.apply(seq, ("act", 0.5), None, None)


def test_a_model_with_nothing_to_remove_is_refused():
    import tf_keras as k

    inp = k.Input((20,))
    model = k.Model(inp, k.layers.Dense(4)(inp))  # the only dense layer is the output
    with pytest.raises(RecipeError, match="no channels it can remove"):
        channels.apply(model, ("l2", 0.5), None, None)


@pytest.fixture(params=["keras3", "tf_keras"])
def model_path(request, keras3_path, h5_path):
    return keras3_path if request.param == "keras3" else h5_path


@pytest.mark.parametrize("recipe", ["channels=0.5,int8", "channels=act:0.5,fp32"])
def test_compress_with_channel_pruning(recipe, model_path, data_files, tmp_path):
    train, val, _ = data_files
    dense = analyze(edgesdk.compress(model_path, "host", recipe.split(",")[1], tmp_path / "d.tflite", val,
                                     train_data=train, epochs=0).output)
    result = edgesdk.compress(model_path, "host", recipe, tmp_path / "c.tflite", val, train_data=train, epochs=1)
    pruned = analyze(result.output)
    assert pruned.params < 0.6 * dense.params and pruned.macs < 0.6 * dense.macs
    assert result.quality["after"] > 0.5, result.quality  # fine-tuned one epoch: still a digits classifier


@pytest.mark.slow
@pytest.mark.parametrize("task", ["ic", "vww"])
def test_mlperf_residual_and_depthwise_models(task, mlperf_dir, tmp_path):
    """IC (ResNet-8: residual adds) and VWW (MobileNet: depthwise): half the channels, a quarter the MACs."""
    from benchmarks import mlperf

    t = next(t for t in mlperf.tasks(mlperf_dir) if t.name == task)
    np.savez(tmp_path / "cal.npz", x=mlperf.calibration(t, count=16, seed=0))
    dense = analyze(edgesdk.compress(t.source, "host", "int8", tmp_path / "d.tflite", tmp_path / "cal.npz",
                                     epochs=0).output)
    result = edgesdk.compress(t.source, "host", "channels=0.5,int8", tmp_path / "c.tflite", tmp_path / "cal.npz",
                              epochs=0)
    pruned = analyze(result.output)
    assert pruned.macs < 0.4 * dense.macs and pruned.params < 0.45 * dense.params, (pruned.macs, dense.macs)
    assert [o.shape for o in pruned.outputs] == [o.shape for o in dense.outputs]
