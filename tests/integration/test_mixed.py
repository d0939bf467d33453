"""Mixed precision: int8 with the layers most sensitive to quantization kept float or given int16
activations, or the least sensitive given int4 weights."""

from __future__ import annotations

import numpy as np
import pytest

import edgesdk
from edgesdk.errors import RecipeError
from edgesdk.profiles import load_profile
from edgesdk.search import build
from edgesdk.tflite.facts import analyze


@pytest.fixture(params=["keras3", "tf_keras"])
def model_path(request, keras3_path, h5_path):
    return keras3_path if request.param == "keras3" else h5_path


def test_the_most_sensitive_layers_stay_float(model_path, data_files, tmp_path):
    from edgesdk.intake import open_model
    from edgesdk.techniques.conversion import converter_for, keras_layer_errors

    train, val, _ = data_files
    x = np.load(train)["x"][:64].reshape(-1, 8, 8, 1).astype(np.float32)
    errors = keras_layer_errors(converter_for(open_model(model_path).converter_source()), x)
    steps = [e.rmse_per_step for e in errors]
    assert len(steps) >= 4 and steps == sorted(steps, reverse=True)
    full = edgesdk.compress(model_path, "host", "int8", tmp_path / "i.tflite", val, train_data=train)
    mixed = edgesdk.compress(model_path, "host", "mixed=0.25", tmp_path / "m.tflite", val, train_data=train)
    report = analyze(mixed.output)
    assert mixed.precision == report.precision == "mixed"
    dtypes = {layer.dtype for layer in report.layers if layer.op in ("CONV_2D", "FULLY_CONNECTED", "MAX_POOL_2D")}
    assert {"INT8", "FLOAT32"} <= dtypes  # some layers int8, some float
    assert mixed.weight_bytes > full.weight_bytes  # the float layers keep 4-byte weights
    assert mixed.quality["after"] >= full.quality["after"] - 0.02


def test_targets_without_float_refuse_mixed(keras3_path, tmp_path):
    with pytest.raises(RecipeError, match="mixed=0.1 needs fp32 and int8"):
        edgesdk.compress(keras3_path, "ethos-u55", "mixed=0.1", tmp_path / "x.tflite")
    with pytest.raises(RecipeError, match="mixed=int16x8:0.1 needs int16x8 and int8"):
        edgesdk.compress(keras3_path, "edgetpu", "mixed=int16x8:0.1", tmp_path / "x.tflite")
    with pytest.raises(RecipeError, match="no int4-weight kernels"):
        edgesdk.compress(keras3_path, "ethos-u55", "mixed=int4:0.5", tmp_path / "x.tflite")
    with pytest.raises(RecipeError, match="in \\(0, 1\\)"):
        edgesdk.compress(keras3_path, "host", "mixed=2", tmp_path / "x.tflite")
    with pytest.raises(RecipeError, match="int16x8:F or int4:F"):
        edgesdk.compress(keras3_path, "host", "mixed=int2:0.5", tmp_path / "x.tflite")


def test_int16_activations_for_the_most_sensitive_layers(model_path, data_files, tmp_path):
    """ai-edge-quantizer builds the int8 model and gives the most sensitive quarter of the layers int16
    activations, with QUANTIZE ops between the int8 and int16 parts; it runs and keeps its accuracy."""
    train, val, _ = data_files
    full = edgesdk.compress(model_path, "host", "int8", tmp_path / "i.tflite", val, train_data=train)
    mixed = edgesdk.compress(model_path, "host", "mixed=int16x8:0.25", tmp_path / "m.tflite", val,
                             train_data=train)
    report = analyze(mixed.output)
    dtypes = {layer.dtype for layer in report.layers if layer.op not in ("QUANTIZE", "DEQUANTIZE")}
    assert {"INT8", "INT16"} <= dtypes
    assert report.op_counts["QUANTIZE"] > analyze(full.output).op_counts["QUANTIZE"]  # int8 <-> int16 moves
    assert [t.dtype for t in report.inputs] == ["FLOAT32"]  # inputs and outputs stay float, as with int8
    assert mixed.quality["after"] >= full.quality["after"] - 0.02
    assert str(mixed.recipe) == "mixed=int16x8:0.25"


def test_int4_weights_for_the_least_sensitive_layers(model_path, data_files, tmp_path):
    train, val, _ = data_files
    full = edgesdk.compress(model_path, "host", "int8", tmp_path / "i.tflite", val, train_data=train)
    mixed = edgesdk.compress(model_path, "host", "mixed=int4:0.5", tmp_path / "m.tflite", val, train_data=train)
    report = analyze(mixed.output)
    assert report.precision == "int8" and any(t.constant and t.dtype == "INT4" for t in report.tensors)
    int4 = [t for t in report.tensors if t.constant and t.dtype == "INT4"]
    assert all(t.bytes == -(-int(np.prod(t.shape)) // 2) for t in int4)  # packed two to a byte
    assert mixed.weight_bytes <= full.weight_bytes - sum(t.bytes for t in int4) + 64  # they were a byte each
    assert mixed.quality["after"] >= full.quality["after"] - 0.05
    measured = edgesdk.bench(mixed.output, "local", edgesdk.BenchSettings(runs=5, warmup=1, min_time_s=0.0))
    assert measured.latency["p50_ms"] > 0  # the agent's runtime runs int4 weights


def test_tune_searches_mixed_where_the_target_runs_it():
    host = build(load_profile("host"))
    assert {"mixed=0.1", "mixed=0.25"} <= set(host["precision"])
    npu = build(load_profile("ethos-u55"))  # int8 and int16x8 only: no float layers
    assert not any(p.startswith("mixed") for p in npu["precision"])
    assert any("mixed=0.1" in note for note in npu.notes)
    assert build(load_profile("host"), precision=["mixed=0.5"])["precision"] == ("mixed=0.5",)
    assert build(load_profile("host"), precision=["mixed=int4:0.5", "mixed=int16x8:0.1"])["precision"] == \
        ("mixed=int4:0.5", "mixed=int16x8:0.1")
