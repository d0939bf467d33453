"""The four MLPerf Tiny reference models as a user would hand them to edgesdk, with their real inputs.

The shared folder ships one real input per model (AD: one clip of 196 windows; VWW: none). Calibration
sets are built from that input with label-preserving jitter (shifts, flips, gain, small noise), so
nothing here downloads data. Fidelity is always measured on the real input(s) alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "mlperf_tiny"

KWS_INPUT_SCALE, KWS_INPUT_ZERO = 0.5847029, 83  # from the README of the shared folder


@dataclass(frozen=True)
class Task:
    name: str
    source: Path            # float source a user would compress
    float_tflite: Path
    reference_int8: Path
    real_inputs: np.ndarray | None   # float32, batch first; None when nothing real is shipped
    classifier: bool


def tasks(root: Path = DEFAULT_DIR) -> list[Task]:
    ic = np.load(root / "ic" / "sample_input_uint8.npy").astype(np.float32)
    kws_q = np.load(root / "kws" / "sample_input_int8.npy").astype(np.float32)
    kws = (kws_q - KWS_INPUT_ZERO) * KWS_INPUT_SCALE
    ad = np.load(root / "ad" / "sample_input_float32.npy").astype(np.float32).reshape(-1, 640)
    return [
        Task("ic", root / "ic" / "pretrainedResnet.h5", root / "ic" / "pretrainedResnet.tflite",
             root / "ic" / "pretrainedResnet_quant.tflite", ic.reshape(1, 32, 32, 3), True),
        Task("kws", root / "kws" / "kws_ref_model", root / "kws" / "kws_ref_model_float32.tflite",
             root / "kws" / "kws_ref_model.tflite", kws.reshape(1, 49, 10, 1), True),
        Task("ad", root / "ad" / "ad01.h5", root / "ad" / "ad01_fp32.tflite", root / "ad" / "ad01_int8.tflite",
             ad, False),
        Task("vww", root / "vww" / "vww_96.h5", root / "vww" / "vww_96_float.tflite",
             root / "vww" / "vww_96_int8.tflite", None, True),
    ]


def calibration(task: Task, count: int = 64, seed: int = 0, held_out: bool = False) -> np.ndarray:
    """Calibration samples derived from the task's real input (synthetic images for VWW).

    With ``held_out`` the real input itself is not among them (every sample is shifted, flipped or
    rescaled), so fidelity measured on it is out of sample."""
    rng = np.random.default_rng(seed)
    if task.name == "ad":
        return task.real_inputs  # 196 real windows
    if task.name == "vww":
        # No real image is shipped: smooth random images in the model's input range [-1, 1].
        coarse = rng.uniform(-1, 1, size=(count, 12, 12, 3))
        return np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2).astype(np.float32)
    base = task.real_inputs[0]
    out = [] if held_out else [base]
    while len(out) < count:
        shift = int(rng.integers(-3, 4))
        sample = np.roll(base, shift=shift, axis=0)
        if task.name == "ic":
            flip = rng.random() < 0.5
            sample = sample[:, ::-1] if flip else sample
            if held_out and shift == 0 and not flip:
                continue
            sample = np.clip(sample * rng.uniform(0.8, 1.2) + rng.normal(0, 4, sample.shape), 0, 255)
        else:
            if held_out and shift == 0:
                continue
            sample = sample * rng.uniform(0.9, 1.1) + rng.normal(0, 0.5, sample.shape)
        out.append(sample.astype(np.float32))
    return np.stack(out).astype(np.float32)


def eval_inputs(task: Task, seed: int = 1) -> tuple[np.ndarray, bool]:
    """(inputs, real): the shipped real inputs, or for VWW synthetic ones flagged as not real."""
    if task.real_inputs is not None:
        return task.real_inputs, True
    return calibration(task, count=16, seed=seed), False


def wide_eval_inputs(task: Task, count: int = 32, seed: int = 99) -> np.ndarray:
    """The real input(s) plus ``count`` jittered variants from a seed no calibration set uses: one real
    image is too few to tell two int8 models apart (SQNR on it moves by 2 dB with the calibration seed)."""
    x, real = eval_inputs(task)
    if not real or task.name == "ad":
        return x
    return np.concatenate([x, calibration(task, count=count, seed=seed, held_out=True)])
