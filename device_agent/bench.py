"""Measure one .tflite model with the local TFLite runtime and return a measurement document."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np

from . import memory, power, protocol, runtime, sysinfo
from .protocol import OFFLOADED, BenchSettings


def make_inputs(details: list[dict[str, Any]], seed: int) -> list[np.ndarray]:
    """Deterministic inputs for each input tensor: the same model gets the same bytes every time."""
    rng = np.random.default_rng(seed)
    arrays = []
    for d in details:
        shape = [int(s) if s > 0 else 1 for s in d["shape"]]
        dtype = np.dtype(d["dtype"])
        if dtype.kind == "f":
            arrays.append(rng.standard_normal(shape).astype(dtype))
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            arrays.append(rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype))
        elif dtype == np.bool_:
            arrays.append(rng.integers(0, 2, size=shape).astype(np.bool_))
        else:
            raise ValueError(f"cannot generate input of dtype {dtype} for tensor {d['name']!r}")
    return arrays


MAX_GIVEN = 16  # of the user's samples, at most this many are compared between accelerator and CPU


def given_inputs(path: str, details: list[dict[str, Any]]) -> list[list[np.ndarray]]:
    """The user's samples from an .npz (``names``: the input tensor names; ``input_i``: input i's samples,
    batch first, already in its shape and type), each a list with one array per input of ``details``.

    Raises:
        ValueError: an input of the model has no samples in the file, or the samples do not fit its shape.
    """
    with np.load(path, allow_pickle=False) as npz:
        names = [str(n) for n in npz["names"]]
        arrays = {name: npz[f"input_{i}"] for i, name in enumerate(names)}
    missing = [d["name"] for d in details if d["name"] not in arrays]
    if missing:
        raise ValueError(f"the inputs file has no samples for {', '.join(missing)} (it has {', '.join(names)})")
    count = min(len(arrays[d["name"]]) for d in details)
    samples = []
    for j in range(min(count, MAX_GIVEN)):
        sample = []
        for d in details:
            shape = [int(s) if s > 0 else 1 for s in d["shape"]]
            value = arrays[d["name"]][j:j + 1]
            if value.size != int(np.prod(shape)):
                raise ValueError(f"a sample of {d['name']} has {value.size} values; the input takes {shape}")
            sample.append(np.ascontiguousarray(value.reshape(shape).astype(np.dtype(d["dtype"]))))
        samples.append(sample)
    return samples


def _stats(times_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(times_ms, dtype=np.float64)
    mean = float(arr.mean())
    median = float(np.median(arr))
    return {
        "mean_ms": mean,
        "p50_ms": float(np.percentile(arr, 50)),
        "p90_ms": float(np.percentile(arr, 90)),
        "p99_ms": float(np.percentile(arr, 99)),
        "min_ms": float(arr.min()),
        "max_ms": float(arr.max()),
        "std_ms": float(arr.std()),
        "cv": float(arr.std() / mean) if mean > 0 else 0.0,
        # Median absolute deviation, scaled to match std for normal data: rare outliers (an
        # interrupt, a page fault) do not make it look unstable, throttling does.
        "robust_cv": float(1.4826 * np.median(np.abs(arr - median)) / median) if median > 0 else 0.0,
        "runs": len(times_ms),
    }


MAX_SAMPLES = 2_000_000
MIN_WINDOW = 10        # runs per window at the least
SPEED_CHANGE = 0.10    # window medians further apart than this: the device changed speed while measuring


def _timed_runs(session: Any, settings: BenchSettings) -> list[float]:
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < settings.runs or (time.perf_counter() - start) < settings.min_time_s:
        t0 = time.perf_counter_ns()
        session.invoke()
        times.append((time.perf_counter_ns() - t0) / 1e6)
        if len(times) >= MAX_SAMPLES:  # bounds memory; min_time_s still spans seconds of a fast model
            break
    return times


def quietest(times: list[float], windows: int) -> tuple[list[float], list[float]]:
    """The runs to report, and the median of each window of consecutive runs.

    On a shared machine the device's speed changes for tenths of a second to seconds at a time (a
    neighbour on the same core, a frequency change, throttling): every run of such a stretch is slower
    by the same factor, which run-to-run variation alone cannot tell apart. The timed runs are split
    into ``windows`` consecutive windows (each of at least MIN_WINDOW runs); when their medians differ by
    more than SPEED_CHANGE, the window with the lowest median is the one reported. Otherwise every run is.
    """
    count = max(1, min(windows, len(times) // MIN_WINDOW))
    size = len(times) / count
    parts = [times[round(i * size):round((i + 1) * size)] for i in range(count)]
    medians = [float(np.median(part)) for part in parts]
    if count > 1 and max(medians) > (1 + SPEED_CHANGE) * min(medians):
        return parts[medians.index(min(medians))], medians
    return times, medians


FIDELITY_INPUTS = 4  # seeded input draws on which an accelerator's outputs are checked against the CPU's


def sqnr_db(reference: np.ndarray, got: np.ndarray) -> float | None:
    """Signal to quantization-noise ratio of ``got`` against ``reference`` in dB (None: identical)."""
    ref, out = reference.astype(np.float64), got.astype(np.float64)
    noise = float(np.sum((out - ref) ** 2))
    if noise == 0.0:
        return None
    return float(10.0 * np.log10(max(float(np.sum(ref ** 2)), 1e-30) / noise))


def _lowest(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def fidelity(session: Any, seed: int, given: list[list[np.ndarray]] | None = None) -> dict[str, Any] | None:
    """An accelerator's outputs against the CPU's on the same inputs (GPUs compute in fp16), on the
    user's samples (``given``) or on ``FIDELITY_INPUTS`` generated input draws: ``sqnr_db``, the SQNR of
    each output over all the samples together (its worst output), ``worst_sample_sqnr_db``, that of the
    worst single sample and output, and the largest absolute difference."""
    twin = session.cpu_twin()
    if twin is None:
        return None
    draws = given or [make_inputs(session.input_details(), seed + 7919 * (draw + 1)) for draw in range(FIDELITY_INPUTS)]
    got: list[list[np.ndarray]] = []
    want: list[list[np.ndarray]] = []
    for arrays in draws:
        session.set_inputs(arrays)
        session.invoke()
        twin.set_inputs(arrays)
        twin.invoke()
        got.append([o.astype(np.float64) for o in session.outputs()])
        want.append([o.astype(np.float64) for o in twin.outputs()])
    outputs = range(len(want[0]))
    pooled = _lowest([sqnr_db(np.stack([w[k] for w in want]), np.stack([g[k] for g in got])) for k in outputs])
    single = _lowest([sqnr_db(w[k], g[k]) for w, g in zip(want, got) for k in outputs])
    largest = max((float(np.max(np.abs(g[k] - w[k]), initial=0.0)) for w, g in zip(want, got) for k in outputs),
                  default=0.0)
    return {"reference": "cpu", "inputs": len(draws), "on": "given samples" if given else "generated inputs",
            "sqnr_db": pooled, "worst_sample_sqnr_db": single, "identical": largest == 0.0, "max_abs_diff": largest}


def _accelerator_warnings(doc: dict[str, Any]) -> list[str]:
    out = []
    used = str(doc.get("used") or "cpu").upper()
    if doc.get("fully_accelerated") is False:
        ops = ", ".join(doc.get("fallback_ops") or []) or "operators it did not name"
        out.append(f"not fully accelerated: {ops} ran on the CPU beside the {used}"
                   + (f" ({doc['ops_on_cpu']} of {doc['ops_on_cpu'] + doc['ops_on_accelerator']} operations)"
                      if doc.get("ops_on_cpu") is not None and doc.get("ops_on_accelerator") is not None else ""))
    adapter = doc.get("adapter") or {}
    if adapter.get("software"):
        out.append(f"software GPU ({adapter.get('name')}): these timings are a CPU emulating a GPU, not GPU speed")
    if doc.get("note"):
        out.append(str(doc["note"]))
    return out


def _power(settings: BenchSettings, session: Any) -> dict[str, Any]:
    """Energy per inference in a phase of its own, after the latency runs, so sampling never
    perturbs the latency figures."""
    if not settings.power:
        return {"source": None, "reason": "skipped (--no-power)"}
    source, note = power.discover(settings.power_cmd)
    if source is None:
        return {"source": None, "reason": note}
    return power.measure(source, session.invoke)


def run(model_path: str, settings: BenchSettings, runtime_name: str | None = None) -> dict[str, Any]:
    """Benchmark ``model_path`` and return a document of schema ``edgesdk.measurement/1``."""
    with open(model_path, "rb") as fh:
        model_bytes = fh.read()
    found = runtime.load(runtime_name)
    name, version = found.name, found.version
    warnings: list[str] = []
    started_at = time.time()

    peak_reset = memory.reset_peak()
    rss_before = memory.rss_bytes()
    t0 = time.perf_counter_ns()
    session = found.open(model_path, settings.threads, settings.delegate, settings.accelerator)
    init_ms = (time.perf_counter_ns() - t0) / 1e6

    given = given_inputs(settings.inputs, session.input_details()) if settings.inputs else None
    session.set_inputs(given[0] if given else make_inputs(session.input_details(), settings.seed))
    t0 = time.perf_counter_ns()
    session.invoke()
    first_ms = (time.perf_counter_ns() - t0) / 1e6
    checksum = hashlib.sha256()
    for output in session.outputs():
        checksum.update(np.ascontiguousarray(output).tobytes())

    for _ in range(settings.warmup):
        session.invoke()
    times, medians = quietest(_timed_runs(session, settings), settings.windows)
    attempts = 1
    # High variation usually means throttling or a noisy neighbour: measure again, keep the steadiest.
    while _stats(times)["robust_cv"] > settings.max_cv and attempts <= settings.retries:
        again, again_medians = quietest(_timed_runs(session, settings), settings.windows)
        attempts += 1
        if _stats(again)["robust_cv"] < _stats(times)["robust_cv"]:
            times, medians = again, again_medians
    latency: dict[str, Any] = _stats(times)
    if latency["robust_cv"] > settings.max_cv:
        warnings.append(f"high run-to-run variation: robust cv {latency['robust_cv']:.2f} > {settings.max_cv} "
                        f"after {attempts} attempts (throttling or background load?)")
    if max(medians) > (1 + SPEED_CHANGE) * min(medians):
        warnings.append(f"the device changed speed while measuring: medians of {len(medians)} windows of runs "
                        f"from {min(medians):.4g} to {max(medians):.4g} ms (another process, a noisy neighbour, "
                        f"throttling?); the figures are of the quietest window, {latency['runs']} runs")
    latency.update(warmup_runs=settings.warmup, first_inference_ms=first_ms, init_ms=init_ms,
                   attempts=attempts, window_p50_ms=medians)
    peak = memory.peak_rss_bytes()
    accelerator = session.accelerator()
    accelerator["fidelity"] = fidelity(session, settings.seed, given)
    warnings += _accelerator_warnings(accelerator)
    device = sysinfo.describe()
    adapter = accelerator.get("adapter")
    if adapter:  # the GPU that ran it belongs to the device's description (not to its fingerprint: `info` has none)
        device["gpu"] = f"{adapter['name']} ({adapter['vendor']}, {adapter['backend']}, " \
                        f"{'software' if adapter['software'] else 'hardware'})"
    if device.get("emulated"):
        warnings.append(f"emulated device ({device['emulated']}): these timings are emulation, not the speed of "
                        f"a real {device['machine']} CPU")
    power_doc = _power(settings, session)
    if not peak_reset:
        warnings.append("peak RSS could not be reset before loading: the increase includes earlier peaks")

    return protocol.measurement(
        model_sha256=hashlib.sha256(model_bytes).hexdigest(), runtime={"name": name, "version": version},
        delegate=settings.delegate or (f"litert-{accelerator['used']}" if accelerator["used"] in OFFLOADED
                                       else "xnnpack" if name == "ai_edge_litert" else "default"),
        accelerator=accelerator, settings=settings, device=device, latency=latency,
        memory={"peak_rss_bytes": peak, "peak_rss_increase_bytes": max(0, peak - rss_before),
                "model_bytes": len(model_bytes)},
        power=power_doc, output_checksum=checksum.hexdigest(),
        inputs={"source": "given", "samples": len(given)} if given else {"source": "generated", "seed": settings.seed},
        warnings=warnings, started_at=started_at)
