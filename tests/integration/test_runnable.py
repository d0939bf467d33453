"""No model is written or crowned that the runtime cannot run: every output is loaded and invoked once on
the host's interpreter first. And the cause of the int4 models LiteRT refused (old-schema operator codes
that ai-edge-quantizer read as ADD) is normalized away."""

from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb

from edgesdk.tflite import runnable

from .test_hostile import cli, one_line_error


def _edit(content: bytes, change) -> bytes:
    import flatbuffers

    model = fb.ModelT.InitFromPackedBuf(content, 0)
    change(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


@pytest.fixture(scope="module")
def float_path(tmp_path_factory, keras3_path):
    import edgesdk

    out = tmp_path_factory.mktemp("float") / "cnn_fp32.tflite"
    edgesdk.compress(keras3_path, "host", "fp32", out)
    return out


def test_old_schema_operator_codes_take_int4_weights_that_run(float_path, data_files, tmp_path, capsys):
    def old_schema(model):
        for code in model.operatorCodes:
            code.deprecatedBuiltinCode, code.builtinCode = min(code.builtinCode, 127), 0

    old = tmp_path / "old_schema.tflite"
    old.write_bytes(_edit(float_path.read_bytes(), old_schema))
    out = tmp_path / "int4.tflite"
    for extra in ([], ["-d", data_files[1]]):
        rc, stdout, err = cli(capsys, "compress", old, "-p", "host", "-r", "mixed=int4:0.5", "-o", out, *extra)
        assert rc == 0, err
        assert runnable.check(out.read_bytes()).ran
    rc, stdout, err = cli(capsys, "inspect", old)
    assert rc == 0 and "operator code(s) of the old schema given their builtin_code" in stdout, err


def test_a_model_the_runtime_refuses_is_neither_inspected_as_fine_nor_written(tflite_path, tmp_path, capsys):
    def bad_zero_point(model):
        graph = model.subgraphs[0]
        for op in graph.operators:
            if max(model.operatorCodes[op.opcodeIndex].builtinCode,
                   model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) == fb.BuiltinOperator.CONV_2D:
                q = graph.tensors[op.inputs[1]].quantization
                q.zeroPoint = np.full(len(q.zeroPoint), 28, np.int64)
                return

    bad = tmp_path / "bad_zero_point.tflite"
    bad.write_bytes(_edit(tflite_path.read_bytes(), bad_zero_point))
    smoke = runnable.check(bad.read_bytes())
    assert smoke.broken and "zero_point" in smoke.error
    rc, stdout, err = cli(capsys, "inspect", bad)
    one_line_error(rc, err, "does not run on LiteRT (")
    assert "zero_point" in err and stdout == ""
    out = tmp_path / "out.tflite"
    for recipe in ("strip", "prune=0.5"):
        rc, _, err = cli(capsys, "compress", bad, "-p", "host", "-r", recipe, "-o", out)
        one_line_error(rc, err, "does not run on LiteRT (")
        assert "nothing was written" in err and not out.exists()


def test_a_crash_is_a_reason_not_a_dead_process():
    smoke = runnable.check(b"\x00" * 64)
    assert smoke.broken and smoke.error


def test_structurally_invalid_flatbuffers_are_refused_before_any_runtime(float_path, tmp_path, capsys):
    def negative_buffer(model):
        model.subgraphs[0].tensors[1].buffer = 2**32 - 3  # -3 read as uint32

    def empty_buffers(model):
        model.buffers = []

    def negative_input(model):
        op = model.subgraphs[0].operators[0]
        op.inputs = np.array([-7, *list(op.inputs)[1:]], np.int32)

    def cycle(model):
        ops = model.subgraphs[0].operators
        ops[0].inputs = np.array([ops[-1].outputs[0], *list(ops[0].inputs)[1:]], np.int32)

    out = tmp_path / "o.tflite"
    for change, fragment in ((negative_buffer, "buffer index is 4294967293"), (empty_buffers, "buffer table is empty"),
                             (negative_input, "input is -7"), (cycle, "a cycle")):
        bad = tmp_path / f"{change.__name__}.tflite"
        bad.write_bytes(_edit(float_path.read_bytes(), change))
        rc, _, err = cli(capsys, "compress", bad, "-p", "host", "-r", "int8", "-o", out)
        one_line_error(rc, err, fragment)
        assert not out.exists()


def test_per_tensor_quantization_on_a_dimension_past_the_rank_is_normalized(tflite_path, tmp_path, capsys):
    def past_rank(model):
        for tensor in model.subgraphs[0].tensors:
            q = tensor.quantization
            if q is not None and q.scale is not None and len(q.scale) == 1 and tensor.shape is not None:
                q.quantizedDimension = len(tensor.shape) + 2

    odd = tmp_path / "past_rank.tflite"
    odd.write_bytes(_edit(tflite_path.read_bytes(), past_rank))
    assert runnable.check(odd.read_bytes()).broken  # LiteRT refuses the file as it is
    out = tmp_path / "o.tflite"
    rc, _, err = cli(capsys, "compress", odd, "-p", "host", "-r", "int8", "-o", out)
    assert rc == 0 and runnable.check(out.read_bytes()).ran, err
