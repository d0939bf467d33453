"""How often the suite's latency gate fires falsely, and how small a real slowdown it catches.

One suite (three models, recipe none, the local device) is run RUNS times unchanged, each run after
the first gated against the previous one as a nightly job does (`suite run --baseline latest`: run-
to-run noise from the earlier runs, a latency failure measured again to confirm it). Any regression is
a false alarm (goal: none). Every ordered pair of the unchanged runs is also compared offline (`suite
compare`, no re-measurement), the other runs serving as history. Then two real changes are run once
each, gated against the unchanged runs:
  - threads 2 -> 1 (this machine has 2 cores);
  - the conv net swapped for one about 10 % larger (10 % more filters in every layer).
Per cell: the spread of p50 over the unchanged runs (max - min over the median), the noise the gate
allowed, and the detection rate of each change.

    .venv/bin/python benchmarks/suite_noise.py [--runs 5] [--out benchmarks/results/suite_noise.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
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


def suite_file(work: Path, name: str, models: list[dict[str, str]], threads: int) -> Path:
    import yaml

    path = work / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": "noise", "models": models, "recipes": ["none"], "devices": ["local"],
                                    "bench": {"runs": 50, "warmup": 10, "min_time_s": 1.0, "threads": threads,
                                              "power": False}}))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "suite_noise.json")
    args = parser.parse_args()
    gates = Gates()
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
        for i in range(args.runs):  # as a nightly job runs it: gated against the previous run
            result = run_suite(same, work / f"same{i}", store=store, baseline="latest" if i else None)
            runs.append(result.run)
            if result.comparison is not None:
                gated.append(result.comparison)
            print(f"unchanged run {i + 1}/{args.runs}: " + ", ".join(
                f"{c['model']} {p50(c['measurement']):.4g} ms" + (" (re-measured)" if c.get("unconfirmed_p50_ms")
                                                                  else "") for c in runs[-1]["cells"]), flush=True)
        history = list(runs)
        one_thread = run_suite(suite_file(work, "threads1", models, threads=1), work / "threads1", store=store,
                               baseline="latest")
        swapped = [{**m, "path": str(wider)} if m["name"] == "convnet" else m for m in models]
        bigger = run_suite(suite_file(work, "wider", swapped, threads=2), work / "wider", store=store,
                           baseline=runs[-1]["run_id"])

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

        def change(result: Any, cell: str = cell) -> dict[str, Any]:
            verdict = next(c for c in result.comparison.cells if c.cell == cell)
            return {"change": verdict.latency_change, "detected": verdict.verdict == "regression",
                    "verdict": verdict.verdict}

        row = {"cell": cell, "p50_ms": values, "spread": (max(values) - min(values)) / statistics.median(values),
               "false_alarms_nightly": sum(fired(c) for c in gated), "nightly_runs": len(gated),
               "false_alarms_offline": offline, "pairs": len(pairs),
               "noise_allowed_median": statistics.median(allowed), "threads_2_to_1": change(one_thread)}
        if cell.startswith("convnet|"):
            row["wider_10pct"] = change(bigger)
        rows.append(row)

    print(f"\nDefault gates: {gates.describe()}; {len(runs)} unchanged runs\n")
    print("| cell | p50 over unchanged runs (ms) | spread | noise allowed (median) | false alarms: nightly "
          "(--baseline latest) | false alarms: compare, any 2 runs | threads 2 -> 1 | 10 % wider model |")
    print("|---|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        def text(d: dict[str, Any] | None) -> str:
            return "-" if d is None else f"{d['change']:+.1%}, {'detected' if d['detected'] else d['verdict']}"
        print(f"| {r['cell']} | {', '.join(f'{v:.4g}' for v in r['p50_ms'])} | {r['spread']:.1%} | "
              f"±{r['noise_allowed_median']:.1%} | {r['false_alarms_nightly']}/{r['nightly_runs']} | "
              f"{r['false_alarms_offline']}/{r['pairs']} | {text(r['threads_2_to_1'])} | "
              f"{text(r.get('wider_10pct'))} |")
    total = sum(r["false_alarms_nightly"] for r in rows)
    offline_total = sum(r["false_alarms_offline"] for r in rows)
    print(f"\nfalse alarms at the default gate: nightly {total} of {sum(r['nightly_runs'] for r in rows)} (goal: 0); "
          f"offline compare {offline_total} of {sum(r['pairs'] for r in rows)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"gates": gates.describe(), "runs": len(runs), "cells": rows}, indent=2,
                                   default=str))
    return 0 if total == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
