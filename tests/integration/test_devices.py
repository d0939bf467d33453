"""Named devices: add, list, resolve, remove, check; names work wherever a URL does."""

import pytest

import edgesdk
from edgesdk import devices
from edgesdk.errors import DeployError, StoreError


def test_add_list_resolve_remove():
    store = edgesdk.Store()
    devices.add(store, "lab", "local")
    devices.add(store, "pi5", "ssh://pi@raspberrypi.local:2222?python=/home/pi/venv/bin/python")
    assert store.devices() == {"lab": "local",
                               "pi5": "ssh://pi@raspberrypi.local:2222?python=/home/pi/venv/bin/python"}
    assert devices.resolve("pi5", store).startswith("ssh://pi@")
    assert devices.resolve("ssh://x@y", store) == "ssh://x@y"
    with pytest.raises(StoreError, match="exists already"):
        devices.add(store, "lab", "ssh://a@b")
    devices.add(store, "lab", "ssh://a@b", replace=True)
    assert store.devices()["lab"] == "ssh://a@b"
    assert store.remove_device("lab") and not store.remove_device("lab")
    with pytest.raises(DeployError, match="unknown device 'lab'.*pi5"):
        devices.resolve("lab", store)


@pytest.mark.parametrize("name, url, fragment", [
    ("bad name", "local", "a device name is"),
    ("ssh://x", "local", "a device name is"),
    ("ok", "ftp://x", "unsupported device"),
    ("ok", "ssh://", "expected a device URL"),
])
def test_bad_names_and_urls(name, url, fragment):
    with pytest.raises(DeployError) as info:
        devices.add(edgesdk.Store(), name, url)
    assert fragment in str(info.value)


def test_check_and_bench_a_named_local_device(tflite_path):
    store = edgesdk.Store()
    devices.add(store, "here", "local")
    result = devices.check("here", store)
    assert result.ok and result.runtime == {"name": "ai_edge_litert", "version": "2.3.0"}
    assert result.fingerprint and result.python
    assert result.power.startswith("none: no power source found")  # this machine has no sensor
    m = edgesdk.bench(tflite_path, "here", edgesdk.BenchSettings(runs=5, warmup=0, min_time_s=0), store=store)
    assert m.document["device"]["fingerprint"] == result.fingerprint
