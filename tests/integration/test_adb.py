"""Deploy and measure over ADB: the real adb server (Debian `adb`) and a test device speaking the adb
device protocol (tests/adbd.py), with the agent on the device's python or TFLite's benchmark_model."""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import edgesdk
from device_agent.protocol import BenchSettings, validate
from edgesdk.cli import app
from edgesdk.deploy.adb import AdbTransport, parse_url
from edgesdk.errors import DeployError, MeasurementError
from tests import adbd

pytestmark = pytest.mark.skipif(adbd.available() is not None, reason=str(adbd.available()))
FAST = BenchSettings(runs=10, warmup=1, min_time_s=0.05)
STANDIN = Path(__file__).resolve().parent.parent / "benchmark_model_standin.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = adbd.AdbServer(tmp_path_factory.mktemp("adbhome"), _free_port())
    yield s
    s.stop()


@pytest.fixture
def phone(server, tmp_path):
    """A device with shell_v2 (Android 7+), connected to the adb server."""
    device = adbd.FakeAndroidDevice(tmp_path / "phone")
    device.serial = server.connect(device)
    yield device
    device.close()


def url(server, device, **options) -> str:
    query = "&".join([f"server=127.0.0.1:{server.port}", *(f"{k}={v}" for k, v in options.items())])
    return f"adb://{device.serial}?{query}"


def standin(tmp_path: Path, python: str) -> Path:
    """A benchmark_model 'binary' for the device: the stand-in script run by ``python``'s runtime."""
    path = tmp_path / "benchmark_model"
    path.write_text(f"#!{python}\n" + STANDIN.read_text())
    path.chmod(0o755)
    return path


def test_url_parsing():
    parsed = parse_url("adb://192.168.1.20:5555?python=/data/local/tmp/py/bin/python3&server=10.0.0.2:5038")
    assert parsed["serial"] == "192.168.1.20:5555" and parsed["server"] == ("10.0.0.2", 5038)
    assert parsed["dir"] == "/data/local/tmp/edgesdk" and parsed["python"] == "/data/local/tmp/py/bin/python3"
    with pytest.raises(DeployError, match="unknown option"):
        parse_url("adb://X?pyhton=/x")
    with pytest.raises(DeployError, match="absolute path"):
        parse_url("adb://X?dir=relative")
    with pytest.raises(DeployError, match="adb://SERIAL"):
        parse_url("adb://")


def test_bench_with_the_agent_pushes_once_and_caches(tflite_path, server, phone):
    store = edgesdk.Store()
    first = AdbTransport(url(server, phone, python=sys.executable))
    assert first.v2
    m = edgesdk.bench(tflite_path, first, FAST, store=store)
    assert not m.cached and m.document["runtime"]["name"] == "ai_edge_litert" and m.latency["p50_ms"] > 0
    assert first.uploads == 3  # the operator probe, the agent zipapp and the model
    pushed = sorted(p.name for p in (phone.tmp / "edgesdk").iterdir())
    assert any(name.endswith(tflite_path.name) for name in pushed) and not any(".part-" in n for n in pushed)
    assert any("/data/local/tmp/edgesdk/edgesdk-agent-" in c for c in phone.commands)
    again_t = AdbTransport(url(server, phone, python=sys.executable))
    again = edgesdk.bench(tflite_path, again_t, FAST, store=store, fresh=True)
    assert again_t.uploads == 0  # everything already on the device
    assert again.document["output_checksum"] == m.document["output_checksum"]
    assert edgesdk.bench(tflite_path, AdbTransport(url(server, phone, python=sys.executable)), FAST,
                         store=store).cached
    assert store.count_measurements() == 2


def test_shell_v1_device_reports_exit_codes(tflite_path, server, tmp_path):
    """An old phone without shell_v2: the exit status comes from a marker; errors still arrive."""
    old = adbd.FakeAndroidDevice(tmp_path / "old", features=("cmd",))
    old.serial = server.connect(old)
    try:
        t = AdbTransport(url(server, old, python=sys.executable))
        assert not t.v2
        assert t._exec("echo out; exit 7", 30).returncode == 7
        m = edgesdk.bench(tflite_path, t, FAST)
        assert validate(m.document)["runtime"]["name"] == "ai_edge_litert"
        with pytest.raises(DeployError, match="'/no/python' not found on the device"):
            AdbTransport(url(server, old, python="/no/python")).run_agent(["info"], 30)
    finally:
        old.close()


def test_benchmark_model_when_the_device_has_no_python(tflite_path, server, phone, tmp_path):
    binary = standin(tmp_path, sys.executable)
    t = AdbTransport(url(server, phone, python="/no/python", benchmark_model=str(binary)))
    m = edgesdk.bench(tflite_path, t, BenchSettings(runs=20, warmup=2, min_time_s=0.1))
    doc = validate(m.document)
    assert t.mode == "benchmark_model" and doc["runtime"]["name"] == "benchmark_model"
    assert doc["latency"]["runs"] >= 20 and doc["latency"]["p50_ms"] > 0 and doc["latency"]["p99_ms"] is None
    assert doc["memory"]["model_bytes"] == tflite_path.stat().st_size and doc["memory"]["peak_rss_bytes"] > 0
    assert doc["output_checksum"] is None and any("benchmark_model" in w for w in doc["warnings"])
    # The device description is the phone's, read through getprop.
    assert doc["device"]["os"].startswith("Android 14 on edgesdk Pixel Test")
    assert doc["device"]["hostname"] == "EDGETEST0001"
    assert any("--graph=/data/local/tmp/edgesdk/" in c for c in phone.commands)


def test_benchmark_model_runs_the_gpu_accelerator_with_its_own_flag(tflite_path, server, phone, tmp_path):
    """--accelerator gpu over ADB without python is benchmark_model's --use_gpu=true; its log says whether
    the GPU delegate took the whole graph (the stand-in runs LiteRT's real GPU accelerator)."""
    binary = standin(tmp_path, sys.executable)
    t = AdbTransport(url(server, phone, python="/no/python", benchmark_model=str(binary)))
    try:
        m = edgesdk.bench(tflite_path, t, BenchSettings(runs=5, warmup=1, min_time_s=0, accelerator="gpu"))
    except MeasurementError as exc:
        if "no GPU" in str(exc):
            pytest.skip(f"no GPU adapter for LiteRT here: {exc}")
        raise
    doc = validate(m.document)
    assert any("--use_gpu=true" in c for c in phone.commands)
    assert doc["accelerator"]["used"] == "gpu" and doc["accelerator"]["fully_accelerated"] is True
    assert doc["delegate"] == "gpu" and any("does not compare its outputs" in w for w in doc["warnings"])


def test_benchmark_model_when_python_has_no_runtime(tflite_path, server, phone, tmp_path):
    """A python without numpy or a TFLite runtime (-S: no site-packages) falls back to benchmark_model."""
    bare = phone.bin / "python-bare"
    bare.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    bare.chmod(0o755)
    t = AdbTransport(url(server, phone, python=str(bare), benchmark_model=str(standin(tmp_path, sys.executable))))
    m = edgesdk.bench(tflite_path, t, FAST)
    assert t.mode == "benchmark_model" and m.document["runtime"]["name"] == "benchmark_model"


def test_no_python_and_no_binary_says_what_to_do(tflite_path, server, phone):
    with pytest.raises(DeployError, match=r"not found on the device.*\?python="):
        edgesdk.bench(tflite_path, AdbTransport(url(server, phone, python="/no/python")), FAST)


def test_old_runtime_is_refused_before_the_model_is_pushed(tflite_path, server, phone, tmp_path, old_runtime_python,
                                                           newer_ops_path):
    for options in ({"python": old_runtime_python},
                    {"python": "/no/python", "benchmark_model": str(standin(tmp_path, old_runtime_python))}):
        t = AdbTransport(url(server, phone, **options))
        with pytest.raises(MeasurementError, match="no kernel for FULLY_CONNECTED version 12.*before uploading"):
            edgesdk.bench(newer_ops_path, t, FAST)
        assert not any(p.name.endswith(newer_ops_path.name) for p in (phone.tmp / "edgesdk").iterdir())
    # The same runtime runs a model whose operators it has.
    m = edgesdk.bench(tflite_path, AdbTransport(url(server, phone, python=old_runtime_python)), FAST)
    assert m.document["runtime"] == {"name": "tflite_runtime", "version": "2.14.0"}


def test_device_storage_full(tflite_path, server, tmp_path):
    full = adbd.FakeAndroidDevice(tmp_path / "full", disk_limit=2000)
    full.serial = server.connect(full)
    try:
        store = edgesdk.Store()
        with pytest.raises(DeployError, match="refused .* is its storage full"):
            edgesdk.bench(tflite_path, AdbTransport(url(server, full, python=sys.executable)), FAST, store=store)
        assert store.count_measurements() == 0
        assert not any(".part-" in p.name for p in (full.tmp / "edgesdk").iterdir())
    finally:
        full.close()


def test_connection_dropped_mid_run(tflite_path, server, tmp_path):
    device = adbd.FakeAndroidDevice(tmp_path / "flaky")
    device.serial = server.connect(device)
    store = edgesdk.Store()
    t = AdbTransport(url(server, device, python=sys.executable))
    edgesdk.device_info(t)  # the agent is on the device: the drop comes during the measurement

    def cut() -> None:
        deadline = time.time() + 30
        while not any(" bench " in c for c in device.commands) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        device.drop()

    threading.Thread(target=cut, daemon=True).start()
    try:
        with pytest.raises(DeployError, match="connection to the device dropped"):
            # A minute of work at least (min_time_s), however fast the machine.
            edgesdk.bench(tflite_path, t, BenchSettings(runs=1_000_000, warmup=1_000_000, min_time_s=60), store=store)
        assert store.count_measurements() == 0
    finally:
        device.close()


def test_agent_over_the_timeout_is_stopped(tflite_path, server, phone):
    t = AdbTransport(url(server, phone, python=sys.executable))
    with pytest.raises(DeployError, match="over the 3 s timeout"):
        edgesdk.bench(tflite_path, t, BenchSettings(runs=1_000_000, warmup=1_000_000, min_time_s=60), timeout_s=3)


def test_unknown_serial_and_no_server(server, phone):
    with pytest.raises(DeployError, match=rf"no device 'nope' .*{phone.serial} \(device\)"):
        AdbTransport(f"adb://nope?server=127.0.0.1:{server.port}")
    with pytest.raises(DeployError, match="cannot reach the adb server.*adb start-server"):
        AdbTransport(f"adb://nope?server=127.0.0.1:{_free_port()}")


def test_devices_setup_over_adb(tflite_path, server, phone):
    """`devices setup` over the adb shell: a venv under /data/local/tmp/edgesdk, recorded as the phone's python."""
    import json

    runner = CliRunner()
    assert runner.invoke(app, ["devices", "add", "phone", url(server, phone, python="/usr/bin/python3")]).exit_code == 0
    done = runner.invoke(app, ["devices", "setup", "phone", "--json"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["python"] == "/data/local/tmp/edgesdk/venv-ai-edge-litert/bin/python" and doc["changed"]
    assert doc["runtime"]["name"] == "ai_edge_litert"
    listed = json.loads(runner.invoke(app, ["devices", "list", "--json"]).stdout)
    assert "python=/data/local/tmp/edgesdk/venv-ai-edge-litert/bin/python" in listed["phone"]
    bench = runner.invoke(app, ["bench", str(tflite_path), "--device", "phone", "--runs", "3", "--min-time", "0"])
    assert bench.exit_code == 0, bench.output
    assert (phone.tmp / "edgesdk" / "venv-ai-edge-litert" / "bin" / "python").exists()


def test_cli_devices_and_bench_over_adb(tflite_path, server, phone):
    runner = CliRunner()
    device_url = url(server, phone, python=sys.executable)
    added = runner.invoke(app, ["devices", "add", "phone", device_url])
    assert added.exit_code == 0, added.output
    checked = runner.invoke(app, ["devices", "check", "phone", "--json"])
    assert checked.exit_code == 0 and '"ai_edge_litert"' in checked.output
    bench = runner.invoke(app, ["bench", str(tflite_path), "--device", "phone", "--runs", "5", "--min-time", "0"])
    assert bench.exit_code == 0 and "p50" in bench.output, bench.output
    cleaned = runner.invoke(app, ["devices", "clean", "phone"])
    assert cleaned.exit_code == 0 and "removed" in cleaned.output
    assert not (phone.tmp / "edgesdk").exists()


def test_clean_over_adb_keeps_the_users_files(tflite_path, server, phone):
    folder = phone.tmp / "work"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(b"\xff\xd8 kept")
    device = url(server, phone, python=sys.executable, dir="/data/local/tmp/work")
    edgesdk.bench(tflite_path, AdbTransport(device), BenchSettings(runs=3, warmup=1, min_time_s=0),
                  store=edgesdk.Store())
    assert len(list(folder.iterdir())) > 1
    done = AdbTransport(device).clean()
    assert done.removed >= 3 and done.kept == 1
    assert [p.name for p in folder.iterdir()] == ["photo.jpg"]
