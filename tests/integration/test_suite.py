"""Suites over a device pool: the local device, a device behind a real sshd on loopback, a device that is
down; outputs (JSON, CSV, JUnit, HTML), regression gates, and two processes filling one run on PostgreSQL."""

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

import edgesdk
from edgesdk.errors import SuiteError
from edgesdk.suite import Gates, compare, load_results, run_suite
from edgesdk.suite.runner import health
from edgesdk.suite.spec import Health
from tests import browser, sshd

CLI = Path(sys.executable).parent / "edgesdk"
FAST = {"runs": 5, "warmup": 1, "min_time_s": 0.05, "power": False}
needs_sshd = pytest.mark.skipif(sshd.available() is not None, reason=str(sshd.available()))


def write_suite(path, models, devices, recipes=("none",), **extra):
    doc = {"name": extra.pop("name", "lab"), "models": models, "recipes": list(recipes), "devices": devices,
           "bench": {**FAST, **extra.pop("bench", {})}, "health": {"retries": 1, "backoff_s": 0.2,
                                                                  **extra.pop("health", {})}, **extra}
    path.write_text(yaml.safe_dump(doc))
    return path


def ssh_home(server, tmp_path, monkeypatch):
    """HOME whose ~/.ssh knows the test sshd as 'testdevice' (key and host key), as a lab host's would."""
    home = sshd.user_home(server, tmp_path / "home")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if sshd.available() is not None:
        pytest.skip(str(sshd.available()))
    s = sshd.start(tmp_path_factory.mktemp("sshd"))
    yield s
    s.stop()


@needs_sshd
@pytest.mark.slow
def test_suite_over_local_ssh_and_a_device_that_is_down(server, keras3_path, h5_path, data_files, tmp_path,
                                                        monkeypatch):
    ssh_home(server, tmp_path, monkeypatch)
    _, val, _ = data_files
    closed = sshd._free_port()
    suite = write_suite(tmp_path / "lab.yaml",
                        [{"name": "k3", "path": str(keras3_path), "data": str(val)},
                         {"name": "tfk", "path": str(h5_path), "data": str(val)}],
                        ["local", {"name": "pi", "url": f"ssh://testdevice?python={sys.executable}"},
                         {"name": "down", "url": f"ssh://nobody@127.0.0.1:{closed}"}], recipes=["none", "int8"])
    said = []
    result = run_suite(suite, tmp_path / "out", tag="abc123", junit=tmp_path / "ci" / "junit.xml",
                       progress=lambda e: said.append((e.who, e.text)))
    run = result.run
    by_status = {s: [c for c in run["cells"] if c["status"] == s] for s in ("passed", "skipped", "failed")}
    assert len(run["cells"]) == 12 and len(by_status["passed"]) == 8 and not by_status["failed"]
    assert {c["device"] for c in by_status["skipped"]} == {"down"}
    assert all("unreachable after 2 attempts" in c["reason"] for c in by_status["skipped"])
    assert ("down", "skipped: " + by_status["skipped"][0]["reason"]) in said
    assert any(who == "down" and "trying again" in text for who, text in said)  # retried with back-off first
    assert any(who == "pi" and text.startswith("4/4 ") for who, text in said)   # progress per device
    fingerprints = {c["device"]: c["measurement"]["device"]["fingerprint"] for c in by_status["passed"]}
    assert fingerprints["local"] and fingerprints["pi"]
    for c in by_status["passed"]:
        assert c["measurement"]["model_sha256"] == c["artifact"]["sha256"]
        assert c["quality"]["metric"] == "accuracy"  # data with labels: accuracy of every recipe
    int8 = next(c for c in by_status["passed"] if c["recipe"] == "int8")
    none = next(c for c in by_status["passed"] if c["recipe"] == "none" and c["model"] == int8["model"])
    assert int8["artifact"]["bytes"] < none["artifact"]["bytes"] / 2

    stored = edgesdk.Store()  # every result landed in the store, with the run's id and tag
    assert stored.count_measurements() == 8
    assert load_results(run["run_id"], stored)["tag"] == "abc123"

    junit = ET.parse(tmp_path / "ci" / "junit.xml").getroot()
    assert (junit.get("tests"), junit.get("skipped"), junit.get("failures")) == ("12", "4", "0")
    cases = junit.findall("testcase")
    assert {c.get("classname") for c in cases} == {"edgesdk.lab.local", "edgesdk.lab.pi", "edgesdk.lab.down"}
    assert sum(c.find("skipped") is not None for c in cases) == 4
    rows = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert len(rows) == 12 and all(float(r["p50_ms"]) > 0 for r in rows if r["status"] == "passed")
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["run_id"] == run["run_id"] and len(saved["cells"]) == 12
    page = (tmp_path / "out" / "index.html").read_text()
    assert page.count("<svg") >= 8 and "src=" not in page and "href=" not in page  # self-contained
    assert "unreachable after 2 attempts" in page
    assert "<text" in page and ("ms</text>" in page or "µs</text>" in page)   # each latency axis is labelled
    if browser.available() is None:  # what a person would see wrong in a screenshot, at two widths
        for width in (1200, 700):
            assert browser.layout_problems(tmp_path / "out" / "index.html", width) == [], width


@needs_sshd
def test_a_device_that_comes_up_late_is_retried_with_back_off(server, tflite_path, tmp_path, monkeypatch):
    """The sshd starts only after the first health check failed: the retry reaches it."""
    late_dir = tmp_path / "late"
    port = sshd._free_port()
    late = {}
    host_key = sshd.keygen(tmp_path / "late_host_key")
    starter = threading.Timer(0.8, lambda: late.setdefault("s", sshd.start(late_dir, host_key, port=port)))
    late_dir.mkdir()
    (late_dir / "user_key").write_bytes(server.user_key.read_bytes())  # the same user key as the lab's
    (late_dir / "user_key").chmod(0o600)
    (late_dir / "user_key.pub").write_text(Path(f"{server.user_key}.pub").read_text())
    home = ssh_home(server, tmp_path, monkeypatch)
    with (home / ".ssh" / "config").open("a") as fh:
        fh.write(f"Host latedevice\n  HostName 127.0.0.1\n  Port {port}\n  User {server.user}\n"
                 f"  IdentityFile {server.user_key}\n")
    (home / ".ssh" / "known_hosts").write_text(
        f"[127.0.0.1]:{port} {' '.join(Path(f'{host_key}.pub').read_text().split()[:2])}\n")
    suite = write_suite(tmp_path / "late.yaml", [{"path": str(tflite_path)}],
                        [{"name": "late", "url": f"ssh://latedevice?python={sys.executable}"}],
                        health={"retries": 3, "backoff_s": 1.0})
    said = []
    starter.start()
    try:
        result = run_suite(suite, tmp_path / "out", progress=lambda e: said.append(e.text))
    finally:
        starter.cancel()
        if "s" in late:
            late["s"].stop()
    assert [c["status"] for c in result.run["cells"]] == ["passed"], result.run["cells"]
    assert any("trying again in 1 s" in text for text in said)


def test_health_refuses_a_hot_device_and_a_low_battery(tmp_path, monkeypatch):
    """The real agent reads the device's sysfs (here a fake root with a thermal zone and a battery)."""
    root = tmp_path / "sysfs"
    zone = root / "sys/class/thermal/thermal_zone0"
    battery = root / "sys/class/power_supply/BAT0"
    zone.mkdir(parents=True)
    battery.mkdir(parents=True)
    (battery / "type").write_text("Battery\n")
    (battery / "capacity").write_text("12\n")
    (battery / "status").write_text("Discharging\n")
    (zone / "temp").write_text("91000\n")
    monkeypatch.setenv("EDGESDK_SYSFS_ROOT", str(root))
    store, quiet = edgesdk.Store(), (lambda who, text: None)
    assert health("local", Health(), store, quiet, "local") == "too hot: 91 °C > 80 °C"
    (zone / "temp").write_text("45000\n")
    assert health("local", Health(), store, quiet, "local") == "battery low: 12 % < 20 % and not charging"
    (battery / "status").write_text("Charging\n")
    assert health("local", Health(), store, quiet, "local") is None


@pytest.mark.slow
def test_compare_passes_on_the_same_model_and_fails_on_a_larger_slower_one(tflite_path, keras3_path, tmp_path):
    """At the default gates: two runs of one suite pass; overwriting the model file with a larger,
    slower model fails the latency gate (the size gate opened here, so latency alone decides), settled
    by measuring the baseline's model (kept in the store, since its file changed) and the new one
    alternately; `suite compare` at the default gates (CLI: exit 1, the cell named) fails size and
    latency, reading the paired verdict."""
    import keras

    big = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(1024, activation="relu"),
                            keras.layers.Dense(1024, activation="relu"), keras.layers.Dense(10)])
    big_tflite = tmp_path / "big.tflite"
    edgesdk.compress(_save(big, tmp_path / "big.keras"), "host", "fp32", big_tflite)
    model = tmp_path / "model.tflite"
    shutil.copyfile(tflite_path, model)
    suite = write_suite(tmp_path / "a.yaml", [{"name": "digits", "path": str(model)}], ["local"])
    first = run_suite(suite, tmp_path / "a")
    second = run_suite(suite, tmp_path / "b", baseline="latest")
    assert second.comparison is not None and second.comparison.passed, second.comparison.summary()
    assert second.comparison.baseline == first.run["run_id"]

    shutil.copyfile(big_tflite, model)   # the same suite, the model file replaced
    lines = []
    third = run_suite(suite, tmp_path / "c", baseline="latest", gates=Gates(max_size_increase=1000.0),
                      progress=lambda e: lines.append(e.text))
    assert third.comparison is not None and not third.ok
    assert [c.cell for c in third.comparison.failures] == ["digits|none|local"]
    failure = third.comparison.failures[0]
    assert failure.paired and failure.latency_change > 0.5, failure   # big is several times slower
    assert len(failure.reasons) == 1 and "alternately" in failure.reasons[0]
    paired = third.run["cells"][0]["paired"]
    assert paired["baseline_run"] == second.run["run_id"] and len(paired["rounds"]) == 3
    assert all(r["p50_ms"] > r["baseline_p50_ms"] for r in paired["rounds"])
    assert list((tmp_path / "c" / "baseline-models").glob("*.tflite")), "the baseline model came from the store"
    assert any("alternately" in line for line in lines)
    offline = compare(second.run, third.run)
    assert [c.cell for c in offline.failures] == ["digits|none|local"] and offline.failures[0].paired
    assert any(r.startswith("model ") for r in offline.failures[0].reasons)

    cli = subprocess.run([str(CLI), "suite", "compare", str(tmp_path / "b"), str(tmp_path / "c" / "results.json")],
                         capture_output=True, text=True)
    assert cli.returncode == 1, cli.stderr
    assert "digits|none|local" in cli.stdout + cli.stderr and "Traceback" not in cli.stderr
    same = subprocess.run([str(CLI), "suite", "compare", str(tmp_path / "a"), str(tmp_path / "b"),
                           "--max-latency-increase", "100%", "--json"], capture_output=True, text=True)
    assert same.returncode == 0 and json.loads(same.stdout)["passed"] is True


def _save(model, path):
    model.save(path)
    return path


@pytest.mark.parametrize("change, fragment", [
    ({"bench": {"runs": 0}}, "field 'bench.runs'"),
    ({"models": [{"path": "a.tflite", "tune": "t"}]}, "field 'models.0' (model 1: a.tflite): give exactly one of"),
    ({"devices": ["local", "local"]}, "two devices are named 'local'"),
    ({"colour": "red"}, "field 'colour': Extra inputs are not permitted"),
    ({"models": []}, "field 'models'"),
])
def test_suite_file_errors_name_file_entry_and_field(tmp_path, change, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "lab", "models": [{"path": "m.tflite"}], "devices": ["local"], **change}))
    with pytest.raises(SuiteError) as info:
        edgesdk.suite.load(path)
    assert str(info.value).startswith(f"{path}: ") and fragment in str(info.value), str(info.value)
    cli = subprocess.run([str(CLI), "suite", "run", str(path), "-o", str(tmp_path / "out")], capture_output=True,
                         text=True)
    assert cli.returncode == 2 and fragment in cli.stderr and "Traceback" not in cli.stderr


def test_missing_model_fails_its_cells_and_the_run_exits_1(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", [{"name": "gone", "path": "nowhere.tflite"}], ["local"])
    cli = subprocess.run([str(CLI), "suite", "run", str(suite), "-o", str(tmp_path / "out")], capture_output=True,
                         text=True)
    assert cli.returncode == 1 and "does not exist" in cli.stderr and "Traceback" not in cli.stderr
    junit = ET.parse(tmp_path / "out" / "junit.xml").getroot()
    assert junit.get("failures") == "1"


@pytest.mark.slow
def test_two_processes_on_postgresql_fill_one_run(postgres, tflite_path, tmp_path):
    """As on two hosts: each process serves its own devices (b is attached to both), with its own
    output folder; together they fill one run with every cell measured exactly once."""
    models = [{"name": f"m{i}", "path": str(tflite_path)} for i in range(3)]
    suite = write_suite(tmp_path / "lab.yaml", models, [{"name": n, "url": "local"} for n in "abc"], name="pool")
    env = dict(os.environ, EDGESDK_STORE=postgres.url)
    procs = [subprocess.Popen([str(CLI), "suite", "run", str(suite), "--run-id", "nightly-1", "--devices", serve,
                               "-o", str(tmp_path / f"host{i}"), "--tag", "main"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i, serve in enumerate(["a,b", "b,c"])]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    store = edgesdk.Store(postgres.url)
    run = load_results("nightly-1", store)
    assert len(run["cells"]) == 9 and all(c["status"] == "passed" for c in run["cells"])
    assert all(c["claims"] == 1 for c in run["cells"])  # no cell done twice
    assert store.count_measurements() == 9
    workers = {d: {c["worker"] for c in run["cells"] if c["device"] == d} for d in "abc"}
    assert len(workers["a"]) == 1 and len(workers["c"]) == 1 and workers["a"] != workers["c"]
    assert workers["b"] <= workers["a"] | workers["c"]
    for i in range(2):  # each host's outputs list the whole run (the first to finish may show some running)
        doc = json.loads((tmp_path / f"host{i}" / "results.json").read_text())
        assert doc["run_id"] == "nightly-1" and len(doc["cells"]) == 9
    other = write_suite(tmp_path / "other.yaml", models[:1], ["local"], name="pool")
    with pytest.raises(SuiteError, match="started from a different suite"):
        run_suite(other, tmp_path / "x", store=store, run_id="nightly-1")
