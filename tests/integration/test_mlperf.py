"""MLPerf Tiny reference models, used as a user would: SavedModel and Keras 2 .h5 sources end to end."""

import numpy as np
import pytest

import edgesdk
from benchmarks import mlperf
from edgesdk import evaluate
from edgesdk.tflite.facts import analyze

pytestmark = pytest.mark.mlperf


def _task(root, name):
    return next(t for t in mlperf.tasks(root) if t.name == name)


def test_reference_models_inspect_consistently(mlperf_dir):
    expected_macs = {"ic": 12_501_632, "kws": 2_656_768, "ad": 264_192, "vww": 7_489_664}
    for task in mlperf.tasks(mlperf_dir):
        float_rep, int8_rep = analyze(task.float_tflite), analyze(task.reference_int8)
        assert float_rep.macs == int8_rep.macs == expected_macs[task.name]
        assert int8_rep.precision == "int8"
        assert float_rep.params == int8_rep.params
        assert edgesdk.check_fit(int8_rep, edgesdk.load_profile("cortex-m4")).ok


@pytest.mark.slow
def test_kws_savedmodel_int8_end_to_end(mlperf_dir, tmp_path):
    task = _task(mlperf_dir, "kws")
    cal, val = tmp_path / "cal.npz", tmp_path / "val.npz"
    np.savez(cal, x=mlperf.calibration(task))
    np.savez(val, x=task.real_inputs)
    out = tmp_path / "kws_int8.tflite"
    result = edgesdk.compress(task.source, "cortex-m4", "int8=io,strip", out, val, train_data=cal)
    assert result.precision == "int8" and result.fit["ok"]
    assert result.model_bytes <= task.reference_int8.stat().st_size
    assert result.quality["top1_agreement"] == 1.0
    m = edgesdk.bench(out, "local", edgesdk.BenchSettings(runs=10, warmup=1, min_time_s=0.05))
    assert m.document["memory"]["model_bytes"] == result.model_bytes and m.latency["p50_ms"] > 0


@pytest.mark.slow
def test_ic_keras2_h5_agrees_with_float(mlperf_dir, tmp_path):
    task = _task(mlperf_dir, "ic")
    cal = tmp_path / "cal.npz"
    np.savez(cal, x=mlperf.calibration(task))
    out = tmp_path / "ic_int8.tflite"
    edgesdk.compress(task.source, "host", "int8", out, train_data=cal)
    float_out = evaluate.predict(task.float_tflite.read_bytes(), task.real_inputs)
    ours = evaluate.predict(out.read_bytes(), task.real_inputs)
    assert float_out.argmax(1).tolist() == ours.argmax(1).tolist()
    assert analyze(out).macs == analyze(task.float_tflite).macs
