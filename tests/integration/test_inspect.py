"""Inspection of real .tflite files: operators, parameters, MACs, memory, precision, profile fit."""

import pytest

import edgesdk
from edgesdk.tflite.facts import analyze


@pytest.fixture(scope="module")
def known_model(tmp_path_factory):
    """Conv 3x3 1->4 on 8x8 'same' (2,304 MACs, 40 params), then Dense 256->10 (2,560 MACs, 2,570 params)."""
    import keras

    inputs = keras.Input((8, 8, 1))
    # non-zero biases: the converter drops an all-zero bias, and then the counts would differ
    h = keras.layers.Conv2D(4, 3, padding="same", bias_initializer="ones")(inputs)
    outputs = keras.layers.Dense(10, bias_initializer="ones")(keras.layers.Flatten()(h))
    path = tmp_path_factory.mktemp("known") / "known.keras"
    keras.Model(inputs, outputs).save(path)
    return path


def test_counts_match_hand_computation(known_model):
    result = edgesdk.inspect_model(known_model).to_dict()
    rep = result["report"]
    assert result["source"]["format"] == "keras"
    assert rep["params"] == 40 + 2570
    assert rep["macs"] == 2304 + 2560
    by_op = {layer["op"]: layer["macs"] for layer in rep["layers"] if layer["macs"]}
    assert by_op == {"CONV_2D": 2304, "FULLY_CONNECTED": 2560}
    assert set(rep["operators"]) >= {"CONV_2D", "FULLY_CONNECTED"}
    assert all(version >= 1 for version in rep["operators"].values())
    assert rep["precision"] == "fp32"
    # input 256 floats + conv output 256 floats are live together: 2 KiB at least
    assert rep["peak_activation_bytes"] >= 2048
    assert rep["weight_bytes"] >= (40 + 2570) * 4


@pytest.mark.parametrize("recipe, precision", [("dynamic", "dynamic"), ("fp16", "fp16"), ("int8", "int8"),
                                               ("int16x8", "int16x8")])
def test_precision_is_detected(known_model, tmp_path, recipe, precision):
    out = tmp_path / "m.tflite"
    edgesdk.compress(known_model, "host", recipe, out)
    rep = analyze(out)
    assert rep.precision == precision
    assert rep.params == 40 + 2570 and rep.macs == 2304 + 2560


def test_every_input_format_inspects_the_same(keras3_path, h5_path, savedmodel_path):
    reports = [edgesdk.inspect_model(p).to_dict()["report"] for p in (h5_path, savedmodel_path)]
    assert reports[0]["params"] == reports[1]["params"] and reports[0]["macs"] == reports[1]["macs"]
    assert edgesdk.inspect_model(keras3_path).to_dict()["report"]["params"] == reports[0]["params"]


def test_fit_against_profiles(tflite_path):
    fits = edgesdk.inspect_model(tflite_path, "cortex-m4").to_dict()["fit"]
    assert fits["ok"] and fits["ram_needed_bytes"] < fits["ram_budget_bytes"]
    assert edgesdk.inspect_model(tflite_path, "edgetpu").to_dict()["fit"]["ok"]


def test_float_model_on_an_int8_only_npu_does_not_fit(keras3_path):
    fit = edgesdk.inspect_model(keras3_path, "edgetpu").to_dict()["fit"]
    assert not fit["ok"] and any("does not run fp32" in p for p in fit["problems"])


def test_tensor_sizes(known_model):
    rep = edgesdk.inspect_model(known_model).to_dict()["report"]
    conv = next(layer for layer in rep["layers"] if layer["op"] == "CONV_2D")
    assert conv["output_shape"] == [1, 8, 8, 4] and conv["output_bytes"] == 8 * 8 * 4 * 4
    kernel = next(t for t in rep["tensors"] if t["constant"] and t["shape"] == [4, 3, 3, 1])
    assert kernel["bytes"] == 36 * 4 and kernel["dtype"] == "FLOAT32"
