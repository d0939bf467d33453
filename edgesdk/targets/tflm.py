"""TFLite Micro on the host: the exact tensor arena a model needs, the flash it needs, and whether
every operator is a TFLite Micro built-in.

The arena is found by running the model in the TFLite Micro interpreter of the ``tflite-micro``
package (a child process, ``_tflm_worker``): the smallest size, to 16 bytes, at which it allocates,
then one inference at that size. The host build is 64-bit; on a 32-bit MCU the interpreter's own
structures (pointers) are smaller, so the figure is an upper bound by a few hundred bytes. CMSIS-NN
kernels can ask for scratch buffers the reference kernels do not; keep a margin on the board.

Flash is the model's bytes plus the runtime and the kernels of the operators used: an ESTIMATE from
the table below (Cortex-M, -Os, CMSIS-NN), since no Arm toolchain builds TFLM here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import ModelError
from ..profiles import Profile
from ..tflite.facts import ModelReport
from . import mcu
from .assessment import TargetFacts

# Approximate .text of each kernel on a Cortex-M (CMSIS-NN where it has one), bytes. Convolutions carry
# several specialised CMSIS-NN variants (1x1, 1xN, generic s8/s16), hence their size; other kernels are
# a reference implementation of a few hundred lines. Unlisted operators count DEFAULT_KERNEL_BYTES.
KERNEL_FLASH_BYTES = {
    "CONV_2D": 9000, "DEPTHWISE_CONV_2D": 8000, "FULLY_CONNECTED": 3500, "TRANSPOSE_CONV": 4000,
    "BATCH_MATMUL": 4000, "SVDF": 4000, "UNIDIRECTIONAL_SEQUENCE_LSTM": 9000, "SOFTMAX": 2500,
    "LOG_SOFTMAX": 2000, "AVERAGE_POOL_2D": 2500, "MAX_POOL_2D": 2000, "ADD": 2500, "SUB": 2500,
    "MUL": 2500, "QUANTIZE": 1500, "DEQUANTIZE": 1200, "RESHAPE": 400, "SQUEEZE": 400, "EXPAND_DIMS": 400,
    "CONCATENATION": 1500, "PAD": 1200, "PADV2": 1200, "MEAN": 2500, "RELU": 800, "RELU6": 800,
    "LOGISTIC": 1500, "TANH": 1500, "HARD_SWISH": 1500, "STRIDED_SLICE": 1500,
}
DEFAULT_KERNEL_BYTES = 2000
_REASONS = (r"Didn't find op for builtin opcode '?(\w+)'?.*", r".*Hybrid models are not supported.*",
            r"Failed to get registration from op code (\w+).*", r".*[Uu]nsupported.*", r".*not supported.*")


def arena(model: bytes) -> tuple[int | None, str | None]:
    """(smallest arena in bytes, None), or (None, why TFLite Micro cannot run the model).

    Raises:
        ModelError: the tflite-micro package is missing.
    """
    with tempfile.TemporaryDirectory(prefix="edgesdk-tflm-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model)
        try:
            proc = subprocess.run([sys.executable, "-m", "edgesdk.targets._tflm_worker", str(path)],
                                  capture_output=True, text=True, timeout=300, check=False)
        except subprocess.TimeoutExpired:
            return None, "TFLite Micro took over 300 s to allocate the model"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if "No module named 'tflite_micro'" in proc.stderr:
        raise ModelError("the tflite-micro package is not installed: pip install tflite-micro")
    if not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        return None, f"the TFLite Micro interpreter failed: {tail[0]}"
    doc = json.loads(lines[-1])
    if doc["arena_bytes"] is not None:
        return int(doc["arena_bytes"]), None
    return None, _reason(proc.stderr) or doc["error"]


def _reason(stderr: str) -> str | None:
    """The first line of TFLite Micro's log that says why a model does not allocate."""
    for pattern in _REASONS:
        for line in stderr.splitlines():
            if re.fullmatch(pattern, line.strip()):
                return "TFLite Micro: " + line.strip()
    return None


def flash_bytes(report: ModelReport, runtime_bytes: int) -> int:
    """Model bytes + runtime + the kernels of the operators the model uses (an estimate)."""
    kernels = sum(KERNEL_FLASH_BYTES.get(op, DEFAULT_KERNEL_BYTES) for op in report.operators)
    return report.model_bytes + runtime_bytes + kernels


def assess(model: bytes, report: ModelReport, profile: Profile) -> TargetFacts:
    """Arena, flash, built-in coverage and the cycle-model estimate of a model on an MCU profile."""
    size, why = arena(model)
    runtime = profile.mcu.runtime_flash_bytes if profile.mcu else 20_000
    problems = [f"TFLite Micro cannot run this model: {why}"] if why else []
    kernels = {op: KERNEL_FLASH_BYTES.get(op, DEFAULT_KERNEL_BYTES) for op in report.operators}
    details = {"model_bytes": report.model_bytes, "runtime_flash_bytes": runtime, "kernel_flash_bytes": kernels,
               "arena_note": "smallest arena the host TFLite Micro interpreter allocates in (64-bit build)"}
    if profile.mcu is None:
        return TargetFacts("tflite-micro", size, flash_bytes(report, runtime), problems=problems, details=details)
    est = mcu.estimate(report, profile)
    return TargetFacts("tflite-micro", size, flash_bytes(report, runtime), est.latency_ms, est.energy_mj,
                       est.cycles, est.basis, problems=problems, details=details)
