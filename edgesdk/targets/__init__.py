"""What a model needs on targets that either fit it or do not: microcontrollers and NPUs.

A profile's runtime picks the assessment: TFLite Micro (``tflite-micro``) finds the exact tensor arena
by running the model in the TFLite Micro interpreter on this machine, estimates flash and the latency
from a calibrated cycle model; Vela (``npu.compiler: vela``) compiles for an Arm Ethos-U and reads back
its SRAM, flash and cycles; the Edge TPU rules (``npu.compiler: edgetpu-rules``) say which layers the
Edge TPU compiler would map. Every latency here is an estimate, and is flagged so.
"""

from __future__ import annotations

from dataclasses import replace

from ..profiles import Profile
from ..tflite.facts import ModelReport
from .assessment import Placement, TargetFacts


def applies(profile: Profile) -> bool:
    """Whether ``profile`` has a target assessment (an MCU runtime or an NPU compiler)."""
    return profile.runtime == "tflite-micro" or profile.npu is not None


def assess(model: bytes, report: ModelReport, profile: Profile) -> TargetFacts | None:
    """The target facts of a .tflite model (its bytes and report) on ``profile``, or None for profiles
    (CPUs, GPUs) that have no such assessment. Its latency's basis says how far it can be off (the
    profile's ``uncalibrated_error``)."""
    facts: TargetFacts | None = None
    if profile.npu is not None and profile.npu.compiler == "vela":
        from . import vela

        facts = vela.assess(model, report, profile)
    elif profile.npu is not None and profile.npu.compiler == "edgetpu-rules":
        from . import edgetpu

        facts = edgetpu.assess(report, profile)
    elif profile.runtime == "tflite-micro":
        from . import tflm

        facts = tflm.assess(model, report, profile)
    if facts is None or facts.latency_ms is None:
        return facts
    within = f"expect within {profile.roofline.uncalibrated_error:g}× either way"
    return replace(facts, basis=f"{facts.basis}; {within}" if facts.basis else within)


__all__ = ["Placement", "TargetFacts", "applies", "assess"]
