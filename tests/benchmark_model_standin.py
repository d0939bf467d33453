"""Stands in for TFLite's `benchmark_model` binary on the test Android device.

The real binary comes from TensorFlow's nightly storage, which this machine cannot reach, so this script
takes its place at the lowest layer: the same flags, a real TFLite interpreter (whichever the running
python has: ai_edge_litert or tflite_runtime 2.14), real timings, and the log lines of
tensorflow/lite/tools/benchmark (benchmark_model.cc, benchmark_tflite_model.cc), on stderr as TFLITE_LOG
writes them. Run it with the python whose runtime the "device" should have.
"""

from __future__ import annotations

import os
import resource
import sys
import time


def log(message: str) -> None:
    print(f"INFO: {message}", file=sys.stderr, flush=True)


def stat_line(times_us: list[float]) -> str:
    import numpy as np

    arr = np.asarray(times_us)
    return (f"count={len(arr)} first={int(arr[0])} curr={int(arr[-1])} min={int(arr.min())} max={int(arr.max())} "
            f"avg={arr.mean():g} std={int(arr.std())} p5={int(np.percentile(arr, 5))} "
            f"median={int(np.median(arr))} p95={int(np.percentile(arr, 95))}")


def run_for(interp: object, runs: int, min_secs: float, label: str) -> list[float]:
    log(f"Running benchmark for at least {runs} iterations and at least {min_secs:g} seconds but terminate if "
        "exceeding 150 seconds.")
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < runs or time.perf_counter() - start < min_secs:
        t0 = time.perf_counter_ns()
        interp.invoke()  # type: ignore[attr-defined]
        times.append((time.perf_counter_ns() - t0) / 1000)
    log(stat_line(times) + ("\n" if label == "warmup" else ""))
    return times


def gpu_session(graph: str) -> object | None:
    """The model on LiteRT's GPU accelerator (as benchmark_model's GPU delegate), or None without a GPU."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from device_agent.accelerated import CompiledSession, _compile, _describe
    from device_agent.runtime import NoAccelerator, UnsupportedModel

    try:
        model, text = _compile(graph, "gpu", None)
    except (NoAccelerator, UnsupportedModel) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return None
    session = CompiledSession(model, _describe(model, text, "gpu", "gpu"), graph, None)
    log("Created TensorFlow Lite delegate for GPU.")
    how = "completely" if session.doc["fully_accelerated"] else "partially"
    log(f"Explicitly applied GPU delegate, and the model graph will be {how} executed by the delegate"
        + ("." if how == "completely" else " w/ 1 delegate kernels."))
    session.set_inputs(make_inputs(session.input_details()))
    return session


def make_inputs(details: list[dict]) -> list:
    import numpy as np

    rng = np.random.default_rng()
    out = []
    for d in details:
        shape = [int(s) if s > 0 else 1 for s in d["shape"]]
        dtype = np.dtype(d["dtype"])
        data = rng.standard_normal(shape) if dtype.kind == "f" else rng.integers(-128, 127, size=shape)
        out.append(data.astype(dtype))
    return out


def main(argv: list[str]) -> int:
    flags = dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)
    graph = flags.get("graph")
    log("STARTING!")
    log("Log parameter values verbosely: [0]")
    log(f"Min num runs: [{flags.get('num_runs', 50)}]")
    log(f"Graph: [{graph}]")
    if not graph or not os.path.isfile(graph):
        print(f"ERROR: File '{graph}' does not exist.", file=sys.stderr)
        print("ERROR: Benchmarking failed.", file=sys.stderr)
        return 1
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    log(f"Use gpu: [{int(flags.get('use_gpu') == 'true')}]")
    log(f"Loaded model {graph}")
    log(f"The input model file size (MB): {os.path.getsize(graph) / 1e6:g}")
    t0 = time.perf_counter_ns()
    if flags.get("use_gpu") == "true":
        interp = gpu_session(graph)  # LiteRT's real GPU accelerator prints its own lines (refused ops)
        if interp is None:
            print("ERROR: Failed to apply GPU delegate.", file=sys.stderr)
            print("ERROR: Benchmarking failed.", file=sys.stderr)
            return 1
    try:
        threads = int(flags.get("num_threads", -1))
        if flags.get("use_gpu") != "true":
            interp = Interpreter(model_path=graph, num_threads=threads if threads > 0 else None)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        for line in str(exc).splitlines():
            print(f"ERROR: {line}", file=sys.stderr)
        print("ERROR: Failed to construct interpreter", file=sys.stderr)
        print("ERROR: Benchmarking failed.", file=sys.stderr)
        return 1
    init_us = (time.perf_counter_ns() - t0) / 1000
    log(f"Initialized session in {init_us / 1000:g}ms.")
    if flags.get("use_gpu") != "true":
        details = interp.get_input_details()
        for d, data in zip(details, make_inputs(details), strict=True):
            interp.set_tensor(d["index"], data)
    rss_init = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    warm = run_for(interp, max(1, int(flags.get("warmup_runs", 1))), float(flags.get("warmup_min_secs", 0.5)),
                   "warmup")
    timed = run_for(interp, int(flags.get("num_runs", 50)), float(flags.get("min_secs", 1)), "timed")
    rss_end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    log(f"Inference timings in us: Init: {int(init_us)}, First inference: {int(warm[0])}, "
        f"Warmup (avg): {sum(warm) / len(warm):g}, Inference (avg): {sum(timed) / len(timed):g}")
    log("Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the "
        "actual memory footprint of the model at runtime. Take the information at your discretion.")
    log(f"Memory footprint delta from the start of the tool (MB): init={(rss_init - rss0) / 1024:g} "
        f"overall={(rss_end - rss0) / 1024:g}")
    log(f"Peak memory footprint (MB): init={rss_init / 1024:g} overall={rss_end / 1024:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
