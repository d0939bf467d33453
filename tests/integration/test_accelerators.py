"""LiteRT's GPU accelerator for real: Mesa's software Vulkan (lavapipe) stands in for a phone's GPU.

The GPU path is the real one (CompiledModel, ML Drift over WebGPU/Dawn on Vulkan); only the adapter is
a CPU rasterizer, so the timings are not GPU speed and every result says "software". Skipped with the
reason where no Vulkan adapter exists (Debian 12's Mesa 22.3 is refused by Dawn; .ci/run installs
Mesa 25 from bookworm-backports).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import edgesdk
from device_agent.protocol import BenchSettings

ROOT = Path(__file__).resolve().parents[2]
FAST = BenchSettings(runs=5, warmup=1, min_time_s=0.0, power=False)
CLI = shutil.which("edgesdk", path=str(Path(sys.executable).parent))


def _agent(model: Path, *args: str, env: dict | None = None, python: str = sys.executable) -> dict:
    done = subprocess.run([python, "-m", "device_agent", "bench", str(model), "--runs", "3", "--warmup", "0",
                           "--min-time", "0", "--no-power", *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def gpu_models(tmp_path_factory, keras3_path):
    """(float CNN, a model whose GATHER_ND the GPU delegate refuses), or a skip when there is no GPU."""
    import tensorflow as tf

    d = tmp_path_factory.mktemp("gpu")
    cnn = d / "cnn_fp32.tflite"
    edgesdk.compress(keras3_path, "host", "fp32", cnn)
    probe = _agent(cnn, "--accelerator", "gpu")
    if probe.get("error"):
        pytest.skip(f"no GPU adapter for LiteRT here: {probe.get('message')}")

    @tf.function
    def gather(x):
        h = tf.nn.relu(x) + 1.0
        return tf.gather_nd(tf.reshape(h, [8, 8]), [[1, 2], [3, 4]])

    concrete = gather.get_concrete_function(tf.TensorSpec([1, 8, 8, 1], tf.float32))
    partial = d / "gather_nd.tflite"
    partial.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert())
    return cnn, partial


def _bench_json(model: Path) -> dict:
    done = subprocess.run([CLI, "bench", str(model), "-p", "mobile-gpu", "--runs", "3", "--min-time", "0",
                           "--no-power", "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_gpu_bench_reports_the_adapter_full_acceleration_and_fidelity(gpu_models):
    cnn, _ = gpu_models
    doc = _bench_json(cnn)
    acc = doc["accelerator"]
    assert acc["requested"] == "gpu" and acc["used"] == "gpu" and acc["fully_accelerated"] is True  # profile default
    assert acc["adapter"]["software"] is True and acc["adapter"]["backend"] == "Vulkan"
    assert acc["fidelity"]["reference"] == "cpu" and acc["fidelity"]["sqnr_db"] > 40  # fp16 compute vs fp32
    assert doc["delegate"] == "litert-gpu" and doc["settings"]["accelerator"] == "gpu"
    assert doc["device"]["gpu"].startswith("llvmpipe") and doc["device"]["gpu"].endswith("software)")
    assert any("software GPU" in w and "not GPU speed" in w for w in doc["warnings"])
    assert doc["prediction"] == {"profile": "mobile-gpu", "fallback_ops": [], "disagreement": None}
    # The CPU measurement of the same model is another result, not answered by the GPU's.
    store = edgesdk.Store()
    on_cpu = edgesdk.bench(cnn, "local", FAST, store=store)
    assert on_cpu.document["accelerator"]["used"] == "cpu" and on_cpu.document["accelerator"]["fidelity"] is None
    on_gpu = edgesdk.bench(cnn, "local", BenchSettings(**{**FAST.to_dict(), "accelerator": "gpu"}), store=store)
    assert not on_gpu.cached and on_gpu.key != on_cpu.key
    table = subprocess.run([CLI, "bench", str(cnn), "--accelerator", "gpu", "--runs", "5", "--min-time", "0",
                            "--no-power"], capture_output=True, text=True, check=False)
    assert table.returncode == 0 and "SOFTWARE" in table.stdout and "fully accelerated" in table.stdout


def test_the_users_samples_check_the_gpu_instead_of_generated_inputs(gpu_models, data_files):
    cnn, _ = gpu_models
    _, val, _ = data_files
    store = edgesdk.Store()
    gpu = BenchSettings(**{**FAST.to_dict(), "accelerator": "gpu"})
    given = edgesdk.bench(cnn, "local", gpu, store=store, data=val)
    fid = given.document["accelerator"]["fidelity"]
    assert fid["on"] == "given samples" and fid["inputs"] == 16 and fid["sqnr_db"] > 40
    assert fid["worst_sample_sqnr_db"] <= fid["sqnr_db"]  # one sample's noise is never below the pooled figure
    assert given.document["inputs"] == {"source": "given", "samples": 16}
    generated = edgesdk.bench(cnn, "local", gpu, store=store)  # other inputs: another result, not the store's
    assert not generated.cached and generated.document["accelerator"]["fidelity"]["on"] == "generated inputs"
    assert edgesdk.bench(cnn, "local", gpu, store=store, data=val).cached  # the same samples: answered


def test_a_partial_fallback_names_the_operators_the_profile_predicted(gpu_models):
    _, partial = gpu_models
    doc = _bench_json(partial)
    acc = doc["accelerator"]
    assert acc["fully_accelerated"] is False and acc["fallback_ops"] == ["GATHER_ND"]
    assert acc["ops_on_cpu"] == 1 and acc["ops_on_accelerator"] >= 1
    assert any("not fully accelerated: GATHER_ND" in w for w in doc["warnings"])
    assert doc["prediction"]["fallback_ops"] == ["GATHER_ND"] and doc["prediction"]["disagreement"] is None


def test_a_device_without_the_accelerator_is_a_one_line_error(gpu_models, old_runtime_python):
    cnn, _ = gpu_models
    no_vulkan = dict(os.environ, VK_ICD_FILENAMES="/nonexistent/icd.json")
    doc = _agent(cnn, "--accelerator", "gpu", env=no_vulkan)
    assert doc["error"] == "no_accelerator" and "no GPU" in doc["message"]
    cli = subprocess.run([CLI, "bench", str(cnn), "--accelerator", "gpu", "--runs", "3"], env=no_vulkan,
                         capture_output=True, text=True, check=False)
    assert cli.returncode != 0 and "no GPU for LiteRT" in cli.stderr and "Traceback" not in cli.stderr
    assert len(cli.stderr.strip().splitlines()) == 1
    fallback = _agent(cnn, "--accelerator", "auto", env=no_vulkan)  # auto takes the best there is: the CPU here
    assert fallback["accelerator"]["used"] == "cpu" and "no GPU" in fallback["accelerator"]["note"]
    assert any("auto: the CPU ran it" in w for w in fallback["warnings"])
    npu = _agent(cnn, "--accelerator", "npu")
    assert npu["error"] == "no_accelerator" and "no NPU" in npu["message"]
    # tflite-runtime 2.14 has no CompiledModel: no accelerator, never a silent CPU run
    old = _agent(cnn, "--accelerator", "gpu", python=old_runtime_python)
    assert old["error"] == "no_accelerator" and "tflite_runtime" in old["message"]
    auto = _agent(cnn, "--accelerator", "auto", python=old_runtime_python)
    assert auto["accelerator"]["used"] == "cpu" and auto["accelerator"]["requested"] == "auto"


def test_devices_check_names_the_gpu_and_why_there_is_no_npu(gpu_models):
    done = subprocess.run([CLI, "devices", "check", "local", "--json"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)["accelerators"]
    assert found["gpu"].startswith("llvmpipe") and found["gpu"].endswith("software)")
    assert found["npu"].startswith("none: no NPU for LiteRT here")
    no_vulkan = dict(os.environ, VK_ICD_FILENAMES="/nonexistent/icd.json")
    table = subprocess.run([CLI, "devices", "check", "local"], env=no_vulkan, capture_output=True, text=True,
                           check=False)
    assert table.returncode == 0 and "none: no GPU for LiteRT here" in table.stdout  # the CPU still measures


def test_tune_requires_full_acceleration_before_device_time(gpu_models, tmp_path):
    _, partial = gpu_models
    store = edgesdk.Store()
    result = edgesdk.tune(partial, "mobile-gpu", tmp_path / "out", devices=["local"], budget=1, store=store,
                          settings=FAST, space=edgesdk.search.build(edgesdk.load_profile("mobile-gpu"),
                                                                    precision=["fp32"], prune=["none"],
                                                                    cluster=["none"], structure=["none"],
                                                                    post=["none"]),
                          constraints=edgesdk.search.Constraints(require_full_acceleration=True))
    row = [r for r in result.trials if r.get("recipe")][0]
    assert row["status"] == "rejected" and row["stage"] == "acceleration" and "GATHER_ND" in row["reason"]
    assert store.count_measurements() == 0 and result.new_measurements == 0
    cpu_only = subprocess.run([CLI, "tune", str(partial), "-p", "rpi5", "--require-full-acceleration", "-o",
                               str(tmp_path / "cpu")], capture_output=True, text=True, check=False)
    assert cpu_only.returncode == 2 and "needs a GPU or NPU" in cpu_only.stderr


def test_calibrate_on_the_gpu_costs_every_precision_as_float(gpu_models):
    from edgesdk.search import predict
    from edgesdk.tflite.facts import analyze

    profile = edgesdk.load_profile("mobile-gpu")
    fitted = predict.calibrate(profile, "local", count=6, settings=BenchSettings(runs=5, warmup=1, min_time_s=0))
    assert fitted.calibrated and fitted.accelerator == "gpu" and fitted.precisions == ["fp32"]
    assert fitted.samples == 6 and fitted.fit_mape is not None
    cnn, _ = gpu_models
    report = analyze(cnn)
    features = predict.features(report, profile)
    assert features["float_conv"] > 0 and features["int8_conv"] == 0
    loaded = predict.load(profile)
    assert loaded.calibrated and loaded.accelerator == "gpu" and loaded.predict_ms(cnn, profile) > 0
