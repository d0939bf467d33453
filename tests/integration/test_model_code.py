"""Code from a model file never runs, whatever layout or key holds it (the second hardening round): a
ResidualWrapper cell's marshalled residual function, a SavedModel whose Keras metadata is folded into
saved_model.pb (the pre-TF-2.5 layout tf_keras still reads), a module a config would have imported."""

from __future__ import annotations

import json
import shutil

import h5py

from edgesdk.intake.source import code_spots

from .test_hostile import cli, one_line_error


def _payload(marker, args="x"):
    return f"lambda {args}: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), {args.split(',')[-1]})[1]"


def test_a_residual_wrapper_cell_keeps_its_bytecode_to_itself(tmp_path, capsys):
    import tf_keras
    from tf_keras.src.layers.rnn.cell_wrappers import ResidualWrapper

    marker = tmp_path / "code-ran"
    inputs = tf_keras.Input((4, 3))
    cell = ResidualWrapper(tf_keras.layers.SimpleRNNCell(3), residual_fn=eval(_payload(marker, "x, y")))  # noqa: S307
    tf_keras.Model(inputs, tf_keras.layers.RNN(cell, name="rnn")(inputs)).save(tmp_path / "res.h5")
    marker.unlink(missing_ok=True)
    rc, out, err = cli(capsys, "inspect", tmp_path / "res.h5")
    one_line_error(rc, err, "residual_wrapper (ResidualWrapper): key residual_fn (residual_fn_type: lambda")
    assert "--trust-model-code" in err and not marker.exists() and out == ""
    rc, _, err = cli(capsys, "compress", tmp_path / "res.h5", "-p", "host", "-r", "fp32", "-o", tmp_path / "o.tflite")
    one_line_error(rc, err, "residual_fn")
    assert not marker.exists() and not (tmp_path / "o.tflite").exists()


def _legacy_savedmodel(tmp_path, marker):
    """A tf_keras SavedModel with a Lambda layer, its keras_metadata.pb folded into saved_model.pb's
    object graph (where TF < 2.5 kept it) and removed."""
    import tf_keras
    from tensorflow.core.protobuf import saved_model_pb2
    from tf_keras.protobuf import saved_metadata_pb2

    inputs = tf_keras.Input((4,))
    hidden = tf_keras.layers.Lambda(eval(_payload(marker)), name="evil")(inputs)  # noqa: S307
    folder = tmp_path / "legacy_sm"
    tf_keras.Model(inputs, tf_keras.layers.Dense(2)(hidden)).save(folder, save_format="tf")
    meta = saved_metadata_pb2.SavedMetadata()
    meta.ParseFromString((folder / "keras_metadata.pb").read_bytes())
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((folder / "saved_model.pb").read_bytes())
    nodes = saved.meta_graphs[0].object_graph_def.nodes
    for node in meta.nodes:
        nodes[node.node_id].user_object.metadata = node.metadata
    (folder / "saved_model.pb").write_bytes(saved.SerializeToString())
    (folder / "keras_metadata.pb").unlink()
    marker.unlink(missing_ok=True)
    return folder


def test_a_legacy_savedmodel_layout_is_scanned_too(tmp_path, capsys):
    marker = tmp_path / "code-ran"
    folder = _legacy_savedmodel(tmp_path, marker)
    rc, out, err = cli(capsys, "inspect", folder)
    assert rc == 0 and not marker.exists(), err  # converted from its graph, which runs no Python
    assert "evil (Lambda)" in out
    rc, _, err = cli(capsys, "compress", folder, "-p", "host", "-r", "prune=0.5,fp32", "-o", tmp_path / "o.tflite")
    one_line_error(rc, err, "evil (Lambda)")
    assert not marker.exists() and not (tmp_path / "o.tflite").exists()
    rc, _, err = cli(capsys, "inspect", folder, "--trust-model-code")  # the layout really does carry code
    assert rc == 0 and marker.read_text() == "ran", err


def test_a_config_naming_a_foreign_module_or_a_function_object_is_refused(tmp_path, capsys):
    import tf_keras

    tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(2, name="dense")]).save(tmp_path / "m.h5")
    for name, value in (("module", {"module": "os", "class_name": "system", "config": {}}),
                        ("lambda", {"class_name": "__lambda__", "config": {"value": ["4wAA", None, None]}})):
        bad = tmp_path / f"{name}.h5"
        shutil.copyfile(tmp_path / "m.h5", bad)
        with h5py.File(bad, "r+") as fh:
            config = json.loads(fh.attrs["model_config"])
            config["config"]["layers"][-1]["config"]["kernel_initializer"] = value
            fh.attrs["model_config"] = json.dumps(config)
        rc, _, err = cli(capsys, "inspect", bad)
        one_line_error(rc, err, "dense (Dense): ")
        assert ("'os'" if name == "module" else "__lambda__") in err


def test_the_scan_is_structural_and_survives_any_depth():
    deep: object = {"class_name": "Dense", "config": {"name": "d", "act": {"fn_type": "lambda"}}}
    for _ in range(50_000):
        deep = [deep]
    assert code_spots(deep) == ["d (Dense): key fn (fn_type: lambda, marshalled Python bytecode)"]
    assert code_spots({"class_name": "Dense", "config": {"name": "d", "module": "keras.layers"}}) == []
