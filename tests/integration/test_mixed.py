"""Mixed precision: int8 with the layers most sensitive to quantization kept float."""

from __future__ import annotations

import numpy as np
import pytest

import edgesdk
from edgesdk.errors import RecipeError
from edgesdk.inspect import analyze
from edgesdk.profiles import load_profile
from edgesdk.search import build


@pytest.fixture(params=["keras3", "tf_keras"])
def model_path(request, keras3_path, h5_path):
    return keras3_path if request.param == "keras3" else h5_path


def test_the_most_sensitive_layers_stay_float(model_path, data_files, tmp_path):
    from edgesdk import models
    from edgesdk.techniques.convert import converter_for, layer_errors

    train, val, _ = data_files
    x = np.load(train)["x"][:64].reshape(-1, 8, 8, 1).astype(np.float32)
    errors = layer_errors(converter_for(models.load_source(models.identify(model_path))), x)
    steps = [e["rmse_per_step"] for e in errors]
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
    with pytest.raises(RecipeError, match="mixed needs both int8 and fp32"):
        edgesdk.compress(keras3_path, "ethos-u55", "mixed=0.1", tmp_path / "x.tflite")
    with pytest.raises(RecipeError, match="in \\(0, 1\\)"):
        edgesdk.compress(keras3_path, "host", "mixed=2", tmp_path / "x.tflite")


def test_tune_searches_mixed_where_the_target_runs_it():
    host = build(load_profile("host"))
    assert {"mixed=0.1", "mixed=0.25"} <= set(host.precision)
    npu = build(load_profile("ethos-u55"))  # int8 and int16x8 only: no float layers
    assert not any(p.startswith("mixed") for p in npu.precision)
    assert any("mixed=0.1" in note for note in npu.notes)
    assert build(load_profile("host"), precisions=["mixed=0.5"]).precision == ("mixed=0.5",)
