"""How much of the exhaustive grid's Pareto front `tune` finds with a quarter of the trials, how well
the latency predictor estimates candidates it was not calibrated on, and (``--part answer``,
benchmarks/search_answer.py) whether tune's answer beats the best single recipe found by brute force.

For the digits CNN and the MLPerf Tiny IC (ResNet-8) and AD (autoencoder) models, on the `host` profile
and the local device:

1. Grid: `tune` over the whole space (precision fp32/fp16/dynamic/int8 x prune none/0.5/0.75 x cluster
   none/16 = 24 candidates), objectives quality and p50 latency. This is the reference front.
2. `tune` with a budget of N = 6 trials (25 % of the grid), seeds 0-2, in fresh studies sharing the
   results store (so the same candidate has the same measured latency as in the grid: the comparison is
   of search, not of measurement noise).
3. Random search with the same budget: the expected hypervolume of N candidates drawn uniformly from
   the grid (500 draws).

Hypervolume is of the front in (quality, latency) normalized to the grid's ranges, with the worst quality
and slowest latency as the reference point; reported as a fraction of the grid's.

4. Predictor: `edgesdk calibrate` on generated micro-models, then the median absolute percentage error
   of predicted vs measured p50 over every grid candidate of the three models (none was used to fit it),
   and, as a wider check, over the plain precisions of the other two MLPerf Tiny models (KWS, VWW).

    .venv/bin/python benchmarks/search_efficiency.py [--out DIR] [--seeds 3]

Prints a table and writes ``search_efficiency.json``. The MLPerf models are skipped when
../shared/models/mlperf_tiny is absent. Quality: accuracy on the digits labels; top-1 agreement with
the float model on 64 jittered copies of IC's real input; SQNR on AD's 196 real windows.
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
from edgesdk.profiles import load_profile
from edgesdk.search import build, predict, tune
from edgesdk.search.tune import objective_value

BUDGET_FRACTION = 0.25
# A second of timed runs in ten windows: this machine's speed changes for tenths of a second to seconds at a
# time (the agent then reports the quietest window), and candidates a few microseconds apart must rank right.
SETTINGS = edgesdk.BenchSettings(runs=100, warmup=10, min_time_s=1.0, threads=1, windows=10)


def hypervolume(points: list[tuple[float, float]], ref: tuple[float, float], scale: tuple[float, float]) -> float:
    """2-D hypervolume of (quality to maximize, latency to minimize) points against ``ref`` (worst q, worst t)."""
    pts = sorted({((q - ref[0]) / scale[0], (ref[1] - t) / scale[1]) for q, t in points if q >= ref[0] and t <= ref[1]},
                 key=lambda p: -p[0])
    area, best_y = 0.0, 0.0
    for x, y in pts:  # sweep from the highest quality down; each point adds the latency gain it brings
        if y > best_y:
            area += x * (y - best_y)
            best_y = y
    return area


def models(tmp: Path) -> list[dict[str, Any]]:
    out = [{"name": "digits", "source": ROOT / "examples/digits/model.keras", "data": ROOT / "examples/digits/val.npz",
            "train": ROOT / "examples/digits/train.npz"}]
    if mlperf.DEFAULT_DIR.is_dir():
        tasks = {t.name: t for t in mlperf.tasks()}
        ic = tasks["ic"]
        np.savez(tmp / "ic.npz", x=mlperf.calibration(ic, count=64, seed=1))
        np.savez(tmp / "ic_train.npz", x=mlperf.calibration(ic, count=64, seed=0))
        ad = tasks["ad"]
        np.savez(tmp / "ad.npz", x=ad.real_inputs)
        out += [{"name": "ic", "source": ic.source, "data": tmp / "ic.npz", "train": tmp / "ic_train.npz"},
                {"name": "ad", "source": ad.source, "data": tmp / "ad.npz", "train": None}]
    else:
        print(f"MLPerf Tiny models not found at {mlperf.DEFAULT_DIR}: digits only")
    return out


def _other_models(tmp: Path, profile: Any, store: Any, fitted: Any) -> list[dict[str, Any]]:
    """Predicted vs measured p50 of KWS and VWW at each plain precision (neither fitted nor searched)."""
    out = []
    tasks = {t.name: t for t in mlperf.tasks()}
    for name in ("kws", "vww"):
        task = tasks[name]
        np.savez(tmp / f"{name}.npz", x=mlperf.calibration(task, count=32, seed=1))
        for precision in ("fp32", "fp16", "dynamic", "int8"):
            path = tmp / name / f"{precision}.tflite"
            path.parent.mkdir(parents=True, exist_ok=True)
            edgesdk.compress(task.source, profile, precision, path, tmp / f"{name}.npz", epochs=0, store=store)
            measured = edgesdk.bench(path, "local", SETTINGS, store=store).latency["p50_ms"]
            estimate = fitted.predict_ms(path, profile)
            out.append({"model": name, "precision": precision, "p50_ms": measured, "predicted_ms": estimate,
                        "error": (estimate - measured) / measured})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--part", choices=("all", "front", "answer"), default="all",
                        help="front: the hypervolume and predictor study; answer: tune's answer against brute "
                        "force (benchmarks/search_answer.py)")
    parser.add_argument("--answer-models", default="digits",
                        help="comma-separated models for --part answer: digits and any of the MLPerf Tiny ic, "
                        "kws, ad, vww (read from ../shared/models/mlperf_tiny)")
    args = parser.parse_args()
    if args.part in ("all", "answer"):
        from benchmarks import search_answer

        answers = []
        for name in args.answer_models.split(","):
            with tempfile.TemporaryDirectory() as tmp_name:
                answers.append(search_answer.run(Path(tmp_name), SETTINGS, name.strip()))
            search_answer.print_table(answers[-1])
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "search_answer.json").write_text(json.dumps(answers, indent=2))
        for answer in answers:
            search_answer.print_table(answer)
        print(f"wrote {args.out / 'search_answer.json'}")
        if args.part == "answer":
            return 0 if all(r["goal_met"] for a in answers for r in a["rows"]) else 1
    profile = load_profile("host")
    space = build(profile, precision=["fp32", "fp16", "dynamic", "int8"], prune=["none", "0.5", "0.75"],
                  cluster=["none", "16"], structure=["none"], post=["none"])
    budget = max(1, round(BUDGET_FRACTION * len(space)))
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        store = edgesdk.Store(f"sqlite:///{tmp / 'store.sqlite'}")
        for m in models(tmp):
            t0 = time.perf_counter()
            print(f"{m['name']}: grid of {len(space)} candidates", flush=True)
            common = {"data": m["data"], "train_data": m["train"], "space": space, "store": store, "epochs": 0,
                      "settings": SETTINGS, "devices": ["local"], "objectives": ["accuracy", "latency"]}
            grid = tune(m["source"], profile, tmp / m["name"] / "grid", **common)
            rows = [r for r in grid.trials if r["status"] == "measured"]
            table = {r["recipe"]: (objective_value("accuracy", r), r["latency_ms"]) for r in rows}
            grid_s = time.perf_counter() - t0
            qs, ts = [v[0] for v in table.values()], [v[1] for v in table.values()]
            ref, scale = (min(qs), max(ts)), ((max(qs) - min(qs)) or 1.0, (max(ts) - min(ts)) or 1.0)
            grid_hv = hypervolume(list(table.values()), ref, scale)
            tuned = []
            for seed in range(args.seeds):
                print(f"{m['name']}: tune, budget {budget}, seed {seed}", flush=True)
                run = tune(m["source"], profile, tmp / m["name"] / f"tune{seed}", budget=budget, seed=seed, **common)
                found = [table[r["recipe"]] for r in run.trials if r["status"] == "measured"]
                tuned.append(hypervolume(found, ref, scale) / grid_hv if grid_hv else 1.0)
            rng = np.random.default_rng(0)
            values = list(table.values())
            random_hv = [hypervolume([values[i] for i in rng.choice(len(values), budget, replace=False)], ref, scale)
                         / grid_hv if grid_hv else 1.0 for _ in range(500)]
            results.append({"model": m["name"], "grid_size": len(table), "budget": budget, "grid_hv": grid_hv,
                            "tune_hv_fraction": tuned, "random_hv_fraction_mean": float(np.mean(random_hv)),
                            "random_hv_fraction_p10": float(np.percentile(random_hv, 10)),
                            "grid_front": sorted(grid.pareto), "grid_seconds": grid_s,
                            "candidates": [{"recipe": r["recipe"], "quality": table[r["recipe"]][0],
                                            "p50_ms": r["latency_ms"], "path": r["path"]} for r in rows]})
        print("calibrating the host predictor on generated micro-models", flush=True)
        fitted = predict.calibrate(profile, "local", count=16, settings=SETTINGS, store=store, save=False)
        errors = []
        for r in results:
            per_model = []
            for c in r["candidates"]:
                estimate = fitted.predict_ms(c["path"], profile)
                c["predicted_ms"] = estimate
                per_model.append(abs(estimate - c["p50_ms"]) / c["p50_ms"])
            r["predictor_mdape"] = statistics.median(per_model)
            errors += per_model
        wider = _other_models(tmp, profile, store, fitted) if mlperf.DEFAULT_DIR.is_dir() else []
    print(f"\nsearch efficiency on host/local ({len(space)} candidates; tune budget {budget} = "
          f"{budget / len(space):.0%} of the grid; {args.seeds} seeds)")
    print(f"{'model':8} {'grid front':>10} {'tune HV / grid (seeds)':>28} {'random HV / grid':>17} "
          f"{'pred. MdAPE':>12}")
    for r in results:
        seeds = ", ".join(f"{v:.3f}" for v in r["tune_hv_fraction"])
        print(f"{r['model']:8} {len(r['grid_front']):>10} {seeds:>28} {r['random_hv_fraction_mean']:>10.3f} "
              f"(p10 {r['random_hv_fraction_p10']:.2f}) {r['predictor_mdape']:>8.1%}")
    overall = statistics.median(errors)
    print(f"\npredictor: calibrated on {fitted.samples} micro-model measurements (fit MdAPE {fitted.fit_mape:.1%}); "
          f"held-out MdAPE over {len(errors)} candidates: {overall:.1%} (goal <= 10%)")
    if wider:
        print("other models (not in the goal), plain precisions: " + ", ".join(
            f"{w['model']} {w['precision']} {w['error']:+.0%}" for w in wider) +
            f"; MdAPE {statistics.median(abs(w['error']) for w in wider):.1%}")
    worst = min(min(r["tune_hv_fraction"]) for r in results)
    print(f"tune: worst hypervolume fraction over models and seeds {worst:.3f} (goal >= 0.95)")
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "search_efficiency.json"
    for r in results:
        for c in r["candidates"]:
            c.pop("path")
    out.write_text(json.dumps({"results": results, "predictor": {**fitted.to_dict(), "heldout_mdape": overall},
                               "predictor_other_models": wider}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
