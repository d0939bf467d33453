"""Run a suite: compress each model x recipe once, then measure every cell on its device.

Devices work in parallel (one thread each) and each device runs one cell at a time. A device is
health-checked first (reachable, a TFLite runtime, not too hot, battery not low where readable) and
skipped with the reason when it fails; transport failures are retried with exponential back-off.
Cells are claimed in the store (see :mod:`edgesdk.suite.runs`), so several processes can serve one run.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_agent.protocol import BenchSettings, typical_ms

from .. import devices as devmod
from ..errors import DeployError, EdgeSdkError
from ..fileio import make_dirs, slug, write_atomic
from ..progress import Event, Progress
from ..quality import Quality
from ..store import Store
from . import runs
from .spec import DeviceEntry, Health, LoadedSuite, ModelEntry

MAX_BACKOFF_S = 600.0  # the longest wait between two attempts, however many doublings

log = logging.getLogger(__name__)
Say = Callable[[str, str], None]   # (device or "host", message): how the runner's parts report


def sayer(progress: Progress | None) -> Say:
    """The runner's (who, text) reporting over a progress callback (or the log without one)."""
    if progress is None:
        return lambda who, text: log.info("[%s] %s", who, text)
    return lambda who, text: progress(Event(text, who=who))


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


def _own_quality(path: Path, data: Path) -> dict[str, Any] | None:
    """Accuracy of a model given as .tflite on labelled data (nothing to compare it with otherwise)."""

    from .. import data as datamod
    from .. import evaluate
    from ..tflite import facts

    report = facts.analyze(str(path))
    dataset = datamod.load_npz(data)
    x = datamod.fit_to_input(dataset, list(report.inputs[0].shape), report.inputs[0].name)
    labels = datamod.labels_for(dataset, list(report.outputs[0].shape), report.outputs[0].name)
    if labels is None or not evaluate.looks_like_classifier(report, labels):
        return None
    share = evaluate.accuracy(evaluate.predict(path.read_bytes(), x), labels)
    return Quality("accuracy", len(x), before=share, after=share).to_dict()  # nothing to compare: before is after


def prepare(suite: LoadedSuite, entry: ModelEntry, recipe: str, outdir: Path) -> Artifact:
    """Compress one model with one recipe ("none": the model as given; a Keras model becomes fp32)."""
    from .. import intake
    from ..compress import compress

    art = Artifact(entry.label, recipe)
    try:
        source = suite.model_file(entry)
        data = suite.resolve(entry.data) if entry.data else None
        if data is not None and not data.is_file():
            raise EdgeSdkError(f"{suite.path}: model {entry.label!r}: data {entry.data!r} does not exist")
        if recipe == "none" and intake.MODEL_FORMATS[intake.identify(source).format].deployable:
            art.path = source
            art.quality = _own_quality(source, data) if data else None
        else:
            out = outdir / "artifacts" / slug(entry.label) / f"{slug(recipe)}.tflite"
            make_dirs(out.parent)
            result = compress(source, suite.spec.profile, "fp32" if recipe == "none" else recipe, out, data,
                              trust_model_code=entry.trust_code)
            art.path, art.quality, art.warnings = out, result.quality, list(result.warnings)
        ident = intake.identify(art.path)
        art.sha256, art.bytes = ident.sha256, art.path.stat().st_size
    except EdgeSdkError as exc:
        art.error = str(exc)
    return art


def health(url: str, limits: Health, store: Store, progress: Say, name: str) -> str | None:
    """None when the device may be used, else why not. Unreachable devices are retried with back-off."""
    for attempt in range(limits.retries + 1):
        check = devmod.check(url, store)
        if check.reachable and check.error is None:
            break
        if attempt < limits.retries:
            wait = min(limits.backoff_s * 2 ** min(attempt, 32), MAX_BACKOFF_S)
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
    """The suite's bench settings; without ``bench.accelerator``, its profile's (mobile-gpu: gpu)."""
    from ..measure import with_accelerator
    from ..profiles import load_profile

    return with_accelerator(suite.spec.bench.settings(), load_profile(suite.spec.profile))


def _measure(art: Artifact, url: str, suite: LoadedSuite, store: Store, progress: Say,
             name: str, settings: BenchSettings | None = None) -> tuple[str, dict[str, Any]]:
    """(status, result) of one cell: the measurement, or why there is none (``settings``: the suite's
    unless given)."""
    from ..measure import bench

    result: dict[str, Any] = {"artifact": art.to_dict(), "quality": art.quality, "warnings": list(art.warnings)}
    if art.error is not None:
        return "failed", {**result, "reason": f"compress failed: {art.error}", "stage": "compress"}
    assert art.path is not None
    limits, transient = suite.spec.health, []
    for attempt in range(limits.retries + 1):
        try:
            m = bench(art.path, url, settings or settings_for(suite), store=store, fresh=True,
                      timeout_s=suite.spec.bench.timeout_s)
        except DeployError as exc:  # the transport failed: worth another try
            transient.append(str(exc))
            if attempt < limits.retries:
                wait = min(limits.backoff_s * 2 ** min(attempt, 32), MAX_BACKOFF_S)
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
           artifacts: dict[tuple[str, str], Artifact], progress: Say) -> dict[str, int]:
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
    total = sum(len(suite.spec.recipes_of(m)) for m in suite.spec.models)
    while (cell := runs.claim(store, run_id, device.name, worker, lease)) is not None:
        model, recipe, _ = cell.split("|")
        art = artifacts[(model, recipe)]
        status, result = _measure(art, url, suite, store, progress, device.name)
        runs.finish(store, run_id, cell, worker, status, result)
        counts[status] += 1
        done = counts["passed"] + counts["failed"]
        if status == "passed":
            typical = typical_ms(result["measurement"]["latency"])
            progress(device.name, f"{done}/{total} {model} · {recipe}: p50 {typical:.3f} ms")
        else:
            progress(device.name, f"{done}/{total} {model} · {recipe}: FAILED {result['reason']}")
    return counts


CONFIRMATIONS = 2    # re-measurements of a cell that fails only the latency gate, without its baseline's model
PAIRED_ROUNDS = 3    # baseline / this run measured alternately, this many times each
MAX_KEPT_BYTES = 256 * 2**20   # model files up to this size are kept in the store for later paired checks
CELL_COLUMNS = ("cell", "model", "recipe", "device", "status", "worker", "claims", "finished_at")


def keep_artifact(art: Artifact, store: Store) -> None:
    """Keep the model file in the store by content, so a later run on any host can measure it again."""
    if art.path is not None and art.sha256 is not None and art.bytes is not None and art.bytes <= MAX_KEPT_BYTES:
        store.add_artifact(art.sha256, art.path.read_bytes())


def baseline_model(cell: dict[str, Any], store: Store, folder: Path) -> Path | None:
    """The baseline cell's model file: where it was made, if unchanged there, or from the store."""
    from .. import intake

    info = cell.get("artifact") or {}
    sha, where = info.get("sha256"), info.get("path")
    if not sha:
        return None
    if where and Path(where).is_file():
        try:
            if intake.identify(where).sha256 == sha:
                return Path(where)
        except EdgeSdkError:
            pass
    data = store.get_artifact(sha)
    if data is None:
        return None
    path = folder / f"{sha[:16]}.tflite"
    write_atomic(path, data)
    return path


def _settings_of(measurement: dict[str, Any]) -> BenchSettings:
    known = set(BenchSettings.__dataclass_fields__)
    return BenchSettings(**{k: v for k, v in (measurement.get("settings") or {}).items() if k in known})


def _paired(base: Artifact, base_settings: BenchSettings, art: Artifact, url: str, suite: LoadedSuite,
            store: Store, report: Say, name: str) -> list[dict[str, float]] | None:
    """PAIRED_ROUNDS rounds of the baseline's model and this run's, measured one after the other (the
    order alternating, so a steady drift favours neither): each round's two p50s, or None when a
    measurement failed."""
    from .gates import p50

    sides = {"baseline_p50_ms": (base, base_settings), "p50_ms": (art, settings_for(suite))}
    rounds = []
    for i in range(PAIRED_ROUNDS):
        got: dict[str, float] = {}
        for key in sides if i % 2 == 0 else reversed(sides):
            model, settings = sides[key]
            status, result = _measure(model, url, suite, store, report, name, settings)
            if status != "passed":
                report(name, f"{art.model} · {art.recipe}: paired measurement failed: {result.get('reason')}")
                return None
            got[key] = p50(result["measurement"])
        rounds.append(got)
    return rounds


def confirm(suite: LoadedSuite, store: Store, run: dict[str, Any], comparison: Any, baseline: dict[str, Any],
            history: list[dict[str, Any]], artifacts: dict[tuple[str, str], Artifact], outdir: Path,
            progress: Progress | None = None) -> bool:
    """Measure again each cell this process measured whose p50 rose beyond the gate, over the baseline
    or over the cell's median p50 in earlier runs (a baseline measured in a slow spell hides a real
    rise), within the noise or not, with nothing else failing.

    With the baseline's model at hand (its folder or the store), both models are measured alternately
    on the device and the pair decides (``paired`` in the cell). Otherwise a cell failing the latency
    gate is measured again alone, up to CONFIRMATIONS times; a re-measurement within the gates replaces
    the first one (kept as ``unconfirmed_p50_ms``). True when some cell changed."""
    from .gates import Gate, Verdict, cell_history, compare_cell, earlier_runs, p50, paired_result

    report = sayer(progress)
    cells, old = {c["cell"]: c for c in run["cells"]}, {c["cell"]: c for c in baseline["cells"]}
    urls = {d.name: d.url for d in suite.spec.devices}
    worker, changed = runs.worker_id(), False
    earlier = earlier_runs(history, baseline, run["run_id"])
    gate = comparison.gates.max_latency_increase
    for verdict in comparison.cells:
        cell = cells.get(verdict.cell)
        if cell is None or cell["worker"] != worker or \
                verdict.verdict not in (Verdict.OK, Verdict.REGRESSION, Verdict.WITHIN_NOISE) \
                or verdict.paired or set(verdict.exceeded) - {Gate.LATENCY} or verdict.latency_change is None:
            continue
        # A slow baseline hides a slower cell: judge the rise against the cell's usual speed too.
        usual = statistics.median(cell_history(earlier, verdict.cell) or [p50(old[verdict.cell]["measurement"])])
        rise = p50(cell["measurement"]) / min(p50(old[verdict.cell]["measurement"]), usual) - 1
        if rise <= gate:
            continue
        url = urls[cell["device"]] or devmod.resolve(cell["device"], store)
        art = artifacts[(cell["model"], cell["recipe"])]
        kept = {k: v for k, v in cell.items() if k not in CELL_COLUMNS}
        what = f"{cell['model']} · {cell['recipe']}"
        base_path = baseline_model(old[verdict.cell], store, outdir / "baseline-models")
        if base_path is not None:
            report(cell["device"], f"{what}: p50 {verdict.latency_change:+.1%} over the baseline; measuring the "
                                   f"baseline's model and this one alternately ({PAIRED_ROUNDS} rounds)")
            before = old[verdict.cell]
            base = Artifact(cell["model"], cell["recipe"], path=base_path, sha256=before["artifact"]["sha256"])
            rounds = _paired(base, _settings_of(before["measurement"]), art, url, suite, store, report, cell["device"])
            if rounds is not None:
                change, spread = paired_result(rounds)
                runs.finish(store, run["run_id"], verdict.cell, worker, "passed",
                            {**kept, "paired": {"baseline_run": baseline["run_id"], "rounds": rounds,
                                                 "change": change, "noise": spread}})
                report(cell["device"], f"{what}: paired p50 {change:+.1%} (±{spread:.1%}) over the baseline's model")
                changed = True
                continue
        if verdict.verdict != Verdict.REGRESSION:
            continue
        seen = [p50(cell["measurement"])]
        for attempt in range(1, CONFIRMATIONS + 1):
            report(cell["device"], f"{what}: p50 {verdict.latency_change:+.1%} over the baseline; measuring again "
                                   f"to confirm ({attempt}/{CONFIRMATIONS})")
            status, result = _measure(art, url, suite, store, report, cell["device"])
            if status != "passed":
                break
            again = compare_cell(old[verdict.cell], {**cell, **result}, comparison.gates,
                                 cell_history(earlier, verdict.cell))
            if again.verdict != Verdict.REGRESSION:
                result["unconfirmed_p50_ms"] = seen
                runs.finish(store, run["run_id"], verdict.cell, worker, "passed", result)
                report(cell["device"], f"{what}: not reproduced (p50 {p50(result['measurement']):.4g} ms, "
                                       f"{again.verdict})")
                changed = True
                break
            seen.append(p50(result["measurement"]))
        else:
            report(cell["device"], f"{what}: slower in {len(seen)} measurements of {len(seen)}: "
                                   f"{', '.join(f'{v:.4g}' for v in seen)} ms")
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

    report = sayer(progress)
    names = [d.name for d in suite.spec.devices]
    unknown = [n for n in serve or [] if n not in names]
    if unknown:
        raise SuiteError(f"--devices names {unknown[0]!r}, which suite {suite.spec.name!r} does not have; "
                         f"its devices: {', '.join(names)}")
    mine = [d for d in suite.spec.devices if not serve or d.name in serve]
    artifacts: dict[tuple[str, str], Artifact] = {}
    pairs = [(m, r) for m in suite.spec.models for r in suite.spec.recipes_of(m)]
    for i, (entry, recipe) in enumerate(pairs, 1):
        report("host", f"preparing {i}/{len(pairs)}: {entry.label} · {recipe}")
        art = prepare(suite, entry, recipe, outdir)
        if art.error:
            report("host", f"{entry.label} · {recipe}: {art.error}")
        else:
            keep_artifact(art, store)
        artifacts[(entry.label, recipe)] = art
    with ThreadPoolExecutor(max_workers=len(mine), thread_name_prefix="edgesdk-device") as pool:
        futures = {d.name: pool.submit(_serve, d, suite, store, run_id, artifacts, report) for d in mine}
        return {name: future.result() for name, future in futures.items()}, artifacts
