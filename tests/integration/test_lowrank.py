"""Low-rank factorization: SVD for Dense, Tucker-2 for Conv2D, on real tf_keras graphs and through compress."""

from __future__ import annotations

import numpy as np
import pytest

import edgesdk
from edgesdk.errors import RecipeError
from edgesdk.techniques import lowrank, parse_recipe
from edgesdk.tflite.facts import analyze


def test_ranks_fit_the_parameter_budget():
    assert lowrank.svd_rank(256, 128, 0.5) == 42          # 42 * 384 = 16128 <= 16384
    assert lowrank.svd_rank(3, 4, 0.5) == 0                # even rank 1 (7 numbers) is over half of 12
    r1, r2 = lowrank.tucker_ranks(3, 3, 64, 64, 0.5)
    assert 0 < r1 < 64 and r1 * 64 + 9 * r1 * r2 + r2 * 64 <= 0.5 * 9 * 64 * 64
    assert lowrank.tucker_ranks(3, 3, 3, 16, 0.5) == (0, 0)  # a 3-channel stem: nothing smaller
    assert str(parse_recipe("lowrank=0.5,int8")) == "lowrank=0.5,int8"
    with pytest.raises(RecipeError, match="in \\(0, 1\\)"):
        parse_recipe("lowrank=2")


def test_ranks_by_retained_energy():
    assert lowrank.energy_rank(np.array([10.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]), 0.9) == lowrank.MIN_RANK
    values = np.array([4.0, 3.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5])  # squares: 16 9 4 4 1 1 1 1 .25 .25
    assert lowrank.energy_rank(values, 0.88) == 4   # 33 of 37.5 is exactly 0.88
    assert lowrank.energy_rank(values, 0.89) == 5   # 34 of 37.5 is 0.907
    assert lowrank.energy_rank(values, 1.0) == 10
    assert str(parse_recipe("lowrank=energy:0.9,int8")) == "lowrank=energy:0.9,int8"
    assert parse_recipe("lowrank=energy:0.9").keras_steps[0].value == ("energy", 0.9)
    with pytest.raises(RecipeError, match="energy"):
        parse_recipe("lowrank=svd:0.9")
    with pytest.raises(RecipeError, match="in \\(0, 1\\)"):
        parse_recipe("lowrank=energy:1.5")


def _exactly_low_rank_model():
    """Dense and conv kernels that are exactly low rank, so the factorization must reproduce the model."""
    import tf_keras as k

    rng = np.random.default_rng(0)
    inp = k.Input((8, 8, 32))
    conv = k.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv")
    x = k.layers.Flatten()(conv(inp))
    dense = k.layers.Dense(64, activation="relu", name="hidden")
    head = k.layers.Dense(3, name="head")  # 64x3: no rank below 3 is smaller, so it stays
    model = k.Model(inp, head(dense(x)))
    u_in, u_out = rng.standard_normal((32, 4)), rng.standard_normal((32, 4))
    core = rng.standard_normal((3, 3, 4, 4))
    conv.set_weights([np.einsum("hwab,ia,ob->hwio", core, u_in, u_out).astype(np.float32) * 0.1,
                      rng.standard_normal(32).astype(np.float32)])
    low = (rng.standard_normal((8 * 8 * 32, 3)) @ rng.standard_normal((3, 64))).astype(np.float32) * 0.01
    dense.set_weights([low, np.zeros(64, np.float32)])
    return model


def test_an_exactly_low_rank_model_is_reproduced_with_fewer_parameters():
    model = _exactly_low_rank_model()
    smaller = lowrank.apply(model, 0.3, None)
    x = np.random.default_rng(1).standard_normal((4, 8, 8, 32)).astype(np.float32)
    expected, got = model.predict(x, verbose=0), smaller.predict(x, verbose=0)
    assert np.allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    assert smaller.count_params() < 0.4 * model.count_params()
    names = [layer.name for layer in smaller.layers]
    assert {"conv_lowrank_in", "conv_lowrank_core", "conv", "hidden_lowrank", "hidden", "head"} <= set(names)
    assert "head_lowrank" not in names
    assert smaller.get_layer("conv").get_config()["activation"] == "relu"  # the chain ends as the layer did
    assert smaller.get_layer("conv_lowrank_core").get_config()["kernel_size"] == (3, 3)


def test_energy_rule_finds_the_true_ranks_and_leaves_full_rank_layers():
    """An exactly low-rank model at 99.9 % energy: ranks 4 (Tucker-2, the true rank) and 4 for the rank-3
    dense (MIN_RANK), so it is reproduced; a random full-rank hidden layer would need nearly all its
    singular values and stays as it is."""
    import tf_keras as k

    model = _exactly_low_rank_model()
    smaller = lowrank.apply(model, ("energy", 0.999), None)
    x = np.random.default_rng(1).standard_normal((4, 8, 8, 32)).astype(np.float32)
    expected, got = model.predict(x, verbose=0), smaller.predict(x, verbose=0)
    assert np.allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())
    assert smaller.get_layer("conv_lowrank_in").get_config()["filters"] == 4
    assert smaller.get_layer("hidden_lowrank").get_config()["units"] == lowrank.MIN_RANK
    inp = k.Input((64,))
    full = k.Model(inp, k.layers.Dense(3, name="head")(k.layers.Dense(64, name="wide")(inp)))
    with pytest.raises(RecipeError, match="energy:0.99"):
        lowrank.apply(full, ("energy", 0.99), None)


def test_nothing_to_factorize_is_refused():
    import tf_keras as k

    inp = k.Input((4,))
    with pytest.raises(RecipeError, match="no Dense or Conv2D"):
        lowrank.apply(k.Model(inp, k.layers.Dense(3)(inp)), 0.5, None)


@pytest.fixture(params=["keras3", "tf_keras"])
def model_path(request, keras3_path, h5_path):
    return keras3_path if request.param == "keras3" else h5_path


def test_compress_with_lowrank(model_path, data_files, tmp_path):
    train, val, _ = data_files
    dense = analyze(edgesdk.compress(model_path, "host", "fp32", tmp_path / "d.tflite", val, epochs=0).output)
    result = edgesdk.compress(model_path, "host", "lowrank=0.5,int8", tmp_path / "l.tflite", val,
                              train_data=train, epochs=1)
    report = analyze(result.output)
    assert report.params < dense.params and report.op_counts["CONV_2D"] > dense.op_counts["CONV_2D"]
    assert result.quality["after"] > 0.3, result.quality


@pytest.mark.slow
def test_lowrank_on_mlperf_ic(mlperf_dir, tmp_path):
    """ResNet-8 (residual adds): every 3x3 convolution with 16+ channels becomes a Tucker-2 chain, the
    classifier head stays. (Its 16- to 64-channel kernels are not low rank: half the parameters leaves
    ranks 9 of 16, which without fine-tuning costs most of the fidelity; the benchmark measures that.)"""
    from benchmarks import mlperf

    ic = next(t for t in mlperf.tasks(mlperf_dir) if t.name == "ic")
    np.savez(tmp_path / "cal.npz", x=mlperf.calibration(ic, count=16, seed=0))
    dense = analyze(edgesdk.compress(ic.source, "host", "fp32", tmp_path / "d.tflite", tmp_path / "cal.npz").output)
    result = edgesdk.compress(ic.source, "host", "lowrank=0.5,fp32", tmp_path / "l.tflite", tmp_path / "cal.npz",
                              epochs=0)
    report = analyze(result.output)
    assert report.params < 0.65 * dense.params and report.macs < 0.65 * dense.macs
    assert report.op_counts["CONV_2D"] > 2 * dense.op_counts["CONV_2D"]
    assert report.op_counts["FULLY_CONNECTED"] == dense.op_counts["FULLY_CONNECTED"] == 1  # the head stays
    assert [o.shape for o in report.outputs] == [o.shape for o in dense.outputs]
