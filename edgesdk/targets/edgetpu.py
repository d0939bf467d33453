"""Google Coral Edge TPU: which layers ``edgetpu_compiler`` would map, by its published rules.

The compiler is not on PyPI (and not for this machine), so its rules are applied here instead
(coral.ai, "TensorFlow models on the Edge TPU"): every tensor int8/uint8 (int32 for biases and
shapes), an operator from the supported list, tensors of at most three dimensions larger than 1.
The compiler maps the graph only up to the first layer that breaks a rule: that layer and every later
one run on the host CPU, however supported they are. A float QUANTIZE at the inputs and a DEQUANTIZE
at the outputs run on the CPU without cutting the graph. Latency is an ESTIMATE from the TPU's peak,
parameters streamed over USB beyond the 8 MB cache, and the CPU layers at the host's MAC rate.
"""

from __future__ import annotations

from ..profiles import Profile
from ..tflite.facts import ModelReport, OpInfo, TensorInfo
from .assessment import Placement, TargetFacts

_TYPES = {"INT8", "UINT8"}


def _rule(layer: OpInfo, tensors: list[TensorInfo], profile: Profile) -> str:
    """Why the Edge TPU cannot run ``layer`` ("" if it can)."""
    if not profile.supports_operator(layer.op):
        return f"{layer.op} is not an Edge TPU operator"
    for j in layer.inputs:
        if j < 0:
            continue
        t = tensors[j]
        if t.dtype not in _TYPES and not (t.dtype == "INT32" and (t.constant or layer.op in ("RESHAPE",))):
            return f"input {t.name or j} is {t.dtype}; the Edge TPU runs int8/uint8 tensors only"
        if not t.constant and any(s > 1 for s in t.shape[:-3]):
            return f"tensor {t.name or j} {t.shape}: only the 3 innermost dimensions may be larger than 1"
    if layer.dtype not in _TYPES and layer.dtype != "INT32":
        return f"output is {layer.dtype}; the Edge TPU runs int8/uint8 tensors only"
    return ""


def assess(report: ModelReport, profile: Profile) -> TargetFacts:
    """Per-layer placement (TPU up to the first layer that breaks a rule) and an estimated latency."""
    inputs = {t.index for t in report.inputs}
    outputs = {t.name for t in report.outputs}
    placements: list[Placement] = []
    cut: int | None = None
    why = ""
    for layer in report.layers:
        boundary = (layer.op == "QUANTIZE" and set(layer.inputs) <= inputs) or \
            (layer.op == "DEQUANTIZE" and layer.output in outputs)
        if cut is None and not boundary:
            why = _rule(layer, report.tensors, profile)
            if why:
                cut = layer.index
        if boundary:
            placements.append(Placement(layer.index, layer.op, layer.output, "cpu", "float input/output conversion"))
        elif cut is None:
            placements.append(Placement(layer.index, layer.op, layer.output, "npu"))
        else:
            reason = why if layer.index == cut else f"after layer {cut} ({report.layers[cut].op}), where the " \
                                                    "compiler stops mapping"
            placements.append(Placement(layer.index, layer.op, layer.output, "cpu", reason))
    npu = profile.npu
    tpu_macs = sum(report.layers[p.index].macs for p in placements if p.unit == "npu")
    cpu_macs = sum(report.layers[p.index].macs for p in placements if p.unit == "cpu")
    peak = profile.roofline.peak_macs_per_s["int8"]
    cache = (npu.onchip_param_bytes if npu and npu.onchip_param_bytes else profile.memory.storage_bytes)
    streamed = max(0, report.weight_bytes - cache)
    seconds = tpu_macs / peak + streamed / profile.roofline.memory_bandwidth_bytes_per_s
    fallback_rate = npu.fallback_macs_per_s if npu and npu.fallback_macs_per_s else 1e9
    seconds += cpu_macs / fallback_rate
    warnings = []
    on_cpu = [p for p in placements if p.unit == "cpu" and p.reason != "float input/output conversion"]
    if on_cpu:
        warnings.append(f"{len(on_cpu)} of {len(placements)} layers run on the host CPU from layer {cut} "
                        f"({report.layers[cut].op if cut is not None else '?'}): {on_cpu[0].reason}")
    if streamed:
        warnings.append(f"{streamed:,} bytes of parameters do not fit the Edge TPU's on-chip cache and stream "
                        "over USB at every inference")
    latency_ms = seconds * 1e3
    return TargetFacts("edgetpu", None, report.model_bytes, latency_ms, latency_ms * profile.power.active_w, None,
                       "Edge TPU rules + roofline (edgetpu_compiler is not available here)", placements, [],
                       warnings, {"tpu_macs": tpu_macs, "cpu_macs": cpu_macs, "streamed_param_bytes": streamed,
                                  "first_cpu_layer": cut})
