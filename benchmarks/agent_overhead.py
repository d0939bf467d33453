"""What the device agent adds, and what the SSH cache saves.

1. The agent's reported p50 against a bare ``interpreter.invoke()`` loop in this process, on the same
   model, runtime, thread count and inputs (target ratio <= 1.03). Nine rounds, each an agent
   measurement next to a bare one; the ratio is the median of the per-round ratios, because this
   machine's speed drifts between rounds far more than within one.
2. The run-to-run spread of the agent's p50 over those rounds (max - min over the median).
3. Wall time of a measurement over SSH on loopback, and over ADB (the real adb server and the test
   device of tests/adbd.py): first (probe, agent and model uploaded), second (all cached on the
   device, measured again), third (answered from the results store).

    .venv/bin/python benchmarks/agent_overhead.py [--out DIR]

Prints a table and writes ``agent_overhead.json``. Part 3 needs /usr/sbin/sshd and root (SSH) and
Debian's adb (ADB); each is skipped with a reason otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np

import edgesdk
from benchmarks import mlperf
from device_agent.bench import make_inputs

ROUNDS = 9
SETTINGS = edgesdk.BenchSettings(runs=300, warmup=20, min_time_s=1.0, threads=1)


def bare_p50(path: Path, runs: int, warmup: int, threads: int) -> float:
    """p50 of a plain invoke() loop: the least a measurement can report."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    for detail, array in zip(interp.get_input_details(), make_inputs(interp.get_input_details(), 0), strict=True):
        interp.set_tensor(detail["index"], array)
    for _ in range(warmup):
        interp.invoke()
    times = []
    start = time.perf_counter()
    while len(times) < runs or time.perf_counter() - start < SETTINGS.min_time_s:
        t0 = time.perf_counter_ns()
        interp.invoke()
        times.append((time.perf_counter_ns() - t0) / 1e6)
    return float(np.percentile(times, 50))


def overhead(name: str, path: Path) -> dict[str, Any]:
    agent, bare = [], []
    for _ in range(ROUNDS):
        agent.append(edgesdk.bench(path, "local", SETTINGS).latency["p50_ms"])
        bare.append(bare_p50(path, SETTINGS.runs, SETTINGS.warmup, SETTINGS.threads or 1))
    ratios = [a / b for a, b in zip(agent, bare, strict=True)]
    spread = (max(agent) - min(agent)) / statistics.median(agent)
    return {"model": name, "agent_p50_ms": agent, "bare_p50_ms": bare, "ratio": statistics.median(ratios),
            "ratio_range": [min(ratios), max(ratios)], "agent_spread": spread}


def _three_walls(path: Path, transport: Any, store: edgesdk.Store) -> dict[str, Any]:
    """First (everything uploaded), second (files cached on the device), third (store hit) wall times."""
    settings = edgesdk.BenchSettings(runs=50, warmup=5, min_time_s=0.2, threads=1)
    walls, uploads = [], []
    for fresh in (True, True, False):
        t = transport()
        start = time.perf_counter()
        m = edgesdk.bench(path, t, settings, store=store, fresh=fresh)
        walls.append(time.perf_counter() - start)
        uploads.append(t.uploads if not m.cached else 0)
    return {"first_s": walls[0], "cached_files_s": walls[1], "store_hit_s": walls[2], "uploads": uploads,
            "model_bytes": path.stat().st_size}


def adb_cache(path: Path) -> dict[str, Any]:
    """The same three measurements through the real adb server and the test device (tests/adbd.py)."""
    import socket

    from tests import adbd

    reason = adbd.available()
    if reason:
        return {"skipped": reason}
    from edgesdk.deploy.adb import AdbTransport

    with tempfile.TemporaryDirectory() as tmp, socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        server = adbd.AdbServer(Path(tmp) / "home", port)
        device = adbd.FakeAndroidDevice(Path(tmp) / "device")
        try:
            url = f"adb://{server.connect(device)}?server=127.0.0.1:{port}&python={sys.executable}"
            store = edgesdk.Store(f"sqlite:///{Path(tmp) / 'store.sqlite'}")
            return _three_walls(path, lambda: AdbTransport(url), store)
        finally:
            server.stop()
            device.close()


def ssh_cache(path: Path) -> dict[str, Any]:
    from tests import sshd

    reason = sshd.available()
    if reason:
        return {"skipped": reason}
    from edgesdk.deploy.ssh import SshTransport

    with tempfile.TemporaryDirectory() as tmp:
        server = sshd.start(Path(tmp) / "sshd")
        store = edgesdk.Store(f"sqlite:///{Path(tmp) / 'store.sqlite'}")

        def transport() -> SshTransport:
            return SshTransport(server.url(sys.executable), known_hosts=server.known_hosts,
                                key_filename=str(server.user_key), ssh_config="/dev/null")

        try:
            transport().clean()
            return _three_walls(path, transport, store)
        finally:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        digits = Path(tmp) / "digits_int8.tflite"
        edgesdk.compress(ROOT / "examples/digits/model.keras", "host", "int8", digits,
                         train_data=ROOT / "examples/digits/train.npz")
        models = [("digits int8", digits)]
        if mlperf.DEFAULT_DIR.is_dir():
            models += [(f"{t.name} reference int8", t.reference_int8) for t in mlperf.tasks()
                       if t.name in ("ic", "kws")]
        rows = [overhead(name, path) for name, path in models]
        ssh = ssh_cache(models[-1][1])
        adb = adb_cache(models[-1][1])

    print(f"\nagent vs bare invoke() loop (threads=1, {SETTINGS.runs}+ runs, {ROUNDS} interleaved rounds)")
    print(f"{'model':22} {'agent p50 ms':>14} {'bare p50 ms':>13} {'ratio':>7} {'ratio range':>14} "
          f"{'agent spread':>13}")
    for r in rows:
        agent, bare = statistics.median(r["agent_p50_ms"]), statistics.median(r["bare_p50_ms"])
        low, high = r["ratio_range"]
        print(f"{r['model']:22} {agent:>14.4f} {bare:>13.4f} {r['ratio']:>7.3f} {low:>6.3f}-{high:<7.3f} "
              f"{r['agent_spread']:>12.1%}")
    for label, walls in (("SSH on loopback", ssh), ("ADB (adb server + test device)", adb)):
        if "skipped" in walls:
            print(f"\n{label}: skipped ({walls['skipped']})")
            continue
        print(f"\nover {label} ({models[-1][0]}, {walls['model_bytes']:,} B):")
        print(f"  first measurement (uploads probe, agent, model): {walls['first_s']:.2f} s, "
              f"uploads {walls['uploads'][0]}")
        print(f"  second (files cached on the device):             {walls['cached_files_s']:.2f} s, "
              f"uploads {walls['uploads'][1]}")
        print(f"  third (answered from the results store):        {walls['store_hit_s']:.2f} s")
        print(f"  second / first: {walls['cached_files_s'] / walls['first_s']:.2f}; "
              f"store hit / first: {walls['store_hit_s'] / walls['first_s']:.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "agent_overhead.json"
    out.write_text(json.dumps({"overhead": rows, "ssh": ssh, "adb": adb, "settings": SETTINGS.to_dict()}, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
