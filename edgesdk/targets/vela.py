"""Arm Ethos-U: compile with Vela (``ethos-u-vela``) and read back what it placed where and what it costs.

Vela maps each operator it supports onto the NPU and leaves the rest to TFLite Micro on the Cortex-M
host. Its per-network summary CSV gives SRAM and flash use, NPU cycles and inferences/s (its own
performance model: an ESTIMATE). Operators left on the CPU come from Vela's ``--show-cpu-operations``
report, with its reason, and cost their Cortex-M cycle-model time on top of the NPU time, which is how
the search penalises them.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..profiles import Profile
from ..tflite.facts import ModelReport
from . import mcu
from .assessment import Placement, TargetFacts

_CPU_OP = re.compile(r"Warning \(supported operators\) operator: (\w+), ofm: '(.*)'\s*\nReason: (.*)")


def run(model: bytes, profile: Profile, workdir: Path) -> tuple[dict[str, str], str, bytes]:
    """Run Vela on ``model``; (summary CSV row, Vela's output, the compiled .tflite).

    Raises:
        ModelError: Vela is missing or refuses the model.
    """
    npu = profile.npu
    assert npu is not None and npu.compiler == "vela"
    source = workdir / "model.tflite"
    source.write_bytes(model)
    args = [sys.executable, "-c", "import sys; from ethosu.vela.vela import main; sys.argv[0] = 'vela'; "
            "sys.exit(main())", str(source), "--output-dir", str(workdir / "out"),
            "--show-cpu-operations", "--config", "Arm/vela.ini"]
    for flag, value in (("--accelerator-config", npu.accelerator), ("--system-config", npu.system_config),
                        ("--memory-mode", npu.memory_mode)):
        args += [flag, value] if value else []
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ModelError("Vela took over 600 s to compile the model") from exc
    text = proc.stdout + proc.stderr
    if "No module named 'ethosu'" in text:
        raise ModelError("Vela is not installed: pip install ethos-u-vela")
    summaries = sorted((workdir / "out").glob("*_summary_*.csv"))
    if proc.returncode != 0 or not summaries:
        last = [line for line in text.strip().splitlines() if line.strip()][-1:] or [f"exit code {proc.returncode}"]
        raise ModelError(f"Vela could not compile the model: {last[0]}")
    with summaries[0].open(newline="") as fh:
        row = next(csv.DictReader(fh))
    compiled = next((workdir / "out").glob("*_vela.tflite")).read_bytes()
    return row, text, compiled


def assess(model: bytes, report: ModelReport, profile: Profile) -> TargetFacts:
    """NPU coverage per layer, SRAM, flash, cycles and inferences/s of a model on an Ethos-U profile."""
    with tempfile.TemporaryDirectory(prefix="edgesdk-vela-") as tmp:
        row, text, compiled = run(model, profile, Path(tmp))
    by_output = {layer.output: layer for layer in report.layers}
    cpu: dict[int, str] = {}
    for op, ofm, reason in _CPU_OP.findall(text):
        # Vela splits fused activations into operators of their own that keep the layer's output name.
        layer = by_output.get(ofm)
        if layer is not None:
            cpu.setdefault(layer.index, f"{op}: {reason.strip()}" if op != layer.op else reason.strip())
    placements = [Placement(layer.index, layer.op, layer.output, "cpu" if layer.index in cpu else "npu",
                            cpu.get(layer.index, "")) for layer in report.layers]
    npu_s = float(row["inference_time"])
    npu_cycles = int(float(row["cycles_total"]))
    warnings = []
    cpu_ms = 0.0
    if cpu:
        ops = sorted({report.layers[i].op for i in cpu})
        warnings.append(f"{len(cpu)} of {len(report.layers)} layers ({', '.join(ops)}) fall back to the "
                        "Cortex-M CPU")
        if profile.mcu is not None:
            cpu_ms = mcu.estimate(report, profile, layers=sorted(cpu)).latency_ms
    latency_ms = npu_s * 1e3 + cpu_ms
    runtime = profile.mcu.runtime_flash_bytes if profile.mcu else 30_000
    keep = ("accelerator_configuration", "system_config", "memory_mode", "core_clock", "inferences_per_second",
            "sram_memory_used", "off_chip_flash_memory_used", "on_chip_flash_memory_used", "dram_memory_used",
            "cycles_npu", "cycles_total", "nn_macs", "passes_after_fusing")
    details: dict[str, Any] = {key: row[key] for key in keep if key in row}
    details.update(npu_ms=npu_s * 1e3, cpu_fallback_ms=cpu_ms, compiled_bytes=len(compiled),
                   inferences_per_s=1e3 / latency_ms if latency_ms > 0 else None)
    # Vela reports KiB. With Dedicated_Sram (Ethos-U65) the arena is in DRAM and the SRAM is a cache.
    sram, dram = (int(round(float(row.get(key) or 0) * 1024)) for key in ("sram_memory_used", "dram_memory_used"))
    watts = profile.power.active_w
    ram = dram or sram
    if cpu:  # the CPU layers' tensors live in the arena too: Vela does not count them
        ram = max(ram, report.peak_activation_bytes)
        warnings.append("RAM includes the CPU layers' activations, estimated from tensor liveness")
    return TargetFacts("vela", ram, len(compiled) + runtime, latency_ms, latency_ms * watts, npu_cycles,
                       f"Vela {row.get('accelerator_configuration', '')} performance model"
                       + (" + Cortex-M cycle model for CPU layers" if cpu else ""),
                       placements, [], warnings, details)
