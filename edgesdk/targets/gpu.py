"""Which operators of a model a GPU accelerator leaves to the CPU, predicted before any device time.

A profile with ``accelerator: gpu`` lists the operators its GPU delegate runs (``operators``) and the
tensor types it has no kernels for (``unsupported_tensor_types``: LiteRT's GPU delegate refuses INT64,
"Tensor type(INT64) is not supported") and the most dimensions a tensor may have (``max_tensor_rank``).
An operator outside the set, touching such a tensor or writing a tensor of more dimensions, falls back
to the CPU. After a measurement the prediction is checked against what the accelerator reported.
"""

from __future__ import annotations

from typing import Any

from device_agent.protocol import OFFLOADED

from ..profiles import Profile
from ..tflite.facts import ModelReport


def fallback(report: ModelReport, profile: Profile) -> list[dict[str, str]]:
    """The operators predicted to run on the CPU beside ``profile``'s accelerator, one entry per
    operator name with the reason (empty: predicted fully accelerated)."""
    types = profile.unsupported_tensor_types
    dtype = {t.index: t.dtype for t in report.tensors}
    found: dict[str, str] = {}
    for layer in report.layers:
        if not profile.supports_operator(layer.op):
            found.setdefault(layer.op, f"not in {profile.name}'s operator set")
            continue
        bad = sorted(({dtype.get(i, "") for i in layer.inputs if i >= 0} | {layer.dtype}) & types)
        if bad:
            found.setdefault(layer.op, f"{', '.join(bad)} tensors are not supported")
        elif profile.max_tensor_rank is not None and len(layer.output_shape) > profile.max_tensor_rank:
            found.setdefault(layer.op, f"a {len(layer.output_shape)}-D tensor (at most {profile.max_tensor_rank}-D)")
    return [{"op": op, "reason": reason} for op, reason in sorted(found.items())]


def predicted_ops(report: ModelReport, profile: Profile) -> list[str]:
    return [entry["op"] for entry in fallback(report, profile)]


def disagreement(report: ModelReport, profile: Profile, accelerator: dict[str, Any] | None) -> str | None:
    """A sentence when the prediction differs from what the accelerator reported; None when they agree
    or nothing was reported (a CPU run, or an accelerator that does not name its fallbacks)."""
    if not accelerator or accelerator.get("used") not in OFFLOADED or accelerator.get("fully_accelerated") is None:
        return None
    predicted = set(predicted_ops(report, profile))
    reported = set(accelerator.get("fallback_ops") or [])
    if not accelerator["fully_accelerated"] and not reported:
        return None  # not fully accelerated, but it did not say which operators: nothing to compare
    if predicted == reported:
        return None
    extra, missed = sorted(reported - predicted), sorted(predicted - reported)
    parts = []
    if extra:
        parts.append(f"{', '.join(extra)} fell back to the CPU though {profile.name}'s operator set has "
                     f"{'it' if len(extra) == 1 else 'them'}")
    if missed:
        parts.append(f"{', '.join(missed)} ran on the {accelerator['used'].upper()} though {profile.name} predicted "
                     "a CPU fallback")
    return "the accelerator disagrees with the profile's prediction: " + "; ".join(parts) + \
        f" (update {profile.name}'s operators)"
