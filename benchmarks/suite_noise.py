"""How often the suite's latency gate fires falsely, and how small a real slowdown it catches.

One suite (three models, recipe none, the local device) is run RUNS times unchanged, each run after
the first gated against the previous one as a nightly job does (`suite run --baseline latest`: a cell
whose p50 rose beyond the gate, over the baseline or its usual speed, is measured again alternately
with the baseline's model, and that pair decides). Any regression is a false alarm (goal: none). Every ordered
pair of the unchanged runs is also compared offline from the stored numbers alone (`suite compare`,
no re-measurement, the other runs serving as history): what a gate without a device can tell. Then two
real changes are run once each, gated against the last unchanged run:
  - threads 2 -> 1 (this machine has 2 cores);
  - the conv net swapped for one about 10 % larger (10 % more filters in every layer), the size gate
    opened so that latency alone decides.
Per cell: the spread of p50 over the unchanged runs (max - min over the median), the noise the gate
allowed, and for each change its true effect (both versions measured alternately 5 times, apart
from the gate: one thread is not always slower, for a model of a few microseconds on a busy machine)
and the gate's verdict. A real slowdown beyond the gate that the gate passes is a miss.

With --neighbour, a second process shares the machine throughout: busy on one core, then idle, each
phase 5-30 s long (seeded), as another tenant of a shared host or a background job on a phone would be.
It makes the device's speed drift between and within runs, which is what the gate must not mistake
for a regression.

    .venv/bin/python benchmarks/suite_noise.py [--runs 5] [--neighbour] [--out benchmarks/results/suite_noise.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import edgesdk  # noqa: E402
from benchmarks import mlperf  # noqa: E402
from edgesdk.suite import Gates, compare, run_suite  # noqa: E402
from edgesdk.suite.gates import p50  # noqa: E402


def convnet(path: Path, width: float) -> Path:
    """A small image classifier (a few ms here); ``width`` scales every layer's filters."""
    import keras

    keras.utils.set_random_seed(0)
    f = [max(1, round(c * width)) for c in (32, 64, 96)]
    model = keras.Sequential([keras.Input((64, 64, 3)), keras.layers.Conv2D(f[0], 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Conv2D(f[1], 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Conv2D(f[2], 3, activation="relu"),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10, activation="softmax")])
    model.save(path)
    return path


NEIGHBOUR = """
import random, time
rng = random.Random(7)
while True:
    end = time.time() + rng.uniform(5, 30)
    if rng.random() < 0.5:
        while time.time() < end:
            sum(range(10000))
    else:
        time.sleep(end - time.time())
"""


def suite_file(work: Path, name: str, models: list[dict[str, str]], threads: int) -> Path:
    import yaml

    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": "noise", "models": models, "recipes": ["none"], "devices": ["local"],
                                    "bench": {"runs": 50, "warmup": 10, "min_time_s": 1.0, "threads": threads,
                                              "power": False}}))
    return path


TRUTH_ROUNDS = 5


def true_change(before: dict[str, Any], after: dict[str, Any]) -> float:
    """What a change really did, measured apart from the gate: both cells' models, each with its own
    settings, alternately TRUTH_ROUNDS times; the median ratio minus one."""
    from device_agent.protocol import BenchSettings
    from edgesdk.measure import bench

    ratios = []
    for i in range(TRUTH_ROUNDS):
        got = {}
        for name in (("before", "after") if i % 2 == 0 else ("after", "before")):
            c = before if name == "before" else after
            got[name] = bench(c["artifact"]["path"], "local", BenchSettings(**c["measurement"]["settings"]),
                              fresh=True).latency["p50_ms"]
        ratios.append(got["after"] / got["before"])
    return statistics.median(ratios) - 1


Changed = tuple[Any, dict[str, float]]   # a run's result and each cell's true change


def measure(count: int) -> tuple[list[dict[str, Any]], list[Any], Changed, Changed]:
    """The unchanged runs, their nightly comparisons, and the threads 2 -> 1 and wider-model runs (each
    cell's true change measured apart, in ``true_change``)."""
    with tempfile.TemporaryDirectory(prefix="edgesdk-noise-") as tmp:
        work = Path(tmp)
        store = edgesdk.Store(f"sqlite:///{work / 'store.sqlite'}")
        base = convnet(work / "convnet.keras", 1.0)
        wider = convnet(work / "convnet_wider.keras", 1.1)
        models = [{"name": "convnet", "path": str(base)}, {"name": "digits", "path": str(ROOT / "examples" / "digits" /
                                                                                     "model.keras")}]
        kws = mlperf.DEFAULT_DIR / "kws" / "kws_ref_model.tflite"
        if kws.is_file():
            models.append({"name": "kws_int8", "path": str(kws)})
        same = suite_file(work, "same", models, threads=2)
        runs, gated = [], []
        for i in range(count):  # as a nightly job runs it: gated against the previous run
            result = run_suite(same, work / f"same{i}", store=store, baseline="latest" if i else None)
            runs.append(result.run)
            if result.comparison is not None:
                gated.append(result.comparison)
            print(f"unchanged run {i + 1}/{count}: " + ", ".join(
                f"{c['model']} {p50(c['measurement']):.4g} ms" + (
                    f" (paired {c['paired']['change']:+.1%} ±{c['paired']['noise']:.1%})" if c.get("paired") else "")
                for c in runs[-1]["cells"]), flush=True)
            for failure in result.comparison.failures if result.comparison is not None else []:
                print(f"  false alarm: {failure.cell}: {'; '.join(failure.reasons)}", flush=True)
        one_thread = run_suite(suite_file(work, "threads1", models, threads=1), work / "threads1", store=store,
                               baseline=runs[-1]["run_id"])
        swapped = [{**m, "path": str(wider)} if m["name"] == "convnet" else m for m in models]
        bigger = run_suite(suite_file(work, "wider", swapped, threads=2), work / "wider", store=store,
                           baseline=runs[-1]["run_id"], gates=Gates(max_size_increase=10.0))  # latency alone decides
        last = {c["cell"]: c for c in runs[-1]["cells"]}

        def truth(changed: Any, model: str | None = None) -> dict[str, float]:
            return {c["cell"]: true_change(last[c["cell"]], c) for c in changed.run["cells"]
                    if c["status"] == "passed" and model in (None, c["model"])}

        return runs, gated, (one_thread, truth(one_thread)), (bigger, truth(bigger, "convnet"))


def table(runs: list[dict[str, Any]], gated: list[Any], one_thread: Changed, bigger: Changed,
          gates: Gates) -> list[dict[str, Any]]:
    """Per cell: the unchanged runs' p50s, false alarms (nightly and offline) and the changes' verdicts."""
    history = list(runs)
    pairs = list(itertools.permutations(range(len(runs)), 2))
    cells = [c["cell"] for c in runs[0]["cells"]]
    rows = []
    for cell in cells:
        values = [p50(next(c for c in r["cells"] if c["cell"] == cell)["measurement"]) for r in runs]
        offline, allowed = 0, []
        for a, b in pairs:  # `suite compare` of any two unchanged runs, with the others as history
            verdict = next(c for c in compare(runs[a], runs[b], gates, history).cells if c.cell == cell)
            offline += verdict.verdict == "regression"
            allowed.append(verdict.latency_noise or 0.0)

        def fired(comparison: Any, cell: str = cell) -> bool:
            return any(c.cell == cell and c.verdict == "regression" for c in comparison.cells)

        def change(changed: Changed, cell: str = cell) -> dict[str, Any]:
            result, truth = changed
            verdict = next(c for c in result.comparison.cells if c.cell == cell)
            return {"change": verdict.latency_change, "detected": verdict.verdict == "regression",
                    "verdict": verdict.verdict, "paired": verdict.paired, "true_change": truth[cell]}

        row = {"cell": cell, "p50_ms": values, "spread": (max(values) - min(values)) / statistics.median(values),
               "false_alarms_nightly": sum(fired(c) for c in gated), "nightly_runs": len(gated),
               "paired_checks": sum(any(c.cell == cell and c.paired for c in g.cells) for g in gated),
               "false_alarms_offline": offline, "pairs": len(pairs),
               "noise_allowed_median": statistics.median(allowed), "threads_2_to_1": change(one_thread)}
        if cell.startswith("convnet|"):
            row["wider_10pct"] = change(bigger)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--neighbour", action="store_true", help="share the machine with a process that is busy "
                        "on one core, then idle, in phases of 5-30 s")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "suite_noise.json")
    args = parser.parse_args()
    gates = Gates()
    neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR]) if args.neighbour else None
    try:
        runs, gated, one_thread, bigger = measure(args.runs)
    finally:
        if neighbour is not None:
            neighbour.kill()
    rows = table(runs, gated, one_thread, bigger, gates)
    print(f"\nDefault gates: {gates.describe()}; {len(runs)} unchanged runs"
          f"{'; a neighbour process busy on one core in phases' if args.neighbour else ''}\n")
    print("| cell | p50 over unchanged runs (ms) | spread | false alarms: nightly (--baseline latest) | paired "
          "re-measurements in them | stored numbers only: false alarms, any 2 runs | noise allowed "
          "(median) | threads 2 -> 1 | 10 % wider model |")
    print("|---|---|---:|---:|---:|---:|---:|---|---|")
    for r in rows:
        def text(d: dict[str, Any] | None) -> str:
            return "-" if d is None else (f"{d['true_change']:+.1%} really; gate: {d['change']:+.1%}"
                                          f"{' paired' if d['paired'] else ''}, "
                                          f"{'detected' if d['detected'] else d['verdict']}")
        print(f"| {r['cell']} | {', '.join(f'{v:.4g}' for v in r['p50_ms'])} | {r['spread']:.1%} | "
              f"{r['false_alarms_nightly']}/{r['nightly_runs']} | {r['paired_checks']} | "
              f"{r['false_alarms_offline']}/{r['pairs']} | ±{r['noise_allowed_median']:.1%} | "
              f"{text(r['threads_2_to_1'])} | {text(r.get('wider_10pct'))} |")
    total = sum(r["false_alarms_nightly"] for r in rows)
    offline_total = sum(r["false_alarms_offline"] for r in rows)
    missed = [f"{r['cell']} ({k})" for r in rows for k in ("threads_2_to_1", "wider_10pct")  # real slowdowns only
              if r.get(k) is not None and not r[k]["detected"] and r[k]["true_change"] > gates.max_latency_increase]
    print(f"\nfalse alarms at the default gate: nightly {total} of {sum(r['nightly_runs'] for r in rows)} (goal: 0); "
          f"from stored numbers alone {offline_total} of {sum(r['pairs'] for r in rows)}; real changes missed: "
          f"{', '.join(missed) or 'none'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"gates": gates.describe(), "runs": len(runs), "neighbour": args.neighbour,
                                    "cells": rows}, indent=2,
                                   default=str))
    return 0 if total == 0 and not missed else 1


if __name__ == "__main__":
    sys.exit(main())
