"""weights: weight-only quantization, int8 or int4 weights stored behind DEQUANTIZE ops with float
arithmetic (through ai-edge-quantizer)."""

from __future__ import annotations

from typing import Any

from ..errors import RecipeError
from ..profiles import Profile
from ..tflite import ptq
from .base import Context, PrecisionSpec, Step, runs
from .conversion import float_tflite, precision


def _bits(value: str | None) -> int:
    if value not in (None, "int8", "int4", "8", "4"):
        raise RecipeError(f"weights expects int8 or int4 (weight-only quantization), e.g. weights=int4. "
                          f"Received: weights={value}")
    return 4 if value in ("int4", "4") else 8


def _problem(profile: Profile, bits: Any, shown: str) -> str | None:
    """Stored integers, float arithmetic: a float target; int4 needs LiteRT to dequantize it."""
    if bits == 4 and profile.runtime != "litert":
        return (f"profile {profile.name!r} runs {profile.runtime}, which cannot dequantize int4 weights; "
                f"{shown} needs LiteRT")
    return runs(profile, "fp32")


def _keras(source: Any, step: Step, ctx: Context) -> bytes:
    return ptq.weight_only(float_tflite(source), step.value)


precision("weights", "weight-only quantization: int8 (weights=int8) or int4 (weights=int4) weights stored behind "
          "DEQUANTIZE ops, float arithmetic (through ai-edge-quantizer)", keras=_keras,
          tflite=lambda content, step, ctx: ptq.weight_only(content, step.value), parse=_bits, order=6,
          search=(8, 4), write=lambda bits: f"int{bits}", spec=PrecisionSpec("fp32", problem=_problem, bits=float))
