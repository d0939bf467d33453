"""Run a suite: compress each model x recipe once, then measure every cell on its device.

Devices work in parallel (one thread each) and each device runs one cell at a time. A device is
health-checked first (reachable, a TFLite runtime, not too hot, battery not low where readable) and
skipped with the reason when it fails; transport failures are retried with exponential back-off.
Cells are claimed in the store (see :mod:`edgesdk.suite.runs`), so several processes can serve one run.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_agent.protocol import BenchSettings

from .. import devices as devmod
from ..errors import DeployError, EdgeSdkError
from ..store import Store
from . import runs
from .spec import DeviceEntry, Health, LoadedSuite, ModelEntry

log = logging.getLogger(__name__)
Progress = Callable[[str, str], None]   # (device or "host", message)


@dataclass
class Artifact:
    """What one model x recipe became on this host: a .tflite and its quality, or why it failed."""

    model: str
    recipe: str
    path: Path | None = None
    sha256: str | None = None
    bytes: int | None = None
    quality: dict[str, Any] | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path) if self.path else None, "sha256": self.sha256, "bytes": self.bytes}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "none"


def _own_quality(path: Path, data: Path) -> dict[str, Any] | None:
    """Accuracy of a model given as .tflite on labelled data (nothing to compare it with otherwise)."""
    import numpy as np

    from .. import data as datamod
    from .. import evaluate, inspect

    report = inspect.analyze(str(path))
    dataset = datamod.load_npz(data)
    x = datamod.fit_to_input(dataset, list(report.inputs[0].shape), report.inputs[0].name)
    got = evaluate.predict(path.read_bytes(), x)
    if dataset.y is None or not evaluate.looks_like_classifier(report, dataset.y):
        return None
    accuracy = float(np.mean(got.argmax(axis=1) == dataset.y.reshape(-1)))
    return {"metric": "accuracy", "samples": len(x), "before": accuracy, "after": accuracy}


def prepare(suite: LoadedSuite, entry: ModelEntry, recipe: str, outdir: Path) -> Artifact:
    """Compress one model with one recipe ("none": the model as given; a Keras model becomes fp32)."""
    from .. import models
    from ..compress import compress

    art = Artifact(entry.label, recipe)
    try:
        source = suite.model_file(entry)
        data = suite.resolve(entry.data) if entry.data else None
        if data is not None and not data.is_file():
            raise EdgeSdkError(f"{suite.path}: model {entry.label!r}: data {entry.data!r} does not exist")
        if recipe == "none" and models.identify(source).format == "tflite":
            art.path = source
            art.quality = _own_quality(source, data) if data else None
        else:
            out = outdir / "artifacts" / _slug(entry.label) / f"{_slug(recipe)}.tflite"
            out.parent.mkdir(parents=True, exist_ok=True)
            result = compress(source, suite.spec.profile, "fp32" if recipe == "none" else recipe, out, data)
            art.path, art.quality, art.warnings = out, result.quality, list(result.warnings)
        ident = models.identify(art.path)
        art.sha256, art.bytes = ident.sha256, art.path.stat().st_size
    except EdgeSdkError as exc:
        art.error = str(exc)
    return art


def health(url: str, limits: Health, store: Store, progress: Progress, name: str) -> str | None:
    """None when the device may be used, else why not. Unreachable devices are retried with back-off."""
    for attempt in range(limits.retries + 1):
        check = devmod.check(url, store)
        if check.reachable and check.error is None:
            break
        if attempt < limits.retries:
            wait = limits.backoff_s * 2 ** attempt
            progress(name, f"not reachable ({check.error}); trying again in {wait:g} s")
            time.sleep(wait)
    else:
        return f"unreachable after {limits.retries + 1} attempts: {check.error}"
    if check.runtime is None:
        return f"no TFLite runtime: {check.runtime_error or 'none found'}"
    info = check.description or {}
    temp = info.get("temperature_c")
    if isinstance(temp, (int, float)) and temp > limits.max_temperature_c:
        return f"too hot: {temp:.0f} °C > {limits.max_temperature_c:g} °C"
    battery = info.get("battery_percent")
    if isinstance(battery, (int, float)) and battery < limits.min_battery_percent and \
            info.get("battery_status") != "Charging":
        return f"battery low: {battery:.0f} % < {limits.min_battery_percent:g} % and not charging"
    return None


def settings_for(suite: LoadedSuite) -> BenchSettings:
    b = suite.spec.bench
    return BenchSettings(runs=b.runs, warmup=b.warmup, min_time_s=b.min_time_s, threads=b.threads,
                         windows=b.windows, power=b.power, delegate=None if b.delegate == "default" else b.delegate)


def _measure(art: Artifact, url: str, suite: LoadedSuite, store: Store, progress: Progress,
             name: str) -> tuple[str, dict[str, Any]]:
    """(status, result) of one cell: the measurement, or why there is none."""
    from ..measure import bench

    result: dict[str, Any] = {"artifact": art.to_dict(), "quality": art.quality, "warnings": list(art.warnings)}
    if art.error is not None:
        return "failed", {**result, "reason": f"compress failed: {art.error}"}
    assert art.path is not None
    limits, transient = suite.spec.health, []
    for attempt in range(limits.retries + 1):
        try:
            m = bench(art.path, url, settings_for(suite), store=store, fresh=True, timeout_s=suite.spec.bench.timeout_s)
        except DeployError as exc:  # the transport failed: worth another try
            transient.append(str(exc))
            if attempt < limits.retries:
                wait = limits.backoff_s * 2 ** attempt
                progress(name, f"{art.model} · {art.recipe}: {exc}; trying again in {wait:g} s")
                time.sleep(wait)
            continue
        except EdgeSdkError as exc:  # the device answered: it cannot run this model
            return "failed", {**result, "reason": str(exc), "transient_errors": transient}
        doc = m.document
        result.update(measurement=doc, transient_errors=transient, warnings=result["warnings"] + doc["warnings"])
        return "passed", result
    return "failed", {**result, "reason": f"transport failed {len(transient)} times: {transient[-1]}",
                      "transient_errors": transient}


def _serve(device: DeviceEntry, suite: LoadedSuite, store: Store, run_id: str,
           artifacts: dict[tuple[str, str], Artifact], progress: Progress) -> dict[str, int]:
    """One device's loop: health check, then claim and measure cells until none is left."""
    worker = runs.worker_id()
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    try:
        url = device.url or devmod.resolve(device.name, store)
        devmod.validate_url(url)
        reason = health(url, suite.spec.health, store, progress, device.name)
    except EdgeSdkError as exc:
        reason = str(exc)
    if reason is not None:
        counts["skipped"] = runs.skip_device(store, run_id, device.name, worker, reason)
        progress(device.name, f"skipped: {reason}")
        return counts
    lease = suite.spec.bench.timeout_s * (suite.spec.health.retries + 2)
    total = len(suite.spec.models) * len(suite.spec.recipes)
    while (cell := runs.claim(store, run_id, device.name, worker, lease)) is not None:
        model, recipe, _ = cell.split("|")
        art = artifacts[(model, recipe)]
        status, result = _measure(art, url, suite, store, progress, device.name)
        runs.finish(store, run_id, cell, worker, status, result)
        counts[status] += 1
        done = counts["passed"] + counts["failed"]
        if status == "passed":
            lat = result["measurement"]["latency"]
            p50 = lat["p50_ms"] if lat["p50_ms"] is not None else lat["mean_ms"]
            progress(device.name, f"{done}/{total} {model} · {recipe}: p50 {p50:.3f} ms")
        else:
            progress(device.name, f"{done}/{total} {model} · {recipe}: FAILED {result['reason']}")
    return counts


CONFIRMATIONS = 2   # re-measurements of a cell that fails only the latency gate


def confirm(suite: LoadedSuite, store: Store, run: dict[str, Any], comparison: Any, baseline: dict[str, Any],
            history: list[dict[str, Any]], artifacts: dict[tuple[str, str], Artifact],
            progress: Progress | None = None) -> bool:
    """Measure again each cell this process measured that fails the gates on latency alone; a
    re-measurement within the gates replaces the first one (kept as ``unconfirmed_p50_ms``). True when
    some cell changed."""
    from .gates import cell_history, compare_cell, p50

    report: Progress = progress or (lambda who, text: log.info("[%s] %s", who, text))
    cells, old = {c["cell"]: c for c in run["cells"]}, {c["cell"]: c for c in baseline["cells"]}
    urls = {d.name: d.url for d in suite.spec.devices}
    worker, changed = runs.worker_id(), False
    earlier = [r for r in history if r["run_id"] != run["run_id"]] + [baseline]
    for verdict in comparison.failures:
        cell = cells[verdict.cell]
        if verdict.verdict != "regression" or cell["worker"] != worker or \
                not all(r.startswith("p50 ") for r in verdict.reasons):
            continue
        url = urls[cell["device"]] or devmod.resolve(cell["device"], store)
        seen = [p50(cell["measurement"])]
        for attempt in range(1, CONFIRMATIONS + 1):
            report(cell["device"], f"{cell['model']} · {cell['recipe']}: p50 {verdict.latency_change:+.1%} over the "
                                   f"baseline; measuring again to confirm ({attempt}/{CONFIRMATIONS})")
            status, result = _measure(artifacts[(cell["model"], cell["recipe"])], url, suite, store, report,
                                      cell["device"])
            if status != "passed":
                break
            again = compare_cell(old[verdict.cell], {**cell, **result}, comparison.gates,
                                 cell_history(earlier, verdict.cell))
            if again.verdict != "regression":
                result["unconfirmed_p50_ms"] = seen
                runs.finish(store, run["run_id"], verdict.cell, worker, "passed", result)
                report(cell["device"], f"{cell['model']} · {cell['recipe']}: not reproduced "
                                       f"(p50 {p50(result['measurement']):.4g} ms, {again.verdict})")
                changed = True
                break
            seen.append(p50(result["measurement"]))
        else:
            report(cell["device"], f"{cell['model']} · {cell['recipe']}: slower in {len(seen)} measurements of "
                                   f"{len(seen)}: {', '.join(f'{v:.4g}' for v in seen)} ms")
    return changed


def execute(suite: LoadedSuite, store: Store, run_id: str, outdir: Path, *, serve: list[str] | None = None,
            progress: Progress | None = None) -> tuple[dict[str, dict[str, int]], dict[tuple[str, str], Artifact]]:
    """Prepare the artifacts and measure the cells of the devices this process serves.

    Returns:
        per device, how many cells this process passed, failed and skipped; and the artifacts.

    Raises:
        SuiteError: ``serve`` names a device the suite does not have.
    """
    from ..errors import SuiteError

    report: Progress = progress or (lambda who, text: log.info("[%s] %s", who, text))
    names = [d.name for d in suite.spec.devices]
    unknown = [n for n in serve or [] if n not in names]
    if unknown:
        raise SuiteError(f"--devices names {unknown[0]!r}, which suite {suite.spec.name!r} does not have; "
                         f"its devices: {', '.join(names)}")
    mine = [d for d in suite.spec.devices if not serve or d.name in serve]
    artifacts: dict[tuple[str, str], Artifact] = {}
    pairs = [(m, r) for m in suite.spec.models for r in suite.spec.recipes]
    for i, (entry, recipe) in enumerate(pairs, 1):
        report("host", f"preparing {i}/{len(pairs)}: {entry.label} · {recipe}")
        art = prepare(suite, entry, recipe, outdir)
        if art.error:
            report("host", f"{entry.label} · {recipe}: {art.error}")
        artifacts[(entry.label, recipe)] = art
    with ThreadPoolExecutor(max_workers=len(mine), thread_name_prefix="edgesdk-device") as pool:
        futures = {d.name: pool.submit(_serve, d, suite, store, run_id, artifacts, report) for d in mine}
        return {name: future.result() for name, future in futures.items()}, artifacts
