"""Bench through the device agent in its own process, the store answering repeats."""

import json
import subprocess
import sys

import pytest

import edgesdk
from device_agent.protocol import ERROR_SCHEMA, SCHEMA, BenchSettings
from edgesdk.deploy import LocalTransport
from edgesdk.errors import DeployError, MeasurementError, ModelError

FAST = BenchSettings(runs=20, warmup=2, min_time_s=0.05)


def test_measurement_document(tflite_path):
    m = edgesdk.bench(tflite_path, "local", FAST, store=edgesdk.Store())
    doc = m.document
    assert not m.cached and doc["schema"] == SCHEMA
    lat = doc["latency"]
    assert lat["runs"] >= 20 and lat["warmup_runs"] == 2
    assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p90_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert lat["first_inference_ms"] > 0 and lat["init_ms"] > 0
    assert doc["memory"]["model_bytes"] == tflite_path.stat().st_size
    assert doc["memory"]["peak_rss_bytes"] >= doc["memory"]["peak_rss_increase_bytes"] > 0
    assert doc["runtime"]["name"] == "ai_edge_litert" and doc["runtime"]["version"] == "2.3.0"
    assert doc["device"]["cores"] >= 1 and len(doc["device"]["fingerprint"]) == 16
    # this machine has no power sensor: the reason is given, and no number is made up
    assert doc["power"]["source"] is None and "no power source found" in doc["power"]["reason"]


def test_agent_runs_in_a_separate_process(tflite_path):
    import os

    transport = LocalTransport()
    run = transport.run_agent(["bench", str(tflite_path), *FAST.to_args()], timeout=120)
    doc = json.loads(run.stdout)
    assert run.returncode == 0 and doc["schema"] == SCHEMA
    assert doc["device"]["hostname"] == os.uname().nodename
    # the checksum of the outputs is deterministic for the same model and inputs
    again = json.loads(transport.run_agent(["bench", str(tflite_path), *FAST.to_args()], timeout=120).stdout)
    assert again["output_checksum"] == doc["output_checksum"]


def test_store_answers_a_repeat_unless_fresh(tflite_path):
    store = edgesdk.Store()
    first = edgesdk.bench(tflite_path, "local", FAST, store=store)
    second = edgesdk.bench(tflite_path, "local", FAST, store=store)
    assert second.cached and second.document == first.document and second.key == first.key
    assert store.count_measurements() == 1
    fresh = edgesdk.bench(tflite_path, "local", FAST, store=store, fresh=True)
    assert not fresh.cached and store.count_measurements() == 2
    other = edgesdk.bench(tflite_path, "local", BenchSettings(runs=21, warmup=2, min_time_s=0.05), store=store)
    assert not other.cached and other.key != first.key


def test_threads_setting_reaches_the_runtime(tflite_path):
    m = edgesdk.bench(tflite_path, "local", BenchSettings(runs=5, warmup=0, min_time_s=0, threads=1))
    assert m.document["threads"] == 1 and m.document["settings"]["threads"] == 1


def test_the_agent_reports_the_median_of_each_window_of_runs(tflite_path):
    m = edgesdk.bench(tflite_path, "local", BenchSettings(runs=200, warmup=2, min_time_s=0.1, windows=4))
    latency = m.document["latency"]
    assert len(latency["window_p50_ms"]) == 4 and m.document["settings"]["windows"] == 4
    quiet = min(latency["window_p50_ms"])
    assert latency["min_ms"] <= quiet <= max(latency["window_p50_ms"])
    if max(latency["window_p50_ms"]) > 1.1 * quiet:  # the machine changed speed: the quietest window is reported
        assert latency["p50_ms"] == pytest.approx(quiet) and any("changed speed" in w for w in m.document["warnings"])
    else:
        assert latency["runs"] >= 200


def test_bench_refuses_non_tflite(keras3_path):
    with pytest.raises(ModelError, match="bench measures .tflite models"):
        edgesdk.bench(keras3_path)


def test_unknown_device_scheme():
    with pytest.raises(DeployError, match="unsupported device 'ftp://x'"):
        from edgesdk.deploy import open_transport
        open_transport("ftp://x")


def test_agent_timeout_is_a_deploy_error(tflite_path):
    slow = BenchSettings(runs=1_000_000, warmup=1_000_000, min_time_s=60)
    with pytest.raises(DeployError, match="timeout"):
        edgesdk.bench(tflite_path, "local", slow, timeout_s=3)


def test_missing_interpreter_is_a_deploy_error(tflite_path, tmp_path):
    with pytest.raises(DeployError, match="cannot start the device agent"):
        edgesdk.bench(tflite_path, LocalTransport(python=str(tmp_path / "no-python")))


def test_device_without_a_tflite_runtime(tflite_path, tmp_path):
    """Python without site-packages (no numpy, no runtime), as on a fresh board; the agent itself
    still travels on PYTHONPATH."""
    bare = tmp_path / "bare-python"
    bare.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    bare.chmod(0o755)
    with pytest.raises(MeasurementError, match="no TFLite runtime found.*pip install"):
        edgesdk.bench(tflite_path, LocalTransport(python=str(bare)))


def test_agent_reports_errors_as_documents(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00\x00\x00\x00TFL3garbage")
    proc = subprocess.run([sys.executable, "-m", "device_agent", "bench", str(bad), "--runs", "1"],
                          capture_output=True, text=True, check=False)
    doc = json.loads(proc.stdout)
    assert proc.returncode != 0 and doc["schema"] == ERROR_SCHEMA and doc["message"]


def test_operator_version_the_runtime_lacks_is_named_before_running(tflite_path, tmp_path):
    """A model asking for an operator version newer than the device runtime has (as TF 2.21 models do
    on tflite-runtime 2.14): the real runtime refuses it at load time and the error says which."""
    from ai_edge_litert import schema_py_generated as fb
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(tflite_path))
    for code in model.operatorCodes:
        if max(code.builtinCode, code.deprecatedBuiltinCode) == fb.BuiltinOperator.CONV_2D:
            code.version = 99
    newer = tmp_path / "newer.tflite"
    flatbuffer_utils.write_model(model, str(newer))
    store = edgesdk.Store()
    with pytest.raises(MeasurementError, match="ai_edge_litert 2.3.0 cannot run this model.*CONV_2D version 99"):
        edgesdk.bench(newer, "local", FAST, store=store)
    assert store.count_measurements() == 0


def test_energy_through_the_agent_from_a_sysfs_tree(tflite_path, tmp_path, monkeypatch):
    """The agent process finds a hwmon sensor (here a tree the test wrote) and reports energy."""
    sensor = tmp_path / "sys/class/hwmon/hwmon0/power1_input"
    sensor.parent.mkdir(parents=True)
    sensor.write_text("2500000\n")  # a constant 2.5 W: active == idle, so no energy above idle
    monkeypatch.setenv("EDGESDK_SYSFS_ROOT", str(tmp_path))
    doc = edgesdk.bench(tflite_path, "local", FAST).document
    assert doc["power"]["source"] == "hwmon"
    assert doc["power"]["idle_w"] == pytest.approx(2.5) and doc["power"]["active_w"] == pytest.approx(2.5)
    assert doc["power"]["energy_per_inference_mj"] == pytest.approx(0.0, abs=1e-9)


def test_external_meter_command_through_the_agent(tflite_path, tmp_path):
    meter = tmp_path / "meter.sh"
    meter.write_text("#!/bin/sh\necho 4.5\n")
    meter.chmod(0o755)
    settings = BenchSettings(runs=5, warmup=0, min_time_s=0, power_cmd=str(meter))
    doc = edgesdk.bench(tflite_path, "local", settings).document
    assert doc["power"]["source"] == "command" and doc["power"]["active_w"] == pytest.approx(4.5)
    assert doc["settings"]["power_cmd"] == str(meter)


@pytest.mark.parametrize("reading", ["inf", "1e308", "-3", "nan"])
def test_a_meter_answering_garbage_gives_no_power_and_json_without_infinity(tflite_path, tmp_path, capsys, reading):
    """`inf`, `1e308` (which overflows the mean), a negative or NaN reading: no power figure, a reason that
    says why, and JSON output that any parser reads (no Infinity/NaN)."""
    from edgesdk.cli import main

    meter = tmp_path / "meter.sh"
    meter.write_text(f"#!/bin/sh\necho {reading}\n")
    meter.chmod(0o755)
    rc = main(["bench", str(tflite_path), "--runs", "3", "--power-cmd", str(meter), "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    doc = json.loads(out, parse_constant=lambda c: pytest.fail(f"{c} in the JSON output"))
    power = doc["power"] if "power" in doc else doc["document"]["power"]
    assert power["source"] is None and power.get("energy_per_inference_mj") is None, power
    assert "the power command" in power["reason"] and "gave no valid reading" in power["reason"], power


def test_local_agent_killed_mid_run(tflite_path):
    import os
    import signal
    import threading
    import time

    store = edgesdk.Store()
    box = {}

    def run():
        try:
            edgesdk.bench(tflite_path, "local", BenchSettings(runs=1_000_000, warmup=1_000_000, min_time_s=60),
                          store=store)
        except Exception as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 20
    pids: list[str] = []
    while not pids and time.monotonic() < deadline:
        pids = subprocess.run(["pgrep", "-f", f"device_agent bench {tflite_path.resolve()}"], capture_output=True,
                              text=True).stdout.split()
        time.sleep(0.1)
    assert pids, "the agent never started"
    time.sleep(0.5)
    for pid in pids:
        os.kill(int(pid), signal.SIGKILL)
    thread.join(30)
    assert isinstance(box.get("error"), MeasurementError) and "killed (signal 9)" in str(box["error"])
    assert store.count_measurements() == 0


def test_an_older_device_runtime_measures_what_it_can_run(tflite_path, old_runtime_python, newer_ops_path):
    """tflite-runtime 2.14 with numpy<2, as on many boards: it runs our int8 model; a TF 2.21 model with
    FULLY_CONNECTED v12 is refused from the operator probe, before the model goes to the device."""
    old = LocalTransport(python=old_runtime_python)
    m = edgesdk.bench(tflite_path, old, FAST)
    assert m.document["runtime"] == {"name": "tflite_runtime", "version": "2.14.0"} and m.latency["p50_ms"] > 0
    store = edgesdk.Store()
    with pytest.raises(MeasurementError, match="tflite_runtime 2.14.0 cannot run this model: it has no kernel for "
                                               "FULLY_CONNECTED version 12.*before uploading dense_dynamic.tflite"):
        edgesdk.bench(newer_ops_path, LocalTransport(python=old_runtime_python), FAST, store=store)
    assert store.count_measurements() == 0
    assert edgesdk.bench(newer_ops_path, "local", FAST).document["runtime"]["name"] == "ai_edge_litert"


def test_operator_probe_keeps_the_operator_table_and_nothing_else(tflite_path):
    from edgesdk.tflite.facts import analyze, operator_probe

    probe_path = tflite_path.parent / "probe-test.tflite"
    probe_path.write_bytes(operator_probe(tflite_path))
    real, probe = analyze(tflite_path), analyze(probe_path)
    assert probe.layers == [] and probe_path.stat().st_size < 1024 < tflite_path.stat().st_size
    from ai_edge_litert import schema_py_generated as fb

    def codes(path):
        model = fb.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
        return [(c.builtinCode, c.deprecatedBuiltinCode, c.version, c.customCode) for c in model.operatorCodes]

    assert codes(probe_path) == codes(tflite_path) and len(real.layers) > 0
