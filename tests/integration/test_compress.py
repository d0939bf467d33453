"""Every recipe on a Keras 3 model and on a tf_keras model, through the real converter and LiteRT."""

import numpy as np
import pytest

import edgesdk
from edgesdk.errors import ModelError, RecipeError
from edgesdk.tflite.facts import analyze
from tests.tflite_weights import kernels

RECIPES = {
    "fp32": "fp32", "dynamic": "dynamic", "fp16": "fp16", "int8": "int8", "int8=io": "int8",
    "int16x8": "int16x8", "prune=0.5,int8": "int8", "prune=2:4,int8": "int8", "cluster=16,int8": "int8",
    "prune=0.5,cluster=16,int8": "int8", "qat": "int8",
}


@pytest.fixture(params=["keras3", "tf_keras"])
def model_path(request, keras3_path, h5_path):
    return keras3_path if request.param == "keras3" else h5_path


@pytest.mark.slow
@pytest.mark.parametrize("recipe", list(RECIPES))
def test_recipe(recipe, model_path, data_files, tmp_path):
    train, val, _ = data_files
    out = tmp_path / "out.tflite"
    result = edgesdk.compress(model_path, "host", recipe, out, val, train_data=train, epochs=1)
    content = out.read_bytes()
    assert result.model_bytes == len(content) and result.sha256 and result.gzip_bytes < len(content)
    report = analyze(out)
    assert report.precision == RECIPES[recipe] == result.precision
    q = result.quality
    assert q["metric"] == "accuracy" and q["samples"] == 120
    assert q["before"] > 0.8, "the float model itself should classify digits"
    assert q["after"] >= q["before"] - (0.25 if "prune" in recipe else 0.08)

    fc_and_conv = kernels(content)
    if "prune=0.5" in recipe:
        conv = [k for op, k in fc_and_conv if op == "CONV_2D"]
        assert all(np.mean(k == 0) >= 0.45 for k in conv), [float(np.mean(k == 0)) for k in conv]
    if "prune=2:4" in recipe:
        conv = [k for op, k in fc_and_conv if op == "CONV_2D" and k.shape[-1] % 4 == 0]
        assert conv
        for k in conv:  # along input channels, at least 2 of every 4 are zero
            groups = k.reshape(-1, 4)
            assert (np.sum(groups == 0, axis=1) >= 2).all()
    if "cluster=16" in recipe:
        for op, k in fc_and_conv:
            per_channel = [len(np.unique(k[c])) for c in range(k.shape[0])]
            assert max(per_channel) <= 16, (op, per_channel)
    if recipe == "int8=io":
        assert report.inputs[0].dtype == "INT8" and report.outputs[0].dtype == "INT8"
    elif recipe == "int8":
        assert report.inputs[0].dtype == "FLOAT32"


@pytest.mark.slow
def test_savedmodel_quantizes_and_prunes(savedmodel_path, data_files, tmp_path):
    train, val, _ = data_files
    result = edgesdk.compress(savedmodel_path, "rpi5", "int8", tmp_path / "a.tflite", val)
    assert result.precision == "int8" and result.quality["after"] > 0.7
    pruned = edgesdk.compress(savedmodel_path, "rpi5", "prune=0.5,int8", tmp_path / "b.tflite", val,
                              train_data=train, epochs=1)
    assert pruned.gzip_bytes < result.gzip_bytes


def test_fidelity_without_labels(keras3_path, data_files, tmp_path):
    _, _, x_only = data_files
    result = edgesdk.compress(keras3_path, "host", "int8", tmp_path / "a.tflite", x_only)
    q = result.quality
    assert q["metric"] == "fidelity" and "before" not in q
    assert q["top1_agreement"] >= 0.9 and 10 < q["sqnr_db"] < 80


def test_no_data_calibrates_on_random_inputs_with_a_warning(keras3_path, tmp_path):
    result = edgesdk.compress(keras3_path, "host", "int8", tmp_path / "a.tflite")
    assert any("NOT trustworthy" in w for w in result.warnings)
    # no data: the quality is the fidelity to the original on generated inputs, and says so
    assert result.quality is not None and result.quality["metric"] == "fidelity"
    assert result.quality["inputs"] == "generated" and result.quality["samples"] == 32
    assert 10 < result.quality["sqnr_db"] < 80
    assert any("fidelity to the original on generated inputs" in w for w in result.warnings)
    collapsed = edgesdk.compress(keras3_path, "host", "prune=0.9", tmp_path / "b.tflite")  # one-shot, no data
    assert collapsed.quality is not None and collapsed.quality["sqnr_db"] < result.quality["sqnr_db"]


def test_recipes_the_profile_cannot_run_are_refused_before_work(keras3_path, tmp_path):
    out = tmp_path / "a.tflite"
    with pytest.raises(RecipeError, match="'edgetpu' .* does not run fp32"):
        edgesdk.compress(keras3_path, "edgetpu", "prune=0.5", out)
    with pytest.raises(RecipeError, match="does not run fp16"):
        edgesdk.compress(keras3_path, "ethos-u55", "fp16", out)
    with pytest.raises(RecipeError, match="does not run dynamic"):
        edgesdk.compress(keras3_path, "cortex-m4", "dynamic", out)
    assert not out.exists()


def _profile(tmp_path, **memory_and_ops):
    import yaml

    from edgesdk.profiles import PROFILE_DIR

    raw = yaml.safe_load((PROFILE_DIR / "cortex-m4.yaml").read_text())
    raw["name"] = "tiny"
    raw.update(memory_and_ops)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_operator_the_target_lacks_is_refused_and_nothing_written(keras3_path, tmp_path):
    out = tmp_path / "a.tflite"
    profile = _profile(tmp_path, operators=["CONV_2D", "FULLY_CONNECTED", "QUANTIZE", "DEQUANTIZE"])
    with pytest.raises(RecipeError) as info:
        edgesdk.compress(keras3_path, profile, "int8", out)
    assert "MAX_POOL_2D" in str(info.value) and "not supported by tiny" in str(info.value)
    assert not out.exists() and not list(tmp_path.glob(".a.tflite*"))


def test_memory_budget_is_checked(keras3_path, tmp_path):
    profile = _profile(tmp_path, memory={"ram_bytes": 256, "storage_bytes": 1024, "weights_in_ram": False})
    # an MCU profile (TFLite Micro): RAM is the tensor arena, storage the model with runtime and kernels
    with pytest.raises(RecipeError, match="tensor arena needs .* budget of 256.*runtime and kernels needs .* can "
                                          "store 1,024"):
        edgesdk.compress(keras3_path, profile, "int8", tmp_path / "a.tflite")


def test_qat_needs_data(keras3_path, tmp_path):
    with pytest.raises(RecipeError, match="qat needs training data"):
        edgesdk.compress(keras3_path, "host", "qat", tmp_path / "a.tflite")


def test_data_that_does_not_fit_the_model(keras3_path, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((4, 5, 5, 1), np.float32))
    with pytest.raises(edgesdk.DataError, match=r"shape \(5, 5, 1\) do not fit model input"):
        edgesdk.compress(keras3_path, "host", "int8", tmp_path / "a.tflite", bad)
    no_x = tmp_path / "no_x.npz"
    np.savez(no_x, y=np.zeros(3))
    with pytest.raises(edgesdk.DataError, match="has no array 'x'"):
        edgesdk.compress(keras3_path, "host", "int8", tmp_path / "a.tflite", no_x)


def test_custom_keras3_layer_is_named(tmp_path):
    import keras

    @keras.saving.register_keras_serializable(package="tests")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(Doubler(name="doubler")(inputs)))
    path = tmp_path / "custom.keras"
    model.save(path)
    with pytest.raises(ModelError, match="layer 'doubler' of class 'Doubler' is a custom"):
        edgesdk.compress(path, "host", "prune=0.5", tmp_path / "a.tflite")


def test_result_is_recorded_in_the_store(keras3_path, tmp_path):
    store = edgesdk.Store()
    result = edgesdk.compress(keras3_path, "host", "dynamic", tmp_path / "a.tflite", store=store)
    [record] = store.list_compressions(result.source_sha256)
    assert record["sha256"] == result.sha256 and record["recipe"] == "dynamic"


def test_strip_makes_a_smaller_file_that_computes_the_same(keras3_path, data_files, tmp_path):
    _, val, _ = data_files
    plain = edgesdk.compress(keras3_path, "host", "int8", tmp_path / "a.tflite", val)
    stripped = edgesdk.compress(keras3_path, "host", "strip,int8", tmp_path / "b.tflite", val)
    assert stripped.recipe == "int8,strip"
    assert stripped.model_bytes < plain.model_bytes
    assert stripped.quality["after"] == plain.quality["after"]
    assert stripped.quality["sqnr_db"] == plain.quality["sqnr_db"]
    assert all(not t.name for t in analyze(tmp_path / "b.tflite").tensors)


def test_the_same_model_converts_to_the_same_file_every_time(tmp_path):
    """One process, one Sequential model, converted twice: byte-identical (a suite compares sizes and
    hashes run after run; an input name counting up per process once made the file differ)."""
    import keras

    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).save(tmp_path / "seq.keras")
    first = edgesdk.compress(tmp_path / "seq.keras", "host", "fp32", tmp_path / "a.tflite")
    again = edgesdk.compress(tmp_path / "seq.keras", "host", "fp32", tmp_path / "b.tflite")
    assert (tmp_path / "a.tflite").read_bytes() == (tmp_path / "b.tflite").read_bytes()
    assert first.sha256 == again.sha256
