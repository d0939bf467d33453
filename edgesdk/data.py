"""Data files: ``.npz`` with inputs ``x`` and optional labels ``y``; random calibration as a fallback."""

from __future__ import annotations

import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError
from .fileio import sha256_file

log = logging.getLogger(__name__)

RANDOM_WARNING = ("no --data given: calibrating on random inputs. The quantization ranges are "
                  "guesses and the result is NOT trustworthy; pass --data with real samples")


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray
    y: np.ndarray | None
    sha256: str
    source: str

    def __len__(self) -> int:
        return len(self.x)


def load_npz(path: str | os.PathLike[str]) -> Dataset:
    """Load an .npz holding ``x`` (and optionally ``y``).

    Raises:
        DataError: missing file, not an npz, no ``x``, or ``y`` of another length.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such data file; expected an .npz with arrays 'x' and optional 'y'")
    try:
        with np.load(p, allow_pickle=False) as npz:
            if "x" not in npz.files:
                raise DataError(f"{p}: the .npz has no array 'x' (it has: {', '.join(npz.files) or 'none'})")
            x = npz["x"]
            y = npz["y"] if "y" in npz.files else None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{p}: not a readable .npz file: {exc}") from exc
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"{p}: 'x' must hold at least one sample along its first axis")
    if y is not None and (y.ndim == 0 or len(y) != len(x)):
        raise DataError(f"{p}: 'y' has {len(y) if y.ndim else 'no'} entries but 'x' has {len(x)} samples")
    for name, array in (("x", x), ("y", y)):
        if array is not None:
            _check_numbers(p, name, array)
    return Dataset(x, y, sha256_file(p), str(p))


def _check_numbers(path: Path, name: str, array: np.ndarray) -> None:
    """Numbers only (no strings or objects), and every float finite: a NaN or an infinity crashes the
    converter's calibration and poisons fine-tuning and evaluation without a word."""
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: {name!r} must hold numbers (integers or floats). Received: dtype {array.dtype}")
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
        if bad.any():
            first = int(np.argmax(bad))
            raise DataError(f"{path}: {name!r} holds NaN or infinite values in {int(bad.sum())} of {len(array)} "
                            f"samples (the first is sample {first}); remove or replace them")


def labels_for(data: Dataset, output_shape: list[int], output_name: str) -> np.ndarray | None:
    """``y`` as the model's first output is compared with it, checked.

    A classifier output of K > 1 classes takes one class index per sample (integers 0..K-1, also when
    stored as whole floats) or one row of K targets; any other output takes targets of its own shape.

    Raises:
        DataError: labels that are not whole numbers, out of range, or of a shape that fits neither.
    """
    y = data.y
    if y is None:
        return None
    want = [int(s) for s in output_shape[1:] if s and s > 0]
    per_output = int(np.prod(want)) if want else 1
    per_sample = int(np.prod(y.shape[1:])) if y.ndim > 1 else 1
    classes = want[0] if len(want) == 1 and want[0] > 1 else None
    if classes is not None and per_sample == 1:
        labels = y.reshape(-1)
        if labels.dtype.kind == "f" and not np.array_equal(labels, np.round(labels)):
            raise DataError(f"{data.source}: 'y' holds fractional values, but output {output_name!r} has "
                            f"{classes} classes: labels must be class indices 0..{classes - 1}")
        low, high = labels.min(), labels.max()
        if low < 0 or high >= classes:
            raise DataError(f"{data.source}: 'y' holds labels from {low:g} to {high:g}, but output "
                            f"{output_name!r} has {classes} classes: labels must be 0..{classes - 1}")
        return labels.astype(np.int64)
    if per_sample != per_output:
        expected = (f"one class index per sample (0..{classes - 1}) or {per_output} targets" if classes
                    else f"{per_output} target value(s) per sample")
        raise DataError(f"{data.source}: 'y' has {per_sample} value(s) per sample, but output {output_name!r} of "
                        f"shape {tuple(output_shape[1:])} needs {expected}")
    return y.reshape(len(y), *want).astype(np.float32)


def fit_to_input(data: Dataset, shape: list[int], name: str) -> np.ndarray:
    """Check that samples fit a model input of ``shape`` (batch first) and return them as float32.

    Raises:
        DataError: the per-sample shape differs.
    """
    want = [int(s) for s in shape[1:]]
    got = list(data.x.shape[1:])
    if len(want) == len(got) and all(w in (-1, None, g) for w, g in zip(want, got, strict=True)):
        return data.x.astype(np.float32, copy=False)
    if int(np.prod(got)) == int(np.prod([w for w in want if w and w > 0])) and all(w and w > 0 for w in want):
        return data.x.reshape(len(data.x), *want).astype(np.float32)
    raise DataError(f"{data.source}: samples of shape {tuple(got)} do not fit model input {name!r} "
                    f"of shape {tuple(want)}")


def random_calibration(shape: list[int], count: int = 32, seed: int = 0) -> np.ndarray:
    """Standard-normal samples for a model input (the caller reports ``RANDOM_WARNING``)."""
    dims = [int(s) if s and s > 0 else 1 for s in shape[1:]]
    return np.random.default_rng(seed).standard_normal((count, *dims)).astype(np.float32)
