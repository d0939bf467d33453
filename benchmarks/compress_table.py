"""Compression table: the four MLPerf Tiny models (from their float sources) and a digits CNN.

For each model and recipe: .tflite bytes, gzipped bytes, p50 latency and peak memory measured through
the device agent on this machine, and quality (digits: accuracy on a held-out split; MLPerf: fidelity to
the float source model, run by TensorFlow, on the shipped real inputs). The MLPerf reference fp32 and
int8 .tflite files are baseline rows, judged against the same float source.

    .venv/bin/python benchmarks/compress_table.py [--models ic,kws,ad,vww,digits] [--out DIR]

Prints a table and writes ``compress_table.json`` to --out (default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

import edgesdk
from benchmarks import mlperf
from edgesdk import evaluate
from edgesdk.tflite.facts import analyze

RECIPES = ["fp32", "dynamic", "fp16", "int8", "int8=io,strip", "prune=0.5,int8", "cluster=16,int8"]
SETTINGS = edgesdk.BenchSettings(runs=50, warmup=5, min_time_s=0.5)


def _measure(path: Path, store: edgesdk.Store) -> dict[str, Any]:
    m = edgesdk.bench(path, "local", SETTINGS, store=store, fresh=True)
    return {"p50_ms": m.latency["p50_ms"], "peak_mem_bytes": m.document["memory"]["peak_rss_increase_bytes"],
            "runtime": f"{m.document['runtime']['name']} {m.document['runtime']['version']}"}


def _row(model: str, recipe: str, path: Path, store: edgesdk.Store, quality: dict[str, Any],
         seconds: float | None) -> dict[str, Any]:
    content = path.read_bytes()
    return {"model": model, "recipe": recipe, "bytes": len(content),
            "gzip_bytes": len(gzip.compress(content, compresslevel=9, mtime=0)),
            "precision": analyze(path).precision, **_measure(path, store), "quality": quality,
            "compress_s": seconds}


# MLPerf Tiny scores an AD clip by the mean reconstruction error over its windows; the shipped input is
# one clip. It "agrees" when its score is within 10 % of the float model's; windows are counted too.
AD_SCORE_TOLERANCE = 0.10


def _float_outputs(task: mlperf.Task, x: np.ndarray | None = None) -> np.ndarray:
    """Outputs of the float source model itself (Keras, run by TensorFlow), not of a converted file."""
    from edgesdk import intake

    if x is None:
        x, _ = mlperf.eval_inputs(task)
    return np.asarray(intake.load_keras(intake.identify(task.source)).predict(x, verbose=0))


def _fidelity(task: mlperf.Task, reference: np.ndarray, test_bytes: bytes,
              x: np.ndarray | None = None) -> dict[str, Any]:
    real = True
    if x is None:
        x, real = mlperf.eval_inputs(task)
    got = evaluate.predict(test_bytes, x)
    q: dict[str, Any] = {"inputs": len(x), "real_inputs": real, "sqnr_db": evaluate.sqnr_db(reference, got)}
    if task.classifier:
        q["agree"] = int(np.sum(reference.argmax(1) == got.argmax(1)))
    else:  # autoencoder: the anomaly score is the reconstruction error
        window_ref = np.mean((reference - x) ** 2, axis=1)
        window_got = np.mean((got - x) ** 2, axis=1)
        clip_err = abs(float(window_got.mean()) - float(window_ref.mean())) / float(window_ref.mean())
        q.update(inputs=1, agree=int(clip_err < AD_SCORE_TOLERANCE), score_rel_err=clip_err,
                 windows=len(x), windows_agree=int(np.sum(np.abs(window_got - window_ref) / window_ref
                                                          < AD_SCORE_TOLERANCE)))
    return q


def run_mlperf(task: mlperf.Task, work: Path, store: edgesdk.Store) -> list[dict[str, Any]]:
    cal = work / f"{task.name}_cal.npz"
    np.savez(cal, x=mlperf.calibration(task))
    reference = _float_outputs(task)
    rows = []
    for recipe in RECIPES:
        out = work / f"{task.name}_{recipe.replace(',', '_').replace('=', '')}.tflite"
        start = time.perf_counter()
        # calibration/fine-tuning on the jittered set (inputs only: distillation from the float model)
        edgesdk.compress(task.source, "host", recipe, out, train_data=cal, epochs=2)
        seconds = time.perf_counter() - start
        rows.append(_row(task.name, recipe, out, store, _fidelity(task, reference, out.read_bytes()), seconds))
        print(f"  {task.name} {recipe}: {rows[-1]['bytes']:,} B, p50 {rows[-1]['p50_ms']:.3f} ms", flush=True)
    for label, path in (("reference fp32", task.float_tflite), ("reference int8", task.reference_int8)):
        rows.append(_row(task.name, label, path, store, _fidelity(task, reference, path.read_bytes()), None))
    return rows


def run_digits(work: Path, store: edgesdk.Store) -> list[dict[str, Any]]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make", Path(__file__).parent.parent / "examples/digits/make.py")
    assert spec and spec.loader
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    x_train, y_train, x_val, y_val = make.digits_split(0)
    model = make.build_and_train(x_train, y_train, seed=0)
    source = work / "digits.keras"
    model.save(source)  # type: ignore[attr-defined]
    train, val = work / "digits_train.npz", work / "digits_val.npz"
    np.savez(train, x=x_train, y=y_train)
    np.savez(val, x=x_val, y=y_val)
    rows = []
    for recipe in RECIPES:
        out = work / f"digits_{recipe.replace(',', '_').replace('=', '')}.tflite"
        start = time.perf_counter()
        result = edgesdk.compress(source, "host", recipe, out, val, train_data=train, epochs=2)
        q = result.quality or {}
        rows.append(_row("digits", recipe, out, store, {"accuracy": q.get("after"), "float_accuracy": q.get("before"),
                                                        "inputs": q.get("samples")}, time.perf_counter() - start))
        print(f"  digits {recipe}: acc {q.get('after'):.4f}", flush=True)
    return rows


def _quality_text(row: dict[str, Any]) -> str:
    q = row["quality"]
    if "accuracy" in q:
        return f"acc {q['accuracy']:.4f} (float {q['float_accuracy']:.4f}, n={q['inputs']})"
    real = "" if q["real_inputs"] else " SYNTHETIC"
    extra = (f", clip score err {q['score_rel_err']:.2%}, windows within 10 %: {q['windows_agree']}/{q['windows']}"
             if "score_rel_err" in q else "")
    return f"agree {q['agree']}/{q['inputs']}{real}, SQNR {q['sqnr_db']:.1f} dB{extra}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="ic,kws,ad,vww,digits")
    parser.add_argument("--mlperf-dir", type=Path, default=mlperf.DEFAULT_DIR)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    wanted = args.models.split(",")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = edgesdk.Store(f"sqlite:///{work / 'store.sqlite'}")
        if any(m != "digits" for m in wanted):
            if not args.mlperf_dir.is_dir():
                print(f"MLPerf Tiny models not found at {args.mlperf_dir}; skipping them", file=sys.stderr)
            else:
                for task in mlperf.tasks(args.mlperf_dir):
                    if task.name in wanted:
                        print(f"{task.name}: compressing {task.source.name}", flush=True)
                        rows.extend(run_mlperf(task, work, store))
        if "digits" in wanted:
            print("digits: training the CNN", flush=True)
            rows.extend(run_digits(work, store))

    header = f"{'model':7} {'recipe':16} {'bytes':>9} {'gzip':>9} {'p50 ms':>8} {'peak mem':>10}  quality"
    print("\n" + header + "\n" + "-" * len(header))
    for r in rows:
        print(f"{r['model']:7} {r['recipe']:16} {r['bytes']:>9,} {r['gzip_bytes']:>9,} {r['p50_ms']:>8.3f} "
              f"{r['peak_mem_bytes'] / 2**20:>8.1f}Mi  {_quality_text(r)}")
    goals = []
    for task in {r["model"] for r in rows} - {"digits"}:
        ours = next(r for r in rows if r["model"] == task and r["recipe"] == "int8=io,strip")
        ref = next(r for r in rows if r["model"] == task and r["recipe"] == "reference int8")
        plain = next(r for r in rows if r["model"] == task and r["recipe"] == "int8")
        ok = ours["bytes"] <= ref["bytes"] and ours["quality"]["agree"] == ours["quality"]["inputs"]
        goals.append({"model": task, "ours_bytes": ours["bytes"], "reference_bytes": ref["bytes"],
                      "int8_float_io_bytes": plain["bytes"], "agrees_on_every_input": ok})
        print(f"goal {task}: int8 (int8 I/O, stripped) {ours['bytes']:,} B vs reference {ref['bytes']:,} B; "
              f"agrees on every input: {ours['quality']['agree'] == ours['quality']['inputs']} -> "
              f"{'MET' if ok else 'NOT MET'}")
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "compress_table.json"
    path.write_text(json.dumps({"rows": rows, "goals": goals, "settings": SETTINGS.to_dict(),
                                "versions": {"edgesdk": edgesdk.__version__}}, indent=2, default=float))
    print(f"\nwrote {path}")
    return 0 if all(g["agrees_on_every_input"] for g in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
