"""How far the uncalibrated latency estimates are off: the host profile's roofline with and without its
kernel facts against latencies measured here, and what every CPU/GPU profile estimates for the same files.

The models are the MLPerf Tiny .tflite files (float and int8, as shipped) and the digits CNN compressed
with a few recipes; none of them is one of the micro-models `edgesdk calibrate` fits on. "peaks only" is
the host profile without its kernel facts (kernel efficiencies, per-operator and per-inference costs, the
cache, dynamic at the int8 rate): the roofline as it was before them. The ratio is measured / estimated;
the host profile's `uncalibrated_error` is the worst of them, rounded up.

    python benchmarks/predictor_error.py [--mlperf-dir DIR] [--out benchmarks/results/]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from device_agent.protocol import BenchSettings, typical_ms  # noqa: E402
from edgesdk import _native  # noqa: E402
from edgesdk.profiles import Profile, load_profile  # noqa: E402
from edgesdk.search.predict import Predictor, roofline  # noqa: E402
from edgesdk.tflite.facts import analyze  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ("fp32", "fp16", "dynamic", "int8", "prune=0.5,int8", "channels=0.5,fp32")
PROFILES = ("host", "rpi5", "android-cpu", "mobile-gpu")


def peaks_only(profile: Profile) -> Profile:
    """``profile`` without its kernel facts, dynamic at the float rate: the roofline before them."""
    roof = profile.roofline
    peaks = {**roof.peak_macs_per_s, "dynamic": roof.peak_macs_per_s.get("fp32", max(roof.peak_macs_per_s.values()))}
    bare = roof.model_copy(update={"kernel_efficiency": {}, "per_op_us": 0.0, "fixed_us": 0.0, "cache_bytes": 0,
                                   "cache_bandwidth_bytes_per_s": None, "peak_macs_per_s": peaks})
    return profile.model_copy(update={"roofline": bare})


def estimate(path: Path, profile: Profile) -> float:
    return Predictor(profile.name, roofline(profile)).predict_ms(analyze(path), profile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlperf-dir", type=Path, default=ROOT.parent / "shared/models/mlperf_tiny")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args()
    _native.quiet_tensorflow_imports()
    import edgesdk
    from edgesdk.measure import bench

    files = sorted(args.mlperf_dir.glob("*/*.tflite")) if args.mlperf_dir.is_dir() else []
    if not files:
        print(f"note: no MLPerf Tiny models in {args.mlperf_dir}; the digits CNN only")
    tmp = Path(tempfile.mkdtemp(prefix="edgesdk-predictor-"))
    for recipe in RECIPES:
        out = tmp / f"digits {recipe}.tflite"
        edgesdk.compress(ROOT / "examples/digits/model.keras", "host", recipe, out)
        files.append(out)
    host, bare = load_profile("host"), peaks_only(load_profile("host"))
    profiles = {name: load_profile(name) for name in PROFILES}
    rows = []
    print("| model | precision | measured | peaks only | ratio | with kernel facts | ratio | "
          + " | ".join(f"{n} est." for n in PROFILES[1:]) + " |")
    print("|---|---|---:|---:|---:|---:|---:|" + "---:|" * (len(PROFILES) - 1))
    for path in files:
        measured = typical_ms(bench(path, "local", BenchSettings(runs=50, warmup=5, min_time_s=0.5)).latency)
        row = {"model": path.stem, "precision": analyze(path).precision, "measured_ms": measured,
               "peaks_only_ms": estimate(path, bare), "kernel_facts_ms": estimate(path, host),
               **{f"{n}_ms": estimate(path, p) for n, p in profiles.items() if n != "host"}}
        rows.append(row)
        others = " | ".join(f"{row[f'{n}_ms'] * 1e3:.1f} µs" for n in PROFILES[1:])
        cells = [row["model"], row["precision"], f"{measured * 1e3:.1f} µs", f"{row['peaks_only_ms'] * 1e3:.1f} µs",
                 f"{measured / row['peaks_only_ms']:.2f}", f"{row['kernel_facts_ms'] * 1e3:.1f} µs",
                 f"{measured / row['kernel_facts_ms']:.2f}", others]
        print("| " + " | ".join(cells) + " |", flush=True)

    def worst(key: str) -> float:
        return max(max(r["measured_ms"] / r[key], r[key] / r["measured_ms"]) for r in rows)

    summary = {"worst_factor_peaks_only": worst("peaks_only_ms"), "worst_factor_kernel_facts": worst("kernel_facts_ms"),
               "host_uncalibrated_error": host.roofline.uncalibrated_error}
    print(f"\nworst factor, peaks only: {summary['worst_factor_peaks_only']:.2f}x; with the kernel facts: "
          f"{summary['worst_factor_kernel_facts']:.2f}x (host.yaml says within {host.roofline.uncalibrated_error:g}x)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "predictor_error.json").write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))
    print(f"wrote {args.out / 'predictor_error.json'}")


if __name__ == "__main__":
    main()
