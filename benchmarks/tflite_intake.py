"""Compressing a .tflite without its source, against the same compression from the source and against
ai-edge-quantizer's stock recipes on the same .tflite.

For each MLPerf Tiny model that ships a float source and a float .tflite (IC, KWS, AD, VWW): edgesdk
compresses both with ``int8``, ``dynamic``, ``fp16`` and ``sparsegpt=0.5,int8`` on the same calibration
data, and ai-edge-quantizer's stock recipes (``dynamic_wi8_afp32``, ``weight_only_wi8_afp32``,
``static_wi8_ai8``, ``static_wi8_ai16``) run on the same float .tflite, calibrated on the same samples.
Each result: bytes, SQNR against the float .tflite (on the real input plus held-out jittered variants)
and p50 latency through the device agent on this machine.

Goal: from the .tflite, within 3 % of the bytes and 1 dB of the SQNR of edgesdk's own result from the
source, and at least as small and as faithful as every stock recipe that succeeds.

    .venv/bin/python benchmarks/tflite_intake.py [--models ic,kws,ad,vww] [--out DIR] [--runs N]

Prints a table and writes ``tflite_intake.json`` to --out (default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

import edgesdk
from benchmarks import mlperf
from edgesdk import evaluate

RECIPES = ["int8", "dynamic", "fp16", "sparsegpt=0.5,int8"]
STOCK = ["dynamic_wi8_afp32", "weight_only_wi8_afp32", "static_wi8_ai8", "static_wi8_ai16"]


def _stock(recipe: str, float_tflite: Path, calibration: np.ndarray) -> bytes:
    """ai-edge-quantizer's stock recipe as its README runs it (static ones calibrated on our samples)."""
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer
    from ai_edge_quantizer import recipe as recipes

    q = quantizer.Quantizer(str(float_tflite))
    q.load_quantization_recipe(getattr(recipes, recipe)())
    if not recipe.startswith("static"):
        return bytes(q.quantize(enable_progress_report=False).quantized_model)
    signatures = Interpreter(model_path=str(float_tflite)).get_signature_list()
    key = "serving_default"  # what its examples pass; a model without this signature fails here
    name = list(signatures.get(key, {"inputs": ["input"]})["inputs"])[0]
    result = q.calibrate({key: [{name: s[None].astype(np.float32)} for s in calibration]})
    return bytes(q.quantize(result, enable_progress_report=False).quantized_model)


def _row(task: mlperf.Task, origin: str, recipe: str, content: bytes | None, error: str | None, x: np.ndarray,
         reference: np.ndarray, runs: int) -> dict[str, Any]:
    row: dict[str, Any] = {"model": task.name, "from": origin, "recipe": recipe, "bytes": None, "sqnr_db": None,
                           "p50_ms": None, "error": error}
    if content is None:
        return row
    row["bytes"] = len(content)
    row["sqnr_db"] = round(evaluate.sqnr_db(reference, evaluate.predict(content, x)), 2)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.tflite"
        path.write_bytes(content)
        m = edgesdk.bench(path, "local", edgesdk.BenchSettings(runs=runs, warmup=3, min_time_s=0.2), fresh=True)
        row["p50_ms"] = round(m.latency["p50_ms"], 4)
    return row


def run(names: list[str], runs: int) -> list[dict[str, Any]]:
    rows = []
    for task in [t for t in mlperf.tasks() if t.name in names]:
        cal = mlperf.calibration(task)
        x = mlperf.wide_eval_inputs(task)
        reference = evaluate.predict(task.float_tflite.read_bytes(), x)
        with tempfile.TemporaryDirectory() as d:
            train = Path(d) / "cal.npz"
            np.savez(train, x=cal)
            for recipe in RECIPES:
                for origin, model in (("source", task.source), ("tflite", task.float_tflite)):
                    out = Path(d) / f"{origin}.tflite"
                    try:
                        edgesdk.compress(model, "host", recipe, out, train_data=train)
                        content, error = out.read_bytes(), None
                    except edgesdk.EdgeSdkError as exc:
                        content, error = None, str(exc)[:200]
                    rows.append(_row(task, origin, recipe, content, error, x, reference, runs))
                    print(_line(rows[-1]), flush=True)
        for recipe in STOCK:
            try:
                content, error = _stock(recipe, task.float_tflite, cal), None
            except Exception as exc:  # noqa: BLE001 - report whatever the stock recipe raised
                content, error = None, f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:160]}"
            rows.append(_row(task, "aeq stock", recipe, content, error, x, reference, runs))
            # outputs identical to the model it was given: the recipe quantized nothing
            rows[-1]["unchanged"] = rows[-1]["sqnr_db"] == float("inf")
            print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict[str, Any]) -> str:
    if r["error"]:
        return f"{r['model']:4} {r['from']:10} {r['recipe']:22} failed: {r['error']}"
    return (f"{r['model']:4} {r['from']:10} {r['recipe']:22} {r['bytes']:>9,} B  {r['sqnr_db']:7.2f} dB  "
            f"{r['p50_ms']:8.3f} ms{'  (model returned unchanged)' if r.get('unchanged') else ''}")


def verdicts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and recipe: the .tflite result against the source's, and against every stock recipe."""
    out = []
    for r in rows:
        if r["from"] != "tflite" or r["error"]:
            continue
        src = next(s for s in rows if s["model"] == r["model"] and s["recipe"] == r["recipe"] and s["from"] == "source")
        stock = [s for s in rows if s["model"] == r["model"] and s["from"] == "aeq stock" and not s["error"]
                 and not s.get("unchanged")]
        same_kind = {"int8": ["static_wi8_ai8"], "sparsegpt=0.5,int8": ["static_wi8_ai8"],
                     "dynamic": ["dynamic_wi8_afp32"], "fp16": []}[r["recipe"]]
        rivals = [s for s in stock if s["recipe"] in same_kind]
        out.append({
            "model": r["model"], "recipe": r["recipe"],
            "bytes_vs_source": None if src["error"] else round(r["bytes"] / src["bytes"] - 1, 4),
            "sqnr_vs_source_db": None if src["error"] else round(r["sqnr_db"] - src["sqnr_db"], 2),
            "beats_stock": all(r["bytes"] <= s["bytes"] and r["sqnr_db"] >= s["sqnr_db"] - 0.05 for s in rivals),
            "stock_compared": [s["recipe"] for s in rivals]})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="ic,kws,ad,vww")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--runs", type=int, default=30, help="timed runs per model through the agent")
    args = parser.parse_args()
    if not mlperf.DEFAULT_DIR.is_dir():
        sys.exit(f"MLPerf Tiny models not found at {mlperf.DEFAULT_DIR}")
    rows = run(args.models.split(","), args.runs)
    checks = verdicts(rows)
    print("\nmodel recipe               bytes vs source  SQNR vs source  >= stock (same kind)")
    for c in checks:
        bytes_pct = "n/a" if c["bytes_vs_source"] is None else f"{100 * c['bytes_vs_source']:+.2f} %"
        sqnr = "n/a" if c["sqnr_vs_source_db"] is None else f"{c['sqnr_vs_source_db']:+.2f} dB"
        print(f"{c['model']:5} {c['recipe']:20} {bytes_pct:>15}  {sqnr:>14}  {c['beats_stock']} "
              f"({', '.join(c['stock_compared']) or 'none'})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tflite_intake.json").write_text(json.dumps({"rows": rows, "checks": checks}, indent=2))
    print(f"\nwrote {out / 'tflite_intake.json'}")


if __name__ == "__main__":
    main()
