"""One trial of a tune: compress a candidate, check it against the limits, then measure it (or estimate it).

The profile's precision, operator and memory rules refuse a candidate before any device time; so do
``--max-memory`` (weights held in RAM plus peak activations, or an MCU's arena), with a calibrated
predictor a latency far over ``--max-latency-ms``, and with ``--require-full-acceleration`` operators the
profile predicts its accelerator leaves to the CPU.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from device_agent.protocol import OFFLOADED, typical_ms

from ..errors import RecipeError
from ..kinds import TrialStatus
from ..profiles import Profile
from . import space as spacemod
from .objectives import Constraints
from .row import TrialRow

ORIGINAL = "original"   # the recipe name of the baseline row: the model as the user gave it
_MEASURED = ("latency_ms", "estimated", "latency", "measured_memory", "energy_mj", "energy_estimated",
             "measurement_key", "cached", "device", "runtime", "accelerator", "measured_on", "window", "violations")


@dataclass
class CandidateRunner:
    """What every trial of one tune shares: the model, the data, the limits, the predictor, the store."""

    source: Path
    profile: Profile
    outdir: Path
    data: Any
    train_data: Any
    constraints: Constraints
    predictor: Any
    settings: Any
    store: Any
    epochs: int
    seed: int
    trust_model_code: bool = False
    host_lock: threading.Lock = field(default_factory=threading.Lock)  # TensorFlow runs one compression at a time
    new_measurements: int = 0
    _count_lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, cand: spacemod.Candidate, device: str | None) -> TrialRow:
        """The row of one candidate: status ``measured`` (on ``device``), ``estimated`` (no device: the
        predictor's latency) or ``rejected`` (with the reason and the stage that refused it); its number,
        recipe and params are the caller's to add."""
        from ..compress import compress
        from ..tflite.facts import analyze

        path = self.outdir / "candidates" / f"{cand.slug}.tflite"
        with self.host_lock:
            try:
                result = compress(self.source, self.profile, cand.recipe, path, self.data, train_data=self.train_data,
                                  epochs=self.epochs, seed=self.seed, store=self.store,
                                  trust_model_code=self.trust_model_code)
            except RecipeError as exc:  # the profile refuses it (precision, operators, memory): no device time
                return TrialRow(TrialStatus.REJECTED, reason=str(exc), stage="compress")
            report = analyze(path)
        prof, limits = self.profile, self.constraints
        memory = (report.weight_bytes if prof.memory.weights_in_ram else 0) + report.peak_activation_bytes
        predicted = self.predictor.predict_ms(report, prof)
        target = result.target or {}
        memory_what = "weights + peak activations"
        if target.get("ram_bytes") is not None:  # MCU/NPU: the real arena, and the target's own estimate
            memory, memory_what = target["ram_bytes"], f"{target['target']} RAM (arena)"
        if target.get("latency_ms") is not None:
            predicted = target["latency_ms"]
        fallback = None
        if self.settings is not None and self.settings.accelerator in OFFLOADED:
            from ..targets import gpu

            fallback = gpu.predicted_ops(report, prof)
        made = TrialRow(TrialStatus.REJECTED, predicted_fallback=fallback,
                        path=str(path), sha256=result.sha256, model_bytes=result.model_bytes,
                        gzip_bytes=result.gzip_bytes, weight_entropy_bytes=result.weight_entropy_bytes,
                        memory_bytes=memory, quality=result.quality, precision=result.precision,
                        warnings=result.warnings, predicted_ms=predicted,
                        predictor_calibrated=self.predictor.calibrated or target.get("latency_ms") is not None,
                        flash_bytes=target.get("flash_bytes"), target=target or None)
        if limits.max_memory_bytes is not None and memory > limits.max_memory_bytes:
            return replace(made, stage="memory",
                           reason=f"{memory_what} {memory:,} B > --max-memory {limits.max_memory_bytes:,} B")
        if limits.require_full_acceleration and fallback:
            return replace(made, stage="acceleration", reason=f"{', '.join(fallback)} would run on the CPU beside "
                           f"the {self.settings.accelerator.upper()} ({prof.name}'s operator set); not measured "
                           "(--require-full-acceleration)")
        if limits.max_latency_ms is not None and self.predictor.calibrated and device is not None and \
                predicted > 2 * limits.max_latency_ms:
            return replace(made, stage="predicted", reason=f"predicted p50 {predicted:.4g} ms (estimated) is over "
                           "twice --max-latency-ms; not measured")
        return self._latency(made, path, device, predicted, target)

    def baseline(self, content: bytes, device: str | None, done: list[dict[str, Any]]) -> TrialRow:
        """The original model as a row, measured (or estimated) like a candidate: the file as given (a
        .tflite) or its float conversion (a Keras model, a SavedModel), in OUTDIR/candidates/original.tflite.
        Its quality is the reference the candidates are compared with; a device that cannot run it is
        said in its reason, and the search goes on. A candidate of ``done`` with the same bytes (fp32 of a
        Keras model) lends its measurement: no second device run."""
        import gzip
        import hashlib

        from .. import targets
        from ..errors import EdgeSdkError
        from ..fileio import write_atomic
        from ..tflite.facts import analyze

        path = self.outdir / "candidates" / f"{ORIGINAL}.tflite"
        write_atomic(path, content)
        report = analyze(path)
        target: dict[str, Any] = {}
        if targets.applies(self.profile):
            with contextlib.suppress(EdgeSdkError):
                assessed = targets.assess(content, report, self.profile)
                target = assessed.to_dict() if assessed else {}
        memory = (report.weight_bytes if self.profile.memory.weights_in_ram else 0) + report.peak_activation_bytes
        predicted = target.get("latency_ms") or self.predictor.predict_ms(report, self.profile)
        made = TrialRow(TrialStatus.FAILED, recipe=ORIGINAL, path=str(path),
                        sha256=hashlib.sha256(content).hexdigest(), model_bytes=len(content),
                        gzip_bytes=len(gzip.compress(content, compresslevel=9, mtime=0)),
                        memory_bytes=target.get("ram_bytes") or memory, precision=report.precision,
                        predicted_ms=predicted, flash_bytes=target.get("flash_bytes"), target=target or None,
                        predictor_calibrated=self.predictor.calibrated or target.get("latency_ms") is not None)
        twin = next((r for r in done if r.get("sha256") == made.sha256 and r.get("latency_ms") is not None), None)
        if twin is not None:
            lent = {k: v for k, v in twin.items() if k in _MEASURED}
            return replace(made, **{**lent, "status": TrialStatus(twin["status"]), "reason": None})
        try:
            return self._latency(made, path, device, predicted, target)
        except EdgeSdkError as exc:
            return replace(made, reason=f"the original could not be measured: {exc}")

    def _latency(self, made: TrialRow, path: Path, device: str | None, predicted: float,
                 target: dict[str, Any]) -> TrialRow:
        """``made`` with its latency: measured on ``device``, or (no device) the prediction, flagged."""
        from ..measure import bench

        limits = self.constraints
        if device is None:  # no device: the calibrated (or roofline) prediction stands in, flagged
            row = replace(made, status=TrialStatus.ESTIMATED, latency_ms=predicted, estimated=True,
                          energy_mj=target.get("energy_mj"), cached=False, reason=None)
            return replace(row, violations=limits.violations(row.to_dict()))
        m = bench(path, device, self.settings, store=self.store)
        with self._count_lock:
            self.new_measurements += 0 if m.cached else 1
        doc = m.document
        power = doc.get("power") or {}
        lat = doc["latency"]
        row = replace(made, status=TrialStatus.MEASURED, latency_ms=typical_ms(lat), latency=lat,
                      measured_memory=doc["memory"], energy_mj=power.get("energy_per_inference_mj"),
                      energy_estimated=bool(power.get("estimated")), measurement_key=m.key, cached=m.cached,
                      device=doc["device"], runtime=doc["runtime"], measured_on=device,
                      accelerator=doc.get("accelerator"),
                      window=[doc.get("started_at"), doc.get("finished_at")], estimated=False, reason=None)
        return replace(row, violations=limits.violations(row.to_dict()))
