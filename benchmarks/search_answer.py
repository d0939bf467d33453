"""Is `tune`'s answer as good as the best single recipe found by brute force? (issue 26)

For the digits CNN on the `host` profile and the local device, under a one-point accuracy limit
(``--max-accuracy-drop 0.01``), objectives ``size,accuracy`` and ``latency,accuracy``:

1. Brute force: every recipe of one precision of the default space (all ten: fp32 ... weights=int4) with
   at most one step of the structure dimension (channels=0.25/0.5, lowrank=0.5), or one pruning (0.5) or
   clustering (16) step, each with and without ``strip``: 10 x (1 + 3 + 1 + 1) x 2 = 120 recipes, each
   compressed (one epoch of fine-tuning, as tune does), evaluated on the labels and measured. This is
   smaller than the default space (3,200 stacks): the other pruning and clustering values change neither
   the file size nor the dense runtime's latency, and stacks are what tune adds over it.
2. `tune` over the default space with a budget of 25 % of that grid (30 trials), and with its default
   budget, in fresh studies sharing the grid's results store (a candidate tried in both has the same
   measured latency: the comparison is of search, not of measurement noise).

Goal: tune's answer is at least as good as the brute-force best (size: no more bytes; latency: within 3 %,
the measurement margin) and within the limit, on every objective.

The MLPerf Tiny models (``--answer-models digits,kws,ad,...``) come without labels: they are evaluated on
their real input plus 32 jittered variants and calibrated/fine-tuned on 64 others (benchmarks/mlperf.py);
the limit for a classifier is ``--max-accuracy-drop 0.01`` read on unlabelled data, i.e. a top-1
agreement with the original of at least 0.99; for the anomaly-detection autoencoder (no classes) an
output SQNR of at least 20 dB against the original. "Within the limit" is what tune itself judges: a
row with no violations.

    .venv/bin/python benchmarks/search_efficiency.py --part answer [--answer-models digits,kws,ad] [--out DIR]
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import edgesdk
from edgesdk.profiles import load_profile
from edgesdk.search import Constraints, build, tune
from edgesdk.search.cells import duration

ROOT = Path(__file__).resolve().parent.parent
LIMIT = Constraints(max_accuracy_drop=0.01)
FRACTION = 0.25
LATENCY_MARGIN = 0.03


def _grid_spaces(profile: Any) -> list[Any]:
    """The brute-force recipes as three spaces: structure, one pruning step, one clustering step; each
    crossed with every precision and with/without strip."""
    one = {"prune": ["none"], "cluster": ["none"], "structure": ["none"], "post": ["none", "strip"]}
    return [build(profile, **{**one, "structure": ["none", "channels=0.25", "channels=0.5", "lowrank=0.5"]}),
            build(profile, **{**one, "prune": ["0.5"]}),
            build(profile, **{**one, "cluster": ["16"]})]


def _value(row: dict[str, Any], objective: str) -> float:
    return float(row["model_bytes"] if objective == "size" else row["latency_ms"])


def _drop(row: dict[str, Any]) -> float | None:
    """Accuracy points lost (labels), else the top-1 disagreement with the original; None for neither."""
    q = row.get("quality") or {}
    if q.get("before") is not None and q.get("after") is not None:
        return float(q["before"]) - float(q["after"])
    return None if q.get("top1_agreement") is None else 1.0 - float(q["top1_agreement"])


def _case(name: str, tmp: Path) -> dict[str, Any]:
    """The model, its data and its limit: digits with labels, or an MLPerf Tiny model without."""
    if name == "digits":
        return {"model": ROOT / "examples/digits/model.keras", "data": ROOT / "examples/digits/val.npz",
                "train_data": ROOT / "examples/digits/train.npz", "constraints": LIMIT}
    import numpy as np

    from benchmarks import mlperf

    task = next(t for t in mlperf.tasks() if t.name == name)
    data, train = tmp / f"{name}-eval.npz", tmp / f"{name}-train.npz"
    np.savez(data, x=mlperf.wide_eval_inputs(task))
    np.savez(train, x=mlperf.calibration(task, count=64, held_out=True))
    limit = LIMIT if task.classifier else Constraints(min_sqnr_db=20.0)
    return {"model": task.source, "data": data, "train_data": train, "constraints": limit}


def run(tmp: Path, settings: Any, name: str = "digits") -> dict[str, Any]:
    """The grid, then tune per objective at 25 % of the grid and at its default budget, on one model."""
    profile = load_profile("host")
    store = edgesdk.Store(f"sqlite:///{tmp / f'answer-{name}.sqlite'}")
    case = _case(name, tmp)
    model = case.pop("model")
    common = {**case, "store": store, "settings": settings, "devices": ["local"], "epochs": 1}
    t0 = time.perf_counter()
    grid: dict[str, dict[str, Any]] = {}
    for i, space in enumerate(_grid_spaces(profile)):
        print(f"{name}: brute force, part {i + 1} of 3 ({len(space)} recipes)", flush=True)
        done = tune(model, profile, tmp / f"{name}-grid{i}", space=space, budget=len(space),
                    objectives=["latency", "accuracy"], **common)
        grid.update({r["recipe"]: r for r in done.trials if r.get("status") == "measured"})
    grid_s = time.perf_counter() - t0
    within = [r for r in grid.values() if not r.get("violations")]
    budget = round(FRACTION * len(grid))
    out: list[dict[str, Any]] = []
    for objective in ("size", "latency"):
        best = min(within, key=lambda r: _value(r, objective))
        for label, trials in ((f"25 % ({budget})", budget), ("default", None)):
            print(f"{name}: tune {objective},accuracy, budget {label}", flush=True)
            t1 = time.perf_counter()
            found = tune(model, profile, tmp / f"{name}-tune-{objective}-{trials}", objectives=[objective, "accuracy"],
                         budget=trials, **common)
            answer = found.trial(found.best) if found.best is not None else None
            ok = answer is not None and found.best_meets_constraints and (
                _value(answer, objective) <= _value(best, objective) * (1 + (LATENCY_MARGIN if objective ==
                                                                             "latency" else 0)))
            out.append({"objective": objective, "budget": label, "trials": found.budget,
                        "seconds": time.perf_counter() - t1, "grid_best": best["recipe"],
                        "grid_value": _value(best, objective), "grid_drop": _drop(best),
                        "tune_best": answer["recipe"] if answer else None,
                        "tune_value": _value(answer, objective) if answer else None,
                        "tune_drop": _drop(answer) if answer else None, "goal_met": ok,
                        "original_value": _value(found.baseline, objective) if found.baseline else None})
    return {"model": name, "grid_size": len(grid), "grid_within_limit": len(within), "grid_seconds": grid_s,
            "rows": out}


def print_table(result: dict[str, Any]) -> None:
    print(f"\ntune's answer vs brute force over {result['grid_size']} single recipes ({result['grid_within_limit']} "
          f"within the limit; {result['grid_seconds']:.0f} s) on {result['model']}, host/local")
    print(f"{'objective':9} {'budget':10} {'brute-force best':33} {'value':>10} {'tune best':33} {'value':>10} "
          f"{'drop':>8} {'goal':>5}")
    for r in result["rows"]:
        show = (lambda v: f"{v:,.0f} B") if r["objective"] == "size" else duration
        tune_v = "–" if r["tune_value"] is None else show(r["tune_value"])
        drop = "–" if r["tune_drop"] is None else f"{100 * r['tune_drop']:.1f} pt"
        print(f"{r['objective']:9} {r['budget']:10} {r['grid_best']:33} {show(r['grid_value']):>10} "
              f"{str(r['tune_best']):33} {tune_v:>10} {drop:>8} {'yes' if r['goal_met'] else 'NO':>5}")
