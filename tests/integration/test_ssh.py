"""Deploy and measure over a real OpenSSH server on loopback; host keys, auth and faults."""

import re
import sys

import pytest

import edgesdk
from device_agent.protocol import BenchSettings
from edgesdk.deploy.ssh import SshTransport, parse_url
from edgesdk.errors import DeployError, MeasurementError
from tests import sshd

pytestmark = pytest.mark.skipif(sshd.available() is not None, reason=str(sshd.available()))
FAST = BenchSettings(runs=10, warmup=1, min_time_s=0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = sshd.start(tmp_path_factory.mktemp("sshd"))
    yield s
    s.stop()


def transport(server, python=sys.executable, **kwargs):
    kwargs.setdefault("known_hosts", server.known_hosts)
    kwargs.setdefault("key_filename", str(server.user_key))
    return SshTransport(server.url(python), ssh_config="/dev/null", **kwargs)


def test_bench_over_ssh_uploads_once_and_caches(server, tflite_path):
    store = edgesdk.Store()
    first_t = transport(server)
    first_t.clean()  # a clean device cache
    first_t = transport(server)
    m = edgesdk.bench(tflite_path, first_t, FAST, store=store)
    assert not m.cached and m.latency["p50_ms"] > 0 and m.device == server.url(sys.executable)
    assert first_t.uploads == 3  # the operator probe, the agent zipapp and the model
    again_t = transport(server)
    again = edgesdk.bench(tflite_path, again_t, FAST, store=store, fresh=True)
    assert not again.cached and again_t.uploads == 0  # all three already on the device
    assert again.document["output_checksum"] == m.document["output_checksum"]
    cached = edgesdk.bench(tflite_path, transport(server), FAST, store=store)
    assert cached.cached and store.count_measurements() == 2


def test_old_device_runtime_refuses_before_the_model_is_uploaded(server, old_runtime_python, newer_ops_path):
    t = transport(server, python=old_runtime_python)
    with pytest.raises(MeasurementError, match="tflite_runtime 2.14.0 cannot run this model.*FULLY_CONNECTED "
                                               "version 12.*before uploading"):
        edgesdk.bench(newer_ops_path, t, FAST)
    check = transport(server)
    listing = check._exec(f"ls {check._cache_dir()}", 30).stdout
    assert "ops.tflite" in listing and newer_ops_path.name not in listing


def test_unknown_host_is_refused_until_trusted(server, tmp_path):
    known = tmp_path / "known_hosts"
    with pytest.raises(DeployError, match="unknown host key; refusing.*--trust-new-host"):
        transport(server, known_hosts=known)
    transport(server, known_hosts=known, trust_new_host=True).close()
    assert server.host_pub.split()[1] in known.read_text()
    transport(server, known_hosts=known).close()  # now known: no flag needed


def test_changed_host_key_is_always_refused(server, tmp_path):
    other = sshd.keygen(tmp_path / "other")
    algo, key = (tmp_path / "other.pub").read_text().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{server.port} {algo} {key}\n")
    assert other.exists()
    for trust in (False, True):
        with pytest.raises(DeployError, match="host key CHANGED"):
            transport(server, known_hosts=known, trust_new_host=trust)


def test_authentication_failure(server, tmp_path):
    stranger = sshd.keygen(tmp_path / "stranger")
    with pytest.raises(DeployError, match="authentication failed"):
        transport(server, key_filename=str(stranger))


def test_unreachable_host(server):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    with pytest.raises(DeployError, match="cannot connect"):
        SshTransport(f"ssh://root@127.0.0.1:{closed_port}", known_hosts=server.known_hosts,
                     key_filename=str(server.user_key), ssh_config="/dev/null", connect_timeout=3)


def test_device_without_tflite_runtime(server, tflite_path):
    """Debian's /usr/bin/python3 over a non-interactive login has no numpy and no runtime."""
    store = edgesdk.Store()
    with pytest.raises(MeasurementError, match="no TFLite runtime found.*pip install"):
        edgesdk.bench(tflite_path, transport(server, python="/usr/bin/python3"), FAST, store=store)
    assert store.count_measurements() == 0


def test_missing_interpreter_on_device(server, tflite_path):
    with pytest.raises(DeployError, match="not found on the device"):
        edgesdk.bench(tflite_path, transport(server, python="/nonexistent/python3"), FAST)


def test_agent_over_timeout_is_stopped_and_nothing_stored(server, tflite_path):
    store = edgesdk.Store()
    slow = BenchSettings(runs=1_000_000, warmup=1_000_000, min_time_s=120)
    with pytest.raises(DeployError, match="timeout"):
        edgesdk.bench(tflite_path, transport(server), slow, store=store, timeout_s=4)
    assert store.count_measurements() == 0


@pytest.mark.parametrize("url, fragment", [
    ("ssh://", "expected a device URL"),
    ("http://host", "expected a device URL"),
    ("ssh://pi@host:99999", "invalid port"),
    ("ssh://pi@host?colour=red", "unknown option"),
])
def test_bad_urls(url, fragment):
    with pytest.raises(DeployError, match=None) as info:
        parse_url(url)
    assert fragment in str(info.value)


def test_url_parts():
    assert parse_url("ssh://pi@raspberrypi.local:2222?python=/home/pi/venv/bin/python") == {
        "user": "pi", "host": "raspberrypi.local", "port": 2222, "python": "/home/pi/venv/bin/python", "cache": None}
    assert parse_url("ssh://h?cache=/data/edgesdk")["cache"] == "/data/edgesdk"


def test_measurements_on_one_device_never_overlap(server, tflite_path):
    """Two hosts measuring the same device at once: the agent's lock runs them one after the other."""
    from concurrent.futures import ThreadPoolExecutor

    settings = BenchSettings(runs=10, warmup=1, min_time_s=1.0)

    def one(_):
        return edgesdk.bench(tflite_path, transport(server), settings, fresh=True).document

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(one, range(2))
    first, second = sorted((a, b), key=lambda d: d["started_at"])
    assert second["started_at"] >= first["finished_at"]


def test_cli_bench_over_ssh_with_ssh_config_and_trust(server, tflite_path, tmp_path):
    """As a user runs it: a Host alias from ~/.ssh/config, an unknown host refused, then trusted."""
    import json
    import os
    import shutil
    import subprocess
    from pathlib import Path

    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        f"Host testdevice\n  HostName 127.0.0.1\n  Port {server.port}\n  User {server.user}\n"
        f"  IdentityFile {server.user_key}\n")
    edgesdk_bin = shutil.which("edgesdk", path=str(Path(sys.executable).parent))
    env = dict(os.environ, HOME=str(home))
    argv = [edgesdk_bin, "bench", str(tflite_path), "--device", f"ssh://testdevice?python={sys.executable}",
            "--runs", "5", "--min-time", "0", "--json"]
    refused = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert refused.returncode == 2 and "unknown host key" in refused.stderr and "Traceback" not in refused.stderr
    trusted = subprocess.run([*argv, "--trust-new-host"], capture_output=True, text=True, env=env, check=False)
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout)["latency"]["runs"] >= 5
    assert server.host_pub.split()[1] in (home / ".ssh" / "known_hosts").read_text()



def _user_home(server, tmp_path):
    return sshd.user_home(server, tmp_path / "home")


def test_cli_devices_check_and_clean_over_ssh(server, tflite_path, tmp_path):
    import json
    import os
    import shutil
    import subprocess
    from pathlib import Path

    env = dict(os.environ, HOME=str(_user_home(server, tmp_path)))
    cli = shutil.which("edgesdk", path=str(Path(sys.executable).parent))

    def run(*args):
        return subprocess.run([cli, *args], capture_output=True, text=True, env=env, check=False)

    assert run("devices", "add", "bare", "ssh://testdevice?python=/usr/bin/python3").returncode == 0
    assert run("devices", "add", "venv", f"ssh://testdevice?python={sys.executable}").returncode == 0
    bare = run("devices", "check", "bare", "--json")
    doc = json.loads(bare.stdout)
    assert bare.returncode == 1 and doc["reachable"] and doc["runtime"] is None
    assert "pip install" in doc["runtime_error"]
    assert doc["python"] and doc["python"].count(".") == 2  # Debian's python3 answered
    good = run("devices", "check", "venv")
    assert good.returncode == 0 and "ai_edge_litert 2.3.0" in good.stdout
    measured = run("bench", str(tflite_path), "--device", "venv", "--runs", "5", "--min-time", "0")
    assert measured.returncode == 0, measured.stderr
    cleaned = run("devices", "clean", "venv")
    removed = re.search(r"removed (\d+) file", cleaned.stdout)
    assert cleaned.returncode == 0 and removed, cleaned.stdout
    assert int(removed.group(1)) >= 4  # at least the agent, a probe, the model and the lock
    unreachable = run("devices", "check", "ssh://nobody@127.0.0.1:1")
    assert unreachable.returncode == 1 and "cannot connect" in unreachable.stdout


def _run_in_background(fn):
    import threading

    box = {}

    def target():
        try:
            box["result"] = fn()
        except Exception as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    return thread, box


def _descends_from(pid, ancestor):
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == ancestor:
            return True
    return False


def _wait_for_agent(server, timeout=20):
    """PIDs of the agent's python process itself (not the `timeout` wrapper around it), under this
    test's sshd only: other tests running in parallel start agents of their own."""
    import re
    import subprocess
    import time

    pattern = f"^{re.escape(sys.executable)} \\S*edgesdk-agent-\\S*\\.pyz bench "
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        mine = [int(p) for p in found if _descends_from(int(p), server.proc.pid)]
        if mine:
            return mine
        time.sleep(0.1)
    raise AssertionError("the agent never started")


def test_agent_killed_mid_run(server, tflite_path):
    import os
    import signal
    import time

    store = edgesdk.Store()
    slow = BenchSettings(runs=1_000_000, warmup=1_000_000, min_time_s=60)
    thread, box = _run_in_background(lambda: edgesdk.bench(tflite_path, transport(server), slow, store=store))
    pids = _wait_for_agent(server)
    time.sleep(1.0)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    thread.join(30)
    assert isinstance(box.get("error"), MeasurementError), box
    assert "killed (signal 9)" in str(box["error"]) and store.count_measurements() == 0


def test_connection_dropped_mid_run(server, tflite_path):
    """The sshd process serving our session dies (as when a device's network goes): clear error."""
    import os
    import signal
    import subprocess
    import time

    store = edgesdk.Store()
    slow = BenchSettings(runs=1_000_000, warmup=1_000_000, min_time_s=60)
    thread, box = _run_in_background(lambda: edgesdk.bench(tflite_path, transport(server), slow, store=store,
                                                           timeout_s=90))
    agents = _wait_for_agent(server)
    time.sleep(1.0)
    sessions = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
    assert sessions, "no sshd session process found"
    for pid in sessions:
        os.kill(int(pid), signal.SIGKILL)
    thread.join(60)
    for pid in agents:  # the orphaned agent on the "device"
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert isinstance(box.get("error"), DeployError), box
    assert "connection dropped" in str(box["error"]) and store.count_measurements() == 0


def test_device_disk_full(server, tflite_path, tmp_path):
    """The device cache on a 64 KiB filesystem: the agent (a compressed zipapp, ~25 KB) fits, the model does not."""
    import subprocess

    big = tmp_path / "big.tflite"
    big.write_bytes(tflite_path.read_bytes() + b"\0" * 100_000)  # trailing bytes: still a valid flatbuffer file
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(small)]).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        t = SshTransport(server.url(sys.executable) + f"&cache={small}", known_hosts=server.known_hosts,
                         key_filename=str(server.user_key), ssh_config="/dev/null")
        store = edgesdk.Store()
        with pytest.raises(DeployError, match="cannot upload big.tflite.*disk full"):
            edgesdk.bench(big, t, FAST, store=store)
        assert store.count_measurements() == 0
        assert not [p.name for p in small.iterdir() if ".part-" in p.name]  # no partial file left behind
    finally:
        subprocess.run(["umount", str(small)], check=False)


@pytest.mark.skipif(sshd.netns_available() is not None, reason=str(sshd.netns_available()))
def test_bench_on_a_separate_host_in_its_own_network_namespace(tflite_path, tmp_path):
    """The device is another host: its own network stack, reached over a veth link, not loopback."""
    import os

    name = f"esdk{os.getpid() % 100000}"
    sshd.make_netns(name)
    try:
        device = sshd.start(tmp_path / "device", address=sshd.NETNS_DEVICE_IP, port=22, netns=name)
        try:
            # the namespace has its own network but shares this filesystem: give it its own cache
            t = SshTransport(device.url(sys.executable) + f"&cache={tmp_path / 'device-cache'}",
                             known_hosts=device.known_hosts, key_filename=str(device.user_key),
                             ssh_config="/dev/null")
            m = edgesdk.bench(tflite_path, t, FAST, store=edgesdk.Store())
            assert m.latency["p50_ms"] > 0 and t.uploads == 3  # probe, agent, model
            assert m.device.startswith(f"ssh://{device.user}@{sshd.NETNS_DEVICE_IP}:22")
        finally:
            device.stop()
    finally:
        sshd.remove_netns(name)


def test_clean_removes_only_what_edgesdk_uploaded(server, tflite_path, tmp_path):
    """?cache= may name a folder the user keeps files in: clean deletes the recorded uploads and nothing else."""
    mine = tmp_path / "projects"
    (mine / "notes").mkdir(parents=True)
    (mine / "results.csv").write_text("kept\n")
    (mine / "notes" / "todo.txt").write_text("kept\n")
    (mine / "bench.lock").write_text("a user's file of the agent's lock name\n")
    def connect():
        return SshTransport(f"{server.url(sys.executable)}&cache={mine}", ssh_config="/dev/null",
                            known_hosts=server.known_hosts, key_filename=str(server.user_key))

    edgesdk.bench(tflite_path, connect(), FAST, store=edgesdk.Store())
    ours = sorted(p.name for p in mine.iterdir())
    assert any(n.endswith(tflite_path.name) for n in ours) and any(n.endswith(".pyz") for n in ours)
    t = connect()
    done = t.clean()
    assert done.removed >= 3 and done.kept == 3 and done.directory == str(mine)
    assert sorted(p.name for p in mine.iterdir()) == ["bench.lock", "notes", "results.csv"]
    assert (mine / "bench.lock").read_text().startswith("a user's")  # its name is the lock's, but it was there first
    assert (mine / "notes" / "todo.txt").is_file()
    assert t.clean().removed == 0  # nothing left of ours; the user's folder stays
    assert mine.is_dir()
