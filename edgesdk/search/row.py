"""One trial's result as a typed row: what tune keeps in the study, results.json and the report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..kinds import TrialStatus


@dataclass(frozen=True)
class TrialRow:
    """A trial of a tune: its candidate, what became of it and why, and what was measured.

    ``status`` is a :class:`~edgesdk.kinds.TrialStatus`; ``stage`` says which check refused a rejected
    candidate (compress, memory, predicted); a repeat names the trial it repeats (``repeat_of``).
    ``to_dict`` leaves out what a row does not have (None; ``reason`` is always there), as results.json
    always did.
    """

    status: TrialStatus
    number: int | None = None
    recipe: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    stage: str | None = None
    repeat_of: int | None = None
    # the compressed candidate
    path: str | None = None
    sha256: str | None = None
    model_bytes: int | None = None
    gzip_bytes: int | None = None
    weight_entropy_bytes: int | None = None
    memory_bytes: int | None = None
    flash_bytes: int | None = None
    quality: dict[str, Any] | None = None
    precision: str | None = None
    warnings: list[str] = field(default_factory=list)
    target: dict[str, Any] | None = None
    predicted_ms: float | None = None
    predictor_calibrated: bool | None = None
    predicted_fallback: list[str] | None = None   # operators the profile predicts on the CPU beside its accelerator
    # its latency: measured on a device, or estimated
    latency_ms: float | None = None
    estimated: bool | None = None
    latency: dict[str, Any] | None = None
    measured_memory: dict[str, Any] | None = None
    energy_mj: float | None = None
    energy_estimated: bool | None = None
    measurement_key: str | None = None
    cached: bool | None = None
    device: dict[str, Any] | None = None
    runtime: dict[str, Any] | None = None
    accelerator: dict[str, Any] | None = None      # what ran it: cpu/gpu/npu, fully accelerated, adapter, fidelity
    measured_on: str | None = None
    window: list[Any] | None = None
    violations: list[str] | None = None

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> TrialRow:
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {k: v for k, v in doc.items() if k in known}
        kwargs["status"] = TrialStatus(kwargs["status"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        doc = {k: v for k, v in asdict(self).items() if v is not None or k == "reason"}
        doc["status"] = self.status.value
        return doc


def repeat_row(row: dict[str, Any], number: int, repeat_of: int | None) -> dict[str, Any]:
    """The row of a trial that proposed a candidate already tried (or taken): trial ``repeat_of``'s
    row (or the proposal's own), renumbered, no work and no budget spent."""
    return {**row, "number": number, "status": TrialStatus.REPEAT.value, "repeat_of": repeat_of,
            "reason": "already tried"}

