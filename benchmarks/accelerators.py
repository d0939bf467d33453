"""The GPU accelerator against the CPU: is the model fully accelerated (predicted and reported), how close
are the GPU's fp16 outputs to the CPU's, and how long does each take.

Models: the MLPerf Tiny float .tflite files (IC, KWS, AD, VWW; from ../shared), the bundled digits CNN,
and an fp16 conversion of each (edgesdk's ``fp16``: fp16 weights behind DEQUANTIZE, as MediaPipe ships
them). Each is measured through the device agent on this machine, once on the CPU (interpreter,
XNNPACK) and once with ``--accelerator gpu`` (LiteRT's CompiledModel). Here the GPU is Mesa's lavapipe,
a software Vulkan driver: its p50 is labelled "software GPU" and is not GPU speed. ``--probe`` adds
one-operator models for the operators the GPU delegate is known to refuse or take (the evidence behind
the mobile-gpu profile's operator set).

Goal: the prediction (from the mobile-gpu profile) matches what the accelerator reports on every model,
and the SQNR of the GPU's outputs against the fp32 CPU's is >= 40 dB. Both SQNR columns are the agent's
own figures (SQNR over all samples together, and in brackets that of the worst single sample): on four
seeded standard-normal input draws (what it uses without data) and on real samples passed with
``bench --data`` (up to 16: the digits validation images, the MLPerf inputs with held-out jittered
variants; VWW synthetic images). The goal is judged on the first (the usual definition).

    .venv/bin/python benchmarks/accelerators.py [--runs N] [--probe] [--out DIR]

Prints a table and writes ``accelerators.json`` to --out (default benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import edgesdk  # noqa: E402
from device_agent.protocol import BenchSettings  # noqa: E402
from edgesdk.targets import gpu  # noqa: E402
from edgesdk.tflite.facts import analyze  # noqa: E402

MLPERF = ROOT.parent / "shared" / "models" / "mlperf_tiny"
FLOAT_FILES = {"ic": "ic/pretrainedResnet.tflite", "kws": "kws/kws_ref_model_float32.tflite",
               "ad": "ad/ad01_fp32.tflite", "vww": "vww/vww_96_float.tflite"}


def _probes() -> dict[str, Callable[[Any], Any]]:
    import tensorflow as tf

    return {
        "gather_nd": lambda x: tf.gather_nd(tf.reshape(x, [8, 8]), [[1, 2], [3, 4]]),
        "broadcast_to": lambda x: tf.broadcast_to(tf.reshape(x, [1, 8, 8, 1]), [1, 8, 8, 4]),
        "l2_normalize": lambda x: tf.math.l2_normalize(x, axis=-1),
        "log_softmax": lambda x: tf.nn.log_softmax(tf.reshape(x, [1, 64])),
        "argmax_int64": lambda x: tf.cast(tf.argmax(tf.reshape(x, [1, -1]), axis=1), tf.float32),
        "reshape_5d": lambda x: tf.expand_dims(x, 0),
        "cumsum": lambda x: tf.math.cumsum(x, axis=1),
        "gather": lambda x: tf.gather(tf.reshape(x, [8, 8]), [1, 3], axis=0),
        "topk": lambda x: tf.math.top_k(tf.reshape(x, [1, -1]), 3).values,
        "select": lambda x: tf.where(x > 1.5, x, -x),
        "mirror_pad": lambda x: tf.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT"),
        "tile": lambda x: tf.tile(x, [1, 2, 1, 1]),
        "reduce_max": lambda x: tf.reduce_max(x, axis=[1, 2]),
    }


def _probe_model(name: str, fn: Callable[[Any], Any], out: Path) -> Path:
    import tensorflow as tf

    f = tf.function(lambda x: fn(tf.nn.relu(x) + 1.0))
    concrete = f.get_concrete_function(tf.TensorSpec([1, 8, 8, 1], tf.float32))
    path = out / f"probe_{name}.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert())
    return path


def models(tmp: Path, probe: bool) -> list[tuple[str, Path, Any]]:
    """(name, .tflite, real inputs or None): the digits CNN and its validation images, the MLPerf float
    files and their real inputs (plus held-out jittered variants; VWW: synthetic images), fp16 twins."""
    import numpy as np

    from benchmarks import mlperf

    found: list[tuple[str, Path, Any]] = []
    digits = tmp / "digits_fp32.tflite"
    edgesdk.compress(ROOT / "examples" / "digits" / "model.keras", "host", "fp32", digits)
    sources = [("digits", digits, np.load(ROOT / "examples" / "digits" / "val.npz")["x"][:64].astype(np.float32))]
    if MLPERF.is_dir():
        sources += [(task.name, task.float_tflite, mlperf.wide_eval_inputs(task)) for task in mlperf.tasks(MLPERF)]
    for name, path, x in sources:
        found.append((name, path, x))
        half = tmp / f"{name}_fp16.tflite"
        edgesdk.compress(path, "mobile-gpu", "fp16", half)
        found.append((f"{name} fp16", half, x))
    if probe:
        found += [(f"probe {name}", _probe_model(name, fn, tmp), None) for name, fn in _probes().items()]
    return found


def measure(name: str, path: Path, x: Any, runs: int, store: Any) -> dict[str, Any]:
    profile = edgesdk.load_profile("mobile-gpu")
    report = analyze(path)
    predicted = gpu.predicted_ops(report, profile)
    row: dict[str, Any] = {"model": name, "bytes": path.stat().st_size, "precision": report.precision,
                           "predicted_fallback": predicted}
    cpu = edgesdk.bench(path, "local", BenchSettings(runs=runs, min_time_s=0.2, power=False), store=store)
    row["cpu_p50_ms"] = cpu.latency["p50_ms"]
    try:
        on_gpu = edgesdk.bench(path, "local", BenchSettings(runs=runs, min_time_s=0.2, power=False,
                                                            accelerator="gpu"), store=store)
    except edgesdk.EdgeSdkError as exc:
        row.update(gpu_error=str(exc), matches=False)
        return row
    acc = on_gpu.document["accelerator"]
    fidelity = acc.get("fidelity") or {}
    real = None
    if x is not None:  # the same GPU run on the real samples (the agent's --inputs): its worst sample
        import numpy as np

        with tempfile.TemporaryDirectory() as tmp:
            np.savez(Path(tmp) / "x.npz", x=np.asarray(x, dtype=np.float32))
            settings = BenchSettings(runs=runs, min_time_s=0.2, power=False, accelerator="gpu")
            given = edgesdk.bench(path, "local", settings, store=store, data=Path(tmp) / "x.npz")
        real = given.document["accelerator"]["fidelity"]
    row.update(gpu_p50_ms=on_gpu.latency["p50_ms"], fully_accelerated=acc["fully_accelerated"],
               reported_fallback=acc["fallback_ops"], adapter=(acc.get("adapter") or {}).get("name"),
               software=(acc.get("adapter") or {}).get("software"), sqnr_db=fidelity.get("sqnr_db"),
               identical=fidelity.get("identical"), max_abs_diff=fidelity.get("max_abs_diff"),
               worst_sample_sqnr_db=fidelity.get("worst_sample_sqnr_db"),
               real_worst_sample_sqnr_db=(real or {}).get("worst_sample_sqnr_db"),
               real_sqnr_db=(real or {}).get("sqnr_db"), real_identical=(real or {}).get("identical"),
               real_samples=(real or {}).get("inputs"),
               matches=sorted(predicted) == sorted(acc["fallback_ops"])
               and (not predicted) == bool(acc["fully_accelerated"]))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--probe", action="store_true", help="also the one-operator probe models")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    store = edgesdk.Store(f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite")
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(name, path, x, args.runs, store) for name, path, x in models(Path(tmp), args.probe)]
    print("| model | precision | bytes | predicted fallback | reported fallback | fully acc. | match | "
          "SQNR dB, generated inputs (worst sample) | SQNR dB, real inputs (worst sample) | CPU p50 ms | "
          "software GPU p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "gpu_error" in r:
            reported, full, sqnr, real, gpu_ms = f"error: {r['gpu_error']}", "–", "–", "–", "–"
        else:
            reported, full, gpu_ms = ", ".join(r["reported_fallback"]) or "–", str(r["fully_accelerated"]), \
                f"{r['gpu_p50_ms']:.3f}"
            sqnr = "identical" if r.get("identical") else f"{r['sqnr_db']:.1f} ({r['worst_sample_sqnr_db']:.1f})"
            real = "identical" if r.get("real_identical") else "–" if r.get("real_sqnr_db") is None \
                else f"{r['real_sqnr_db']:.1f} ({r['real_worst_sample_sqnr_db']:.1f})"
        cells = [r["model"], r["precision"], f"{r['bytes']:,}", ", ".join(r["predicted_fallback"]) or "–", reported,
                 full, "yes" if r.get("matches") else "NO", sqnr, real, f"{r['cpu_p50_ms']:.3f}", gpu_ms]
        print("| " + " | ".join(cells) + " |")
    whole = [r for r in rows if not r["model"].startswith("probe")]
    checks = {"prediction_matches_everywhere": all(r.get("matches") for r in rows),
              "sqnr_at_least_40_db_real_inputs": all(r.get("real_identical") or (r.get("real_sqnr_db") or 0) >= 40
                                                     for r in whole),
              "sqnr_at_least_40_db_generated_inputs": all(r.get("identical") or (r.get("sqnr_db") or 0) >= 40
                                                          for r in whole),
              "adapter": next((r.get("adapter") for r in rows if r.get("adapter")), None)}
    print(json.dumps(checks, indent=2))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "accelerators.json").write_text(json.dumps({"rows": rows, "checks": checks}, indent=2))


if __name__ == "__main__":
    main()
