"""Compression techniques side by side: structured, activation-aware and second-order pruning against
TFMOT-style magnitude pruning, at matched sparsity, on the digits CNN and the MLPerf Tiny IC and VWW models.

For each model (int8 .tflite throughout, so latencies compare what a device would run):

- dense int8 (the baseline);
- ``prune=0.5`` (magnitude: one-shot without fine-tuning, TFMOT's schedule with it), ``wanda=0.5`` and
  ``sparsegpt=0.5``: 50 % of every Conv/Dense kernel zeroed;
- ``channels=0.5``: half the channels of every convolution and dense layer removed (structured);
- ``lowrank=0.5``: every Dense and Conv2D factorized (SVD, Tucker-2) to at most half its parameters;
- ``channels=0.5,distill=4``: the same channel pruning, fine-tuned by distillation (softened outputs of
  the float model, no labels) instead of on labels (digits) or by output MSE (IC, VWW).

Each is compressed twice: without fine-tuning (epochs 0) and after the same short fine-tune (digits:
on its labels; IC and VWW: distilled from the float model on jittered copies of the shipped input, or
synthetic images for VWW). Columns: quality (digits: accuracy on the held-out split; IC/VWW: SQNR of the
outputs against the float model, and top-1 agreement), .tflite bytes, gzip bytes, ideal entropy-coded
weight bytes, and p50 latency through the device agent on this machine.

Goals (issue 5): channels=0.5 has >= 1.6x lower p50 than dense int8; wanda and sparsegpt keep more
quality than magnitude at 50 % without fine-tuning.

    .venv/bin/python benchmarks/techniques.py [--epochs 2] [--models digits,ic,vww] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
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

TECHNIQUES = ["none", "prune=0.5", "wanda=0.5", "sparsegpt=0.5", "channels=0.5", "lowrank=0.5",
              "channels=0.5,distill=4"]
SETTINGS = edgesdk.BenchSettings(runs=100, warmup=10, min_time_s=1.0, threads=1, windows=10)


def _models(tmp: Path, names: list[str]) -> list[dict[str, Any]]:
    out = []
    if "digits" in names:
        out.append({"name": "digits", "source": ROOT / "examples/digits/model.keras",
                    "data": ROOT / "examples/digits/val.npz", "train": ROOT / "examples/digits/train.npz"})
    wanted = [n for n in names if n != "digits"]
    if wanted and not mlperf.DEFAULT_DIR.is_dir():
        print(f"MLPerf Tiny models not found at {mlperf.DEFAULT_DIR}: {', '.join(wanted)} skipped")
        return out
    tasks = {t.name: t for t in mlperf.tasks()} if wanted else {}
    for name in wanted:
        task = tasks[name]
        np.savez(tmp / f"{name}_val.npz", x=mlperf.calibration(task, count=64, seed=1))
        np.savez(tmp / f"{name}_train.npz", x=mlperf.calibration(task, count=256, seed=0))
        out.append({"name": name, "source": task.source, "data": tmp / f"{name}_val.npz",
                    "train": tmp / f"{name}_train.npz"})
    return out


def _quality(q: dict[str, Any]) -> dict[str, Any]:
    if q.get("metric") == "accuracy":
        return {"accuracy": q["after"], "float_accuracy": q["before"]}
    return {"sqnr_db": q.get("sqnr_db"), "top1_agreement": q.get("top1_agreement")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2, help="the short fine-tune (default 2 epochs)")
    parser.add_argument("--models", default="digits,ic,vww")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        store = edgesdk.Store(f"sqlite:///{tmp / 'store.sqlite'}")
        for m in _models(tmp, args.models.split(",")):
            for technique in TECHNIQUES:
                recipe = "int8" if technique == "none" else f"{technique},int8"
                runs = [0] if technique == "none" else [args.epochs] if "distill" in technique else [0, args.epochs]
                for epochs in runs:
                    print(f"{m['name']}: {recipe}, {epochs} epoch(s)", flush=True)
                    path = tmp / m["name"] / f"{recipe.replace(',', '_').replace('=', '')}-e{epochs}.tflite"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    t0 = time.perf_counter()
                    r = edgesdk.compress(m["source"], "host", recipe, path, m["data"], train_data=m["train"],
                                         epochs=epochs, store=store)
                    seconds = time.perf_counter() - t0
                    latency = edgesdk.bench(path, "local", SETTINGS, store=store).latency
                    rows.append({"model": m["name"], "technique": technique, "epochs": epochs, "recipe": recipe,
                                 **_quality(r.quality or {}), "bytes": r.model_bytes, "gzip_bytes": r.gzip_bytes,
                                 "weight_bytes": r.weight_bytes, "weight_entropy_bytes": r.weight_entropy_bytes,
                                 "p50_ms": latency["p50_ms"], "compress_s": seconds})
    print()
    print(f"{'model':7} {'technique':22} {'ep':>2} {'quality':>18} {'bytes':>9} {'gzip':>9} {'coded wts':>9} "
          f"{'p50 ms':>8} {'speed-up':>8}")
    for r in rows:
        base = next(b for b in rows if b["model"] == r["model"] and b["technique"] == "none")
        quality = f"acc {r['accuracy']:.3f}" if "accuracy" in r else \
            f"{r['sqnr_db']:5.1f} dB, top1 {r['top1_agreement']:.2f}"
        print(f"{r['model']:7} {r['technique']:22} {r['epochs']:>2} {quality:>18} {r['bytes']:>9,} "
              f"{r['gzip_bytes']:>9,} {r['weight_entropy_bytes']:>9,} {r['p50_ms']:>8.4f} "
              f"{base['p50_ms'] / r['p50_ms']:>7.2f}x")
    print()
    verdicts = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = {(r["technique"], r["epochs"]): r for r in rows if r["model"] == model}
        key = "accuracy" if "accuracy" in mine[("none", 0)] else "sqnr_db"
        speed = mine[("none", 0)]["p50_ms"] / mine[("channels=0.5", 0)]["p50_ms"]
        verdicts.append(f"{model}: channels=0.5 {speed:.2f}x faster than dense int8 (goal >= 1.6x); at 50 % "
                        f"without fine-tuning {key}: magnitude {mine[('prune=0.5', 0)][key]:.3f}, "
                        f"wanda {mine[('wanda=0.5', 0)][key]:.3f}, sparsegpt {mine[('sparsegpt=0.5', 0)][key]:.3f}")
    print("\n".join(verdicts))
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "techniques.json"
    out.write_text(json.dumps({"settings": SETTINGS.to_dict(), "epochs": args.epochs, "rows": rows,
                               "verdicts": verdicts}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
