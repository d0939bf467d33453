"""Data files: ``.npz`` with inputs ``x`` and optional labels ``y``; random calibration as a fallback."""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError

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
    if y is not None and len(y) != len(x):
        raise DataError(f"{p}: 'y' has {len(y)} entries but 'x' has {len(x)} samples")
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    return Dataset(x, y, digest, str(p))


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
