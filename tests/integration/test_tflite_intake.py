"""Compressing a .tflite that comes without its source: float32 and fp16-weight files (as MediaPipe ships
them), with and without signatures, several inputs and outputs, custom operators and integer models."""

from __future__ import annotations

import numpy as np
import pytest

import edgesdk
from edgesdk import evaluate
from edgesdk.errors import DataError, RecipeError
from edgesdk.tflite.facts import analyze
from edgesdk.tflite.graph import WEIGHTED, Graph, normalize
from tests.integration.test_hostile import cli, one_line_error


def _convert(model, fp16=False):
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if fp16:  # how MediaPipe's files store weights: fp16 constants behind DEQUANTIZE ops
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    return bytes(conv.convert())


def _without_signature(content):
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    model.signatureDefs = []
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


@pytest.fixture(scope="module")
def models(tmp_path_factory, tf_keras_model, keras3_path):
    """float32, fp16-weight and signature-less .tflite files of the digits CNN, and one from Keras 3."""
    d = tmp_path_factory.mktemp("tflite_in")
    paths = {"float": d / "cnn_f32.tflite", "fp16": d / "cnn_f16.tflite", "nosig": d / "cnn_nosig.tflite",
             "keras3": d / "cnn_k3.tflite"}
    paths["float"].write_bytes(_convert(tf_keras_model))
    paths["fp16"].write_bytes(_convert(tf_keras_model, fp16=True))
    paths["nosig"].write_bytes(_without_signature(_convert(tf_keras_model, fp16=True)))
    edgesdk.compress(keras3_path, "host", "fp32", paths["keras3"])
    return paths


@pytest.fixture(scope="module")
def two_inputs(tmp_path_factory):
    """A model with inputs 'a' (32) and 'b' (16) and two outputs, as .tflite, with matching data."""
    import tf_keras

    tf_keras.utils.set_random_seed(1)
    a, b = tf_keras.Input((32,), name="a"), tf_keras.Input((16,), name="b")
    h = tf_keras.layers.Dense(64, activation="relu")(tf_keras.layers.Concatenate()([a, b]))
    h = tf_keras.layers.Dense(48, activation="relu")(h)
    model = tf_keras.Model([a, b], [tf_keras.layers.Dense(5, activation="softmax", name="cls")(h),
                                    tf_keras.layers.Dense(2, name="box")(h)])
    d = tmp_path_factory.mktemp("two")
    path = d / "two.tflite"
    path.write_bytes(_convert(model))
    rng = np.random.default_rng(0)
    np.savez(d / "data.npz", a=rng.standard_normal((64, 32)).astype(np.float32),
             b=rng.standard_normal((64, 16)).astype(np.float32))
    np.savez(d / "only_a.npz", a=rng.standard_normal((8, 32)).astype(np.float32))
    return path, d / "data.npz", d / "only_a.npz"


def _weights(path):
    graph = Graph(path.read_bytes())
    return [graph.dequantized(int(op.inputs[1])) for _, op in graph.ops(*WEIGHTED)]


def test_fp16_weights_are_normalized_to_float(models):
    done = normalize(models["fp16"].read_bytes())
    assert not done.integer and "DEQUANTIZE" in done.changes[0]
    ops = [Graph(done.content).op_name(op) for _, op in Graph(done.content).ops()]
    assert "DEQUANTIZE" not in ops
    x = np.random.default_rng(0).standard_normal((8, 8, 8, 1)).astype(np.float32)
    reference = evaluate.predict(models["float"].read_bytes(), x)
    assert np.abs(evaluate.predict(done.content, x) - reference).max() < 1e-2  # fp16-rounded weights
    assert normalize(models["nosig"].read_bytes()).changes[-1].startswith("a 'serving_default' signature added")


PRECISIONS = [("fp16", "fp16"), ("dynamic", "dynamic"), ("int8", "int8"), ("int8=io", "int8"),
              ("int16x8", "int16x8"), ("mixed=0.25", "mixed"), ("mixed=int16x8:0.25", None),
              ("mixed=int4:0.5", None), ("weights=int8", None), ("weights=int4", None)]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["fp16", "nosig"])
def test_every_precision_from_a_tflite(models, data_files, tmp_path, which):
    train, val, _ = data_files
    float_weights = analyze(models["float"]).weight_bytes
    for recipe, precision in PRECISIONS:
        out = tmp_path / f"{recipe.replace(':', '_')}.tflite"
        result = edgesdk.compress(models[which], "host", recipe, out, val, train_data=train)
        if precision:
            assert result.precision == precision, recipe
        limit = {"fp16": 0.55, "weights=int4": 0.2, "mixed=int4:0.5": 0.3, "mixed=0.25": 1.0}.get(recipe, 0.35)
        assert result.weight_bytes < limit * float_weights, (recipe, result.weight_bytes, float_weights)
        q = result.quality
        assert q["metric"] == "accuracy" and q["after"] >= q["before"] - 0.05, (recipe, q)
        assert q["sqnr_db"] > (8 if recipe.startswith("mixed=int") else 15), (recipe, q)
    io = analyze(tmp_path / "int8=io.tflite")
    assert io.inputs[0].dtype == "INT8"


def test_int8_from_the_tflite_matches_int8_from_the_source(models, h5_path, data_files, tmp_path):
    train, val, _ = data_files
    mine = edgesdk.compress(models["float"], "host", "int8", tmp_path / "a.tflite", val, train_data=train)
    theirs = edgesdk.compress(h5_path, "host", "int8", tmp_path / "b.tflite", val, train_data=train)
    assert abs(mine.model_bytes - theirs.model_bytes) <= 0.03 * theirs.model_bytes
    assert abs(mine.quality["sqnr_db"] - theirs.quality["sqnr_db"]) < 1.0
    assert mine.quality["after"] == pytest.approx(theirs.quality["after"], abs=0.02)


@pytest.mark.slow
def test_weight_space_steps_on_the_flatbuffer(models, data_files, tmp_path):
    train, val, _ = data_files
    source = models["keras3"]
    pruned = edgesdk.compress(source, "host", "prune=0.5", tmp_path / "p.tflite", val, train_data=train)
    assert any("no training graph" in w for w in pruned.warnings)
    for w in _weights(tmp_path / "p.tflite"):
        assert 0.45 <= float(np.mean(w == 0)) <= 0.55
    edgesdk.compress(source, "host", "prune=2:4", tmp_path / "nm.tflite")
    fc = _weights(tmp_path / "nm.tflite")[-1]
    assert ((fc.reshape(-1, 4) != 0).sum(axis=1) <= 2).all()
    clustered = edgesdk.compress(source, "host", "cluster=8", tmp_path / "c.tflite", val)
    assert all(len(np.unique(w)) <= 8 for w in _weights(tmp_path / "c.tflite"))
    assert clustered.weight_entropy_bytes < 0.3 * clustered.weight_bytes
    both = edgesdk.compress(source, "host", "prune=0.5,cluster=8,int8", tmp_path / "pc.tflite", val, train_data=train)
    assert both.precision == "int8" and both.quality["after"] > 0.5
    magnitude = pruned.quality["sqnr_db"]
    for method in ("wanda=0.5", "sparsegpt=0.5"):
        result = edgesdk.compress(source, "host", method, tmp_path / f"{method[:5]}.tflite", val, train_data=train)
        assert all(0.4 <= float(np.mean(w == 0)) <= 0.6 for w in _weights(tmp_path / f"{method[:5]}.tflite"))
        if method.startswith("sparsegpt"):  # it compensates with the calibration inputs: closer than magnitude
            assert result.quality["sqnr_db"] > magnitude + 3, (result.quality, magnitude)
    with pytest.raises(RecipeError, match="calibration activations"):
        edgesdk.compress(source, "host", "wanda=0.5", tmp_path / "w.tflite")


def test_two_inputs_two_outputs_and_lowrank(two_inputs, tmp_path, capsys):
    path, data, only_a = two_inputs
    for recipe in ("int8", "mixed=int4:0.5", "dynamic", "sparsegpt=0.5,int8"):
        result = edgesdk.compress(path, "host", recipe, tmp_path / "o.tflite", data)
        # int4 weights and half the weights pruned cost the small regression head most (about 5.5 dB where the
        # classifier keeps 16): the headline is the worse output, so it shows
        floor = 4 if recipe.startswith(("mixed=int4", "sparsegpt")) else 10
        assert result.quality["metric"] == "fidelity" and result.quality["sqnr_db"] > floor, (recipe, result.quality)
        assert len(analyze(tmp_path / "o.tflite").outputs) == 2
        # quality per output: both heads, the headline SQNR the lower of the two
        outputs = result.quality["outputs"]
        assert len({o["name"] for o in outputs}) == 2 and all(o["sqnr_db"] > floor for o in outputs), outputs
        assert result.quality["sqnr_db"] == min(o["sqnr_db"] for o in outputs)
    rc, shown, _ = cli(capsys, "compress", path, "-p", "host", "-r", "int8", "-o", tmp_path / "g.tflite")
    assert rc == 0 and "per output" in shown and "lowest of 2 outputs" in shown, shown
    low = edgesdk.compress(path, "host", "lowrank=0.5", tmp_path / "low.tflite", data)
    ops = [op.op for op in analyze(tmp_path / "low.tflite").layers]
    assert ops.count("FULLY_CONNECTED") == 4 + 2  # the two hidden ones split in two; the heads stay
    assert low.weight_bytes < 0.75 * analyze(path).weight_bytes
    with pytest.raises(DataError, match="no array for input 'b' of shape \\(16,\\)"):
        edgesdk.compress(path, "host", "int8", tmp_path / "o.tflite", only_a)
    rc, _, err = cli(capsys, "compress", path, "-p", "host", "-r", "int8", "-d", only_a, "-o", tmp_path / "x.tflite")
    assert rc == 2 and "input 'b'" in err and "Traceback" not in err


def test_training_steps_are_refused_on_a_tflite(models, data_files, tmp_path, capsys):
    train, val, _ = data_files
    for recipe in ("qat", "channels=0.5", "prune=0.5,distill=2"):
        rc, _, err = cli(capsys, "compress", models["float"], "-p", "host", "-r", recipe, "-d", val,
                         "-o", tmp_path / "x.tflite")
        assert rc == 2 and "has no training graph" in err and "takes Keras models" in err, err
    assert not (tmp_path / "x.tflite").exists()


def test_an_integer_tflite_keeps_its_precision(tflite_path, data_files, tmp_path):
    _, val, _ = data_files
    before = _weights(tflite_path)
    pruned = edgesdk.compress(tflite_path, "host", "prune=0.5", tmp_path / "p.tflite", val)
    assert pruned.recipe == "prune=0.5,int8" and pruned.precision == "int8"
    graph = Graph((tmp_path / "p.tflite").read_bytes())
    stored = [graph.constant(int(op.inputs[1])) for _, op in graph.ops(*WEIGHTED)]
    assert all(w.dtype == np.int8 and 0.45 <= float(np.mean(w == 0)) for w in stored)
    assert pruned.quality["top1_agreement"] > 0.5  # fidelity to the integer model as given
    clustered = edgesdk.compress(tflite_path, "host", "cluster=16", tmp_path / "c.tflite")
    graph = Graph((tmp_path / "c.tflite").read_bytes())
    assert all(len(np.unique(graph.constant(int(op.inputs[1])))) <= 16 for _, op in graph.ops(*WEIGHTED))
    assert clustered.weight_entropy_bytes < 0.75 * clustered.weight_bytes
    assert len(before) == len(_weights(tmp_path / "c.tflite")) and clustered.precision == "int8"
    edgesdk.compress(tflite_path, "host", "int8=io,strip", tmp_path / "io.tflite", val)
    io = analyze(tmp_path / "io.tflite")
    assert io.inputs[0].dtype == "INT8" and io.outputs[0].dtype == "INT8"
    for recipe in ("dynamic", "fp16", "wanda=0.5", "int16x8"):
        with pytest.raises(RecipeError, match="integer .tflite"):
            edgesdk.compress(tflite_path, "host", recipe, tmp_path / "r.tflite", val)


def _with_custom_op(content):
    """The model with a custom operator after its output: TFLite keeps it, but has no kernel for it."""
    from tensorflow.lite.python import schema_py_generated as schema

    graph = Graph(content)
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode, code.customCode, code.version = 32, 32, "EdgeSdkPostProcess", 1
    graph.model.operatorCodes.append(code)
    out = int(graph.sub.outputs[0])
    new = graph.add_tensor("post", list(graph.tensor(out).shape))
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = len(graph.model.operatorCodes) - 1, np.array([out]), np.array([new])
    graph.sub.operators.append(op)
    graph.sub.outputs = np.array([new], np.int32)
    for sig in graph.model.signatureDefs:
        sig.outputs[0].tensorIndex = new
    return graph.to_bytes()


def test_custom_operators_are_kept(models, data_files, tmp_path):
    train, _, _ = data_files
    path = tmp_path / "custom.tflite"
    path.write_bytes(_with_custom_op(models["fp16"].read_bytes()))
    for recipe, smaller in (("dynamic", 0.5), ("prune=0.5,cluster=16", 1.05), ("fp16", 0.55), ("weights=int4", 0.3)):
        result = edgesdk.compress(path, "host", recipe, tmp_path / "o.tflite")
        assert Graph((tmp_path / "o.tflite").read_bytes()).custom_ops() == ["EdgeSdkPostProcess"], recipe
        assert result.weight_bytes < smaller * analyze(models["float"]).weight_bytes, recipe
    with pytest.raises(RecipeError, match="custom operators \\(EdgeSdkPostProcess\\)"):
        edgesdk.compress(path, "host", "int8", tmp_path / "o.tflite", train_data=train)


def test_inspect_says_what_a_tflite_takes(models, tflite_path, capsys):
    rc, text, _ = cli(capsys, "inspect", models["fp16"])
    assert rc == 0 and "float .tflite model: compress and tune take" in text and "not channels, distill, qat" in text
    assert "DEQUANTIZE op(s) of stored weights folded" in text
    rc, text, _ = cli(capsys, "inspect", tflite_path, "--json")
    import json

    takes = json.loads(text)["takes"]
    assert takes["form"] == "integer-tflite" and set(takes["accepted"]) == {"prune", "cluster", "int8", "strip"}


@pytest.mark.slow
def test_tune_searches_what_a_tflite_takes(models, data_files, tmp_path):
    train, val, _ = data_files
    result = edgesdk.tune(models["fp16"], "host", tmp_path / "out", data=val, train_data=train, budget=3)
    assert any("structure channels=" in n and "left out" in n for n in result.notes), result.notes
    recipes = [t["recipe"] for t in result.trials]
    assert recipes and not any("channels" in r for r in recipes)
    assert (tmp_path / "out" / "best.tflite").is_file()


@pytest.mark.mlperf
@pytest.mark.slow
def test_mlperf_float_tflite_int8_matches_its_source(mlperf_dir, tmp_path):
    from benchmarks import mlperf

    task = next(t for t in mlperf.tasks(mlperf_dir) if t.name == "kws")
    cal = tmp_path / "cal.npz"
    np.savez(cal, x=mlperf.calibration(task))
    val = tmp_path / "val.npz"
    np.savez(val, x=task.real_inputs)
    mine = edgesdk.compress(task.float_tflite, "host", "int8", tmp_path / "a.tflite", val, train_data=cal)
    theirs = edgesdk.compress(task.source, "host", "int8", tmp_path / "b.tflite", val, train_data=cal)
    assert abs(mine.model_bytes - theirs.model_bytes) <= 0.03 * theirs.model_bytes
    assert mine.quality["sqnr_db"] > theirs.quality["sqnr_db"] - 1.0


def test_a_suite_compresses_a_tflite(models, tmp_path, capsys):
    import json

    from tests.integration.test_hostile import _suite

    suite = _suite(tmp_path / "s.yaml", [{"name": "given", "path": str(models["fp16"])}], ["local"],
                   ["none", "int8", "prune=0.5,dynamic"])
    rc, _, err = cli(capsys, "suite", "run", suite, "-o", tmp_path / "out")
    assert rc == 0, err
    cells = {c["recipe"]: c for c in json.loads((tmp_path / "out" / "results.json").read_text())["cells"]}
    assert set(cells) == {"none", "int8", "prune=0.5,dynamic"}
    assert all(c["status"] == "passed" and c["measurement"]["latency"]["p50_ms"] > 0 for c in cells.values())
    assert cells["none"]["artifact"]["path"] == str(models["fp16"])  # measured as given
    assert analyze(cells["int8"]["artifact"]["path"]).precision == "int8"
    assert cells["prune=0.5,dynamic"]["artifact"]["bytes"] < models["fp16"].stat().st_size


def test_a_conversion_that_quantizes_nothing_says_so(two_inputs, tmp_path):
    import tf_keras

    tiny = tf_keras.Sequential([tf_keras.Input((8,)), tf_keras.layers.Dense(4)])  # 32 weights: under 1024
    path = tmp_path / "tiny.tflite"
    path.write_bytes(_convert(tiny))
    result = edgesdk.compress(path, "host", "dynamic", tmp_path / "o.tflite")
    assert result.precision == "fp32" and any("dynamic quantized nothing" in w for w in result.warnings)
    bigger = edgesdk.compress(two_inputs[0], "host", "dynamic", tmp_path / "d.tflite")
    assert bigger.precision == "dynamic" and not any("quantized nothing" in w for w in bigger.warnings)


def test_integer_inputs_are_calibrated_as_integers(tmp_path):
    """Token ids into an embedding: the calibration feeds each input in its own type."""
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    tokens = tf_keras.Input((12,), dtype="int32", name="tokens")
    h = tf_keras.layers.GlobalAveragePooling1D()(tf_keras.layers.Embedding(200, 32)(tokens))
    model = tf_keras.Model(tokens, tf_keras.layers.Dense(4, activation="softmax")(
        tf_keras.layers.Dense(64, activation="relu")(h)))
    path = tmp_path / "emb.tflite"
    path.write_bytes(_convert(model))
    np.savez(tmp_path / "ids.npz", tokens=np.random.default_rng(0).integers(0, 200, (48, 12)).astype(np.int32))
    for recipe in ("int8", "mixed=int4:0.5", "sparsegpt=0.5,int8"):
        result = edgesdk.compress(path, "host", recipe, tmp_path / "o.tflite", tmp_path / "ids.npz")
        assert result.quality["sqnr_db"] > 30, (recipe, result.quality)
        assert analyze(tmp_path / "o.tflite").inputs[0].dtype == "INT32"


def test_a_weight_only_int8_tflite_is_normalized_and_requantized(models, data_files, tmp_path):
    """int8 weights behind DEQUANTIZE (ai-edge-quantizer's weight-only output) are folded back to float."""
    train, val, _ = data_files
    edgesdk.compress(models["float"], "host", "weights=int8", tmp_path / "wo.tflite")
    wo = tmp_path / "wo.tflite"
    assert "DEQUANTIZE" in analyze(wo).op_counts
    done = normalize(wo.read_bytes())
    assert not done.integer and "DEQUANTIZE op(s) of stored weights folded" in done.changes[0]
    again = edgesdk.compress(wo, "host", "int8", tmp_path / "i8.tflite", val, train_data=train)
    direct = edgesdk.compress(models["float"], "host", "int8", tmp_path / "d.tflite", val, train_data=train)
    assert again.precision == "int8" and abs(again.model_bytes - direct.model_bytes) <= 0.03 * direct.model_bytes
    assert again.quality["sqnr_db"] > direct.quality["sqnr_db"] - 3


def test_custom_operators_with_data_take_one_path(models, data_files, tmp_path, capsys):
    """With --data or without, a step that runs the model is refused by one message naming the custom
    operator and what applies; a step that needs no run writes the model and says the data went unused."""
    _, val, _ = data_files
    path = tmp_path / "custom.tflite"
    path.write_bytes(_with_custom_op(models["fp16"].read_bytes()))
    messages = set()
    for recipe in ("int8", "sparsegpt=0.5", "mixed=int4:0.5"):
        for extra in ([], ["-d", val]):
            rc, _, err = cli(capsys, "compress", path, "-p", "host", "-r", recipe, *extra, "-o", tmp_path / "o.tflite")
            one_line_error(rc, err, "runs the model on samples, and its custom operators (EdgeSdkPostProcess) have "
                                    "no kernel here; the steps that need no run apply: ")
            messages.add(err.replace(recipe, "R"))
    assert len(messages) == 1 and not (tmp_path / "o.tflite").exists()
    rc, _, err = cli(capsys, "compress", path, "-p", "host", "-r", "dynamic", "-d", val, "-o", tmp_path / "o.tflite")
    assert rc == 0 and "the data is not used and quality is not measured" in err, err
    assert Graph((tmp_path / "o.tflite").read_bytes()).custom_ops() == ["EdgeSdkPostProcess"]


@pytest.fixture(scope="module")
def sparse_models(tmp_path_factory, tf_keras_model):
    """The digits CNN with 80 % of its weights zero, converted with the converter's sparse encoding
    (DENSIFY ops), float32 and fp16, as MediaPipe's ``*_sparse`` files are."""
    import tensorflow as tf
    import tf_keras

    model = tf_keras.models.clone_model(tf_keras_model)
    rng = np.random.default_rng(0)
    for layer, source in zip(model.layers, tf_keras_model.layers, strict=True):
        weights = source.get_weights()
        if weights and weights[0].ndim >= 2:  # kernels, not batch-norm scales
            weights[0] = weights[0] * (rng.random(weights[0].shape) < 0.2)
            layer.set_weights(weights)
    d = tmp_path_factory.mktemp("sparse")
    paths = {}
    for name, extra in (("f32", []), ("f16", [tf.lite.Optimize.DEFAULT])):
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY, *extra]
        if extra:
            conv.target_spec.supported_types = [tf.float16]
        paths[name] = d / f"sparse_{name}.tflite"
        paths[name].write_bytes(conv.convert())
        assert any(t.sparsity is not None for t in Graph(paths[name].read_bytes()).sub.tensors)
    return paths


def _outputs(content, x):
    return evaluate.predict(content, x)


def test_sparse_weights_are_decoded_exactly(sparse_models, data_files):
    _, val, _ = data_files
    x = np.load(val)["x"][:16]
    for path in sparse_models.values():
        content = path.read_bytes()
        done = normalize(content)
        graph = Graph(done.content)
        assert any("sparse-encoded weight(s) decoded" in c for c in done.changes)
        assert not any(t.sparsity is not None for t in graph.sub.tensors) and not list(graph.ops("DENSIFY"))
        np.testing.assert_array_equal(_outputs(done.content, x), _outputs(content, x))


def test_block_sparse_and_reordered_encodings_match_tflites_own_encoder():
    """TFLite's own format converter encodes; ours decodes: CSR, a permuted traversal order and 1x4 blocks."""
    from tensorflow.lite.python import format_converter_wrapper_pybind11 as fc
    from tensorflow.lite.python import schema_py_generated as schema

    from edgesdk.tflite.sparse import decode

    rng = np.random.default_rng(3)
    dense = (rng.standard_normal((8, 12)) * (rng.random((8, 12)) < 0.3)).astype(np.float32)
    dense[:, 4:8] = 0  # a whole zero block
    kinds = {0: fc.TfLiteDimensionType.TF_LITE_DIM_DENSE, 1: fc.TfLiteDimensionType.TF_LITE_DIM_SPARSE_CSR}
    for order, formats, block, block_map in (([0, 1], [0, 1], [], []), ([1, 0], [0, 1], [], []),
                                             ([0, 1, 2], [0, 1, 0], [4], [1])):
        conv = fc.FormatConverterFp32([8, 12], order, [kinds[f] for f in formats], block, block_map)
        conv.DenseToSparse(dense.reshape(-1))
        metadata = conv.GetDimMetadata()
        params = schema.SparsityParametersT()
        params.traversalOrder, params.blockMap, params.dimMetadata = order, block_map, []
        for level, kind in enumerate(formats[d] for d in order):   # formats are per dimension, levels per traversal
            meta = schema.DimensionMetadataT()
            meta.format = kind
            if kind == 0:
                meta.denseSize = metadata[2 * level][0]
            else:
                meta.arraySegments, meta.arrayIndices = schema.Int32VectorT(), schema.Int32VectorT()
                meta.arraySegments.values, meta.arrayIndices.values = metadata[2 * level], metadata[2 * level + 1]
            params.dimMetadata.append(meta)
        values = np.asarray(conv.GetData(), np.float32)
        assert values.size < dense.size
        np.testing.assert_array_equal(decode(values, [8, 12], params, "w"), dense)


def test_sparse_models_compress_and_a_corrupt_encoding_is_one_line(sparse_models, data_files, tmp_path, capsys):
    _, val, _ = data_files
    for recipe in ("int8", "sparsegpt=0.5,int8"):
        rc, _, err = cli(capsys, "compress", sparse_models["f16"], "-p", "host", "-r", recipe, "-d", val,
                         "-o", tmp_path / "o.tflite")
        assert rc == 0 and "error" not in err, err
        assert analyze(tmp_path / "o.tflite").precision == "int8"
    graph = Graph(sparse_models["f32"].read_bytes())
    sparse = next(t for t in graph.sub.tensors if t.sparsity is not None)
    level = next(m for m in sparse.sparsity.dimMetadata if m.format == 1)
    level.arrayIndices.values = np.full_like(level.arrayIndices.values, 250)   # past the dimension
    (tmp_path / "bad.tflite").write_bytes(graph.to_bytes())
    rc, _, err = cli(capsys, "compress", tmp_path / "bad.tflite", "-p", "host", "-r", "fp16",
                     "-o", tmp_path / "b.tflite")
    one_line_error(rc, err, "its sparse encoding is corrupt (an index past dimension")
    assert not (tmp_path / "b.tflite").exists()


@pytest.fixture(scope="module")
def uint8_model(tmp_path_factory):
    """A TF1-style uint8 model (Coral's older files): per-tensor int8 from the converter, every int8 tensor
    shifted to uint8 (values and zero points + 128), which computes the same."""
    import tensorflow as tf
    import tf_keras

    from edgesdk.tflite.graph import INT8, UINT8

    tf_keras.utils.set_random_seed(2)
    rng = np.random.default_rng(0)
    inp = tf_keras.Input((8, 8, 1))
    h = tf_keras.layers.Flatten()(tf_keras.layers.Conv2D(8, 3, activation="relu")(inp))
    model = tf_keras.Model(inp, tf_keras.layers.Dense(10, activation="softmax")(h))
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.random((1, 8, 8, 1)).astype(np.float32)] for _ in range(20))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    conv._experimental_disable_per_channel = True  # uint8 kernels are per-tensor
    graph = Graph(conv.convert())
    for index, t in enumerate(graph.sub.tensors):
        if t.type == INT8:
            value = graph.constant(index)
            t.type = UINT8
            if t.quantization is not None and t.quantization.zeroPoint is not None:
                t.quantization.zeroPoint = np.asarray(t.quantization.zeroPoint) + 128
            if value is not None:
                graph.set_constant(index, (value.astype(np.int16) + 128).astype(np.uint8))
    path = tmp_path_factory.mktemp("uint8") / "u8.tflite"
    path.write_bytes(graph.to_bytes())
    return path


def test_a_uint8_model_is_pruned_and_clustered_in_its_own_values(uint8_model, tmp_path, capsys):
    """inspect promises what works on a uint8 file, and it works: prune and cluster edit its uint8 weights
    on their own grid (a pruned weight is the zero point); int8=io names uint8 as the reason."""
    from edgesdk.tflite.graph import UINT8

    rc, text, _ = cli(capsys, "inspect", uint8_model, "--json")
    import json

    takes = json.loads(text)["takes"]
    assert rc == 0 and set(takes["accepted"]) == {"prune", "cluster", "int8", "strip"}
    assert "int8=io" not in takes["refused"]["fp16"]
    original = Graph(uint8_model.read_bytes())
    for recipe, most in (("prune=0.5", None), ("cluster=4", 4)):
        rc, _, err = cli(capsys, "compress", uint8_model, "-p", "host", "-r", recipe, "-o", tmp_path / "o.tflite")
        assert rc == 0, err
        graph = Graph((tmp_path / "o.tflite").read_bytes())
        for _, op in graph.ops("CONV_2D", "FULLY_CONNECTED"):
            t = graph.tensor(int(op.inputs[1]))
            value, zero = graph.constant(int(op.inputs[1])), int(t.quantization.zeroPoint[0])
            assert t.type == UINT8 and value.dtype == np.uint8
            if most is None:
                assert 0.45 <= float(np.mean(value == zero)) <= 0.55
            else:
                assert len(np.unique(value)) <= most
    assert len(list(original.ops())) == len(list(graph.ops()))
    rc, _, err = cli(capsys, "compress", uint8_model, "-p", "host", "-r", "int8=io", "-o", tmp_path / "io.tflite")
    one_line_error(rc, err, "is uint8")


def test_fp16_weight_files_keep_their_storage(models, data_files, tmp_path, capsys):
    """Steps that do not name fp32 keep an fp16-weight file's storage: prune, cluster, weight-only and
    dynamic-range outputs are no larger than the input and store no float32 weights of note; fp32 named
    explicitly is larger, and says why."""
    from edgesdk.tflite.facts import weight_storage

    _, val, _ = data_files
    given = models["fp16"].read_bytes()
    for recipe, float32 in (("prune=0.5", 0.05), ("cluster=16", 0.05), ("weights=int8", 0.05), ("dynamic", 0.15)):
        result = edgesdk.compress(models["fp16"], "host", recipe, tmp_path / "o.tflite", val)
        made = (tmp_path / "o.tflite").read_bytes()
        assert len(made) <= len(given), (recipe, len(made), len(given))
        # dynamic keeps the biases of its hybrid ops float32 (the runtime reads them as constants)
        assert weight_storage(made).get("float32", 0) < float32 * sum(weight_storage(made).values()), recipe
        assert result.quality["top1_agreement"] > 0.8 and not any("larger" in w for w in result.warnings), recipe
    rc, _, err = cli(capsys, "compress", models["fp16"], "-p", "host", "-r", "fp32", "-o", tmp_path / "f.tflite")
    assert rc == 0 and "is larger than the input" in err and "stored as float32" in err, err
