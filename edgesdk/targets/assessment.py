"""What every target assessment reports: where each layer runs, and the model's RAM, flash and speed."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Placement:
    """Where one layer runs: ``npu``, or ``cpu`` when it falls back (with the reason)."""

    index: int
    op: str
    output: str
    unit: str
    reason: str = ""


@dataclass(frozen=True)
class TargetFacts:
    """RAM, flash and estimated speed of one model on one target. ``None`` where not known."""

    target: str                               # tflite-micro | vela | edgetpu
    ram_bytes: int | None                     # tensor arena (TFLM) or SRAM (Vela)
    flash_bytes: int | None                   # model + runtime/kernels estimate (TFLM) or Vela's flash
    latency_ms: float | None = None           # ESTIMATED
    energy_mj: float | None = None            # ESTIMATED
    cycles: int | None = None
    basis: str = ""                           # what the estimate rests on
    placements: list[Placement] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    estimated: bool = True

    @property
    def fallback(self) -> list[Placement]:
        return [p for p in self.placements if p.unit == "cpu"]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "npu_layers": sum(p.unit == "npu" for p in self.placements),
                "cpu_layers": len(self.fallback)}
