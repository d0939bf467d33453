"""A cycle model for TFLite Micro on a microcontroller, calibrated against published measurements.

Each layer costs its MACs times the profile's cycles per MAC for its kind (convolution, depthwise,
fully connected); precisions other than int8 scale by the roofline's int8 peak over theirs (fp32 on a
Cortex-M4F: half the int8 rate). Operators without MACs cost ``cycles_per_element`` per output element
and every operator ``cycles_per_op``. The shipped coefficients are fitted to MLPerf Tiny results
(``fit``; see benchmarks/mcu.py), so every figure is an estimate and is flagged so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ProfileError
from ..profiles import Mcu, Profile
from ..tflite.facts import ModelReport, OpInfo

KIND = {"CONV_2D": "conv", "TRANSPOSE_CONV": "conv", "CONV_3D": "conv", "DEPTHWISE_CONV_2D": "depthwise",
        "FULLY_CONNECTED": "fc", "BATCH_MATMUL": "fc"}
_PRECISION = {"INT8": "int8", "UINT8": "int8", "INT16": "int16x8", "FLOAT32": "fp32", "FLOAT16": "fp32"}


@dataclass(frozen=True)
class Estimate:
    cycles: int
    latency_ms: float
    energy_mj: float | None
    basis: str


def _model(profile: Profile) -> Mcu:
    if profile.mcu is None:
        raise ProfileError(f"profile {profile.name!r} has no `mcu` cycle model")
    return profile.mcu


def layer_cycles(layer: OpInfo, profile: Profile, mcu: Mcu | None = None) -> float:
    """Estimated cycles of one layer on ``profile``'s MCU (or ``mcu``, e.g. the host CPU beside an NPU)."""
    mcu = mcu or _model(profile)
    kind = KIND.get(layer.op)
    if kind is None or not layer.macs:
        return mcu.cycles_per_op + mcu.cycles_per_element * max(layer.output_bytes, 0)
    peaks = profile.roofline.peak_macs_per_s
    precision = _PRECISION.get(layer.dtype, "int8")
    scale = peaks["int8"] / peaks[precision] if "int8" in peaks and precision in peaks else 1.0
    per_mac: dict[str, float] = {str(k): v for k, v in mcu.cycles_per_mac.items()}
    return mcu.cycles_per_op + layer.macs * per_mac.get(kind, max(per_mac.values())) * scale


def estimate(report: ModelReport, profile: Profile, layers: Iterable[int] | None = None,
             mcu: Mcu | None = None) -> Estimate:
    """Cycles, latency and energy of ``report`` (or of the layers with these indices) on the MCU."""
    mcu = mcu or _model(profile)
    chosen = report.layers if layers is None else [report.layers[i] for i in layers]
    cycles = sum(layer_cycles(layer, profile, mcu) for layer in chosen)
    seconds = cycles / mcu.clock_hz
    watts = mcu.active_w or profile.power.active_w
    basis = f"cycle model at {mcu.clock_hz / 1e6:g} MHz" + (f", calibrated on {mcu.calibrated_on}"
                                                              if mcu.calibrated_on else ", uncalibrated")
    return Estimate(int(round(cycles)), seconds * 1e3, seconds * watts * 1e3, basis)


def features(report: ModelReport) -> dict[str, int]:
    """int8 MACs by kind: what ``fit`` regresses cycles on."""
    out = {"conv": 0, "depthwise": 0, "fc": 0}
    for layer in report.layers:
        kind = KIND.get(layer.op)
        if kind:
            out[kind] += layer.macs
    return out


def fit_cycle_model(samples: Sequence[tuple[ModelReport, float]], cycles_per_op: float = 0.0,
        cycles_per_element: float = 0.0) -> dict[str, float]:
    """Cycles per MAC for each kind from ``(report, measured cycles)`` pairs, minimising the relative
    error (non-negative least squares on rows divided by the measurement), after the fixed per-operator
    and per-element costs. Kinds no sample has get none.
    """
    from scipy.optimize import nnls

    kinds = ("conv", "depthwise", "fc")
    x = np.array([[features(r)[k] for k in kinds] for r, _ in samples], dtype=float)
    fixed = [sum(cycles_per_op + (0 if KIND.get(layer.op) and layer.macs else cycles_per_element * layer.output_bytes)
                 for layer in r.layers) for r, _ in samples]
    y = np.array([c - f for (_, c), f in zip(samples, fixed, strict=True)], dtype=float)
    used = x.sum(axis=0) > 0
    coef, _ = nnls(x[:, used] / y[:, None], np.ones(len(y)))
    return {k: float(c) for k, c in zip([k for k, u in zip(kinds, used, strict=True) if u], coef, strict=True)}
