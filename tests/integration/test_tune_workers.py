"""Several `edgesdk tune` workers share one study in a real PostgreSQL; several devices in one worker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import edgesdk
from device_agent.protocol import BenchSettings
from edgesdk.profiles import load_profile
from edgesdk.search import build, tune

from .test_tune import MODEL, TRAIN, VAL

pytestmark = pytest.mark.slow


def test_two_workers_on_postgresql_share_one_study(postgres, tmp_path):
    """Two processes (as on two hosts: their own OUTDIR and results store) fill one study: every candidate
    is compressed and measured exactly once, and no trial is lost (none left failed or running)."""
    import optuna

    cli = Path(sys.executable).parent / "edgesdk"
    workers = []
    for name in ("a", "b"):
        env = {**os.environ, "EDGESDK_STORE": f"sqlite:///{tmp_path / f'{name}.sqlite'}"}
        args = [str(cli), "tune", str(MODEL), "-p", "host", "--device", "local", "-d", str(VAL), "--train-data",
                str(TRAIN), "--precision", "fp32", "--precision", "int8", "--prune", "none", "--prune", "0.5",
                "--cluster", "none", "--structure", "none",
                "--space", "post=none", "--epochs", "0", "--runs", "5", "--min-time", "0",
                "--storage", postgres.url, "--study", "shared", "--json", "-o", str(tmp_path / name)]
        workers.append(subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [w.communicate(timeout=600) for w in workers]
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-2000:]
    study = optuna.load_study(study_name="shared", storage=postgres.url)
    trials = study.get_trials()
    states = Counter(t.state.name for t in trials)
    assert states.get("FAIL", 0) == 0 and states.get("RUNNING", 0) == 0 and states.get("WAITING", 0) == 0
    done = Counter(t.user_attrs["row"]["recipe"] for t in trials
                   if t.user_attrs.get("row", {}).get("status") == "measured")
    assert done == {"fp32": 1, "int8": 1, "prune=0.5,fp32": 1, "prune=0.5,int8": 1}  # each once, none lost
    measured = sum(edgesdk.Store(f"sqlite:///{tmp_path / f'{n}.sqlite'}").count_measurements() for n in "ab")
    assert measured == 4
    made = [p.name for n in "ab" for p in (tmp_path / n / "candidates").glob("*.tflite") if p.stem != "original"]
    assert sorted(made) == sorted({*made}) and len(made) == 4  # each candidate compressed on one worker only


def test_several_devices_measure_in_parallel_one_at_a_time_each(tmp_path):
    store = edgesdk.Store()
    space = build(load_profile("host"), precision=["fp32", "int8", "fp16"], prune=["none", "0.5"], cluster=["none"],
                  structure=["none"], post=["none"])
    devices = ["local", "local://"]  # two names for this machine: two devices to the scheduler
    result = tune(MODEL, "host", tmp_path / "t", devices=devices, data=VAL, train_data=TRAIN, space=space,
                  store=store, epochs=0, settings=BenchSettings(runs=200, warmup=2, min_time_s=0.5))
    rows = [r for r in result.trials if r["status"] == "measured"]
    assert len(rows) == 6 and {r["measured_on"] for r in rows} == set(devices)
    for device in devices:  # never two measurements at once on one device
        spans = sorted(r["window"] for r in rows if r["measured_on"] == device and not r["cached"])
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
