"""`devices setup` on real devices: the SSH test host (Debian's python3, no numpy) and the arm64 device
under qemu-user, online and offline (wheels chosen by the device's platform tags), through the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import armdev, sshd

CLI = shutil.which("edgesdk", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if sshd.available():
        pytest.skip(str(sshd.available()))
    s = sshd.start(tmp_path_factory.mktemp("sshd"))
    yield s
    s.stop()


def _cli(env):
    def run(*args, timeout=1800):
        return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False)
    return run


def _devices(run) -> dict:
    return json.loads(run("devices", "list", "--json").stdout)


def test_setup_online_then_offline_on_debians_python(server, tmp_path):
    env = dict(os.environ, HOME=str(sshd.user_home(server, tmp_path / "home")))
    run = _cli(env)
    assert run("devices", "add", "box", "ssh://testdevice?python=/usr/bin/python3").returncode == 0
    assert run("devices", "check", "box").returncode == 1  # Debian's python: no numpy, no runtime
    done = run("devices", "setup", "box")
    assert done.returncode == 0, done.stderr
    assert "set up: ai_edge_litert 2.3.0" in done.stdout and "installing numpy" in done.stderr
    url = _devices(run)["box"]
    assert "venv-ai-edge-litert/bin/python" in url and "/usr/bin/python3" not in url
    assert run("devices", "check", "box").returncode == 0
    again = run("devices", "setup", "box", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["changed"] is False  # idempotent
    # Offline: the wheels are downloaded here for the device's platform and pushed over SFTP.
    assert run("devices", "add", "old", "ssh://testdevice").returncode == 0
    offline = run("devices", "setup", "old", "--offline", "--runtime", "tflite-runtime", "--json")
    assert offline.returncode == 0, offline.stderr
    doc = json.loads(offline.stdout)
    assert doc["runtime"]["name"] == "tflite_runtime" and doc["offline"] and doc["platform"]["machine"] == "x86_64"
    assert any("pushing" in step for step in doc["steps"])
    assert "venv-tflite-runtime" in _devices(run)["old"]
    # `devices clean` removes what was uploaded, not the environment the record points at
    assert run("devices", "clean", "old").returncode == 0
    assert run("devices", "check", "old").returncode == 0


def test_a_failed_setup_leaves_the_device_and_its_record_as_they_were(server, tmp_path):
    env = dict(os.environ, HOME=str(sshd.user_home(server, tmp_path / "home")))
    run = _cli(env)
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(small)]).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        url = f"ssh://testdevice?python=/usr/bin/python3&cache={small}"
        assert run("devices", "add", "tiny", url).returncode == 0
        failed = run("devices", "setup", "tiny")
        assert failed.returncode != 0 and "Traceback" not in failed.stderr
        last = failed.stderr.strip().splitlines()[-1]
        assert "installing ai-edge-litert failed" in last and "disk full" in last  # one line: the step, the cause
        assert last.count("ssh://") == 1
        assert _devices(run)["tiny"] == url  # the record is unchanged
        assert not [p.name for p in small.iterdir() if p.name.startswith("venv-")]  # nothing half-made is left
        refused = run("devices", "setup", "local")
        assert refused.returncode != 0 and "ssh:// and adb://" in refused.stderr
    finally:
        subprocess.run(["umount", str(small)], check=False)


@pytest.mark.skipif(armdev.available() is not None, reason=str(armdev.available()))
def test_the_arm_device_end_to_end(tmp_path, keras3_path, newer_ops_path):
    """An aarch64 Raspberry-Pi-OS-like board: set up online, measured (emulation said), tuned for rpi5;
    set up offline with aarch64 wheels, whose old runtime the operator probe then finds too old."""
    device = armdev.start(tmp_path / "arm")
    try:
        home = tmp_path / "home"
        device.ssh_config(home)
        env = dict(os.environ, HOME=str(home))
        run = _cli(env)
        assert run("devices", "add", "pi", "ssh://armdev").returncode == 0
        check = json.loads(run("devices", "check", "pi", "--json").stdout)
        described = check["description"]
        assert check["runtime"] is None and described["machine"] == "aarch64"
        assert described["emulated"] and described["cpu_model"].startswith("emulated aarch64")
        done = run("devices", "setup", "pi")
        assert done.returncode == 0, done.stderr
        assert "Linux aarch64" in done.stdout and "ai_edge_litert 2.3.0" in done.stdout
        out = tmp_path / "tuned"
        tuned = run("tune", str(keras3_path), "-p", "rpi5", "--device", "pi", "--budget", "2", "--runs", "5",
                    "--min-time", "0", "--precision", "int8", "--precision", "fp32", "--prune", "none", "--cluster",
                    "none", "--structure", "none", "--space", "post=none", "-o", str(out))
        assert tuned.returncode == 0, tuned.stderr
        rows = [r for r in json.loads((out / "results.json").read_text())["trials"] if r.get("recipe")]
        assert [r["status"] for r in rows] == ["measured", "measured"]
        assert all(r["device"]["machine"] == "aarch64" and r["device"]["emulated"] for r in rows)
        # offline: numpy<2 and tflite-runtime's manylinux_2_34_aarch64 wheel, picked by the device's glibc
        assert run("devices", "add", "oldpi", "ssh://armdev").returncode == 0
        offline = run("devices", "setup", "oldpi", "--offline", "--runtime", "tflite-runtime", "--json")
        assert offline.returncode == 0, offline.stderr
        assert json.loads(offline.stdout)["runtime"]["name"] == "tflite_runtime"
        refused = run("bench", str(newer_ops_path), "--device", "oldpi", "--runs", "3")
        assert refused.returncode != 0 and "FULLY_CONNECTED version 12" in refused.stderr
        assert "checked on the device before uploading" in refused.stderr
    finally:
        device.stop()
