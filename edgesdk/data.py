"""Data files: ``.npz`` with inputs ``x`` (or, for a model with several inputs, one array named after each
input) and optional labels ``y``; random calibration as a fallback."""

from __future__ import annotations

import logging
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError
from .fileio import sha256_file

log = logging.getLogger(__name__)

RANDOM_WARNING = ("no --data given: calibrating on random inputs. The quantization ranges are "
                  "guesses and the result is NOT trustworthy; pass --data with real samples")


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray                        # ``x``, or the first input array of a file without one
    y: np.ndarray | None
    sha256: str
    source: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # every array but ``y``, by name

    def __len__(self) -> int:
        return len(self.x)


def load_npz(path: str | os.PathLike[str]) -> Dataset:
    """Load an .npz holding ``x`` (or arrays named after a model's inputs) and optionally ``y``.

    Raises:
        DataError: missing file, not an npz, no input array, or arrays of different lengths.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such data file; expected an .npz with arrays 'x' and optional 'y'")
    _check_sizes(p)
    try:
        loaded = np.load(p, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{p}: not a readable .npz file: {exc}") from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # a .npy: one bare array, no names
        raise DataError(f"{p}: a .npy file holds one unnamed array; expected an .npz with arrays 'x' and optional "
                        "'y' (numpy.savez(path, x=samples, y=labels))")
    try:
        with loaded as npz:
            arrays = {name: npz[name] for name in npz.files if name != "y"}
            y = npz["y"] if "y" in npz.files else None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{p}: not a readable .npz file: {exc}") from exc
    if not arrays:
        raise DataError(f"{p}: the .npz has no array 'x' (it has: {'y' if y is not None else 'none'}); give the "
                        "inputs as 'x', or one array named after each input of a model with several")
    for name, array in arrays.items():
        if array.ndim == 0 or len(array) == 0:
            raise DataError(f"{p}: {name!r} must hold at least one sample along its first axis")
    x = arrays.get("x", next(iter(arrays.values())))
    for name, array in arrays.items():
        if len(array) != len(x):
            raise DataError(f"{p}: {name!r} has {len(array)} samples but {next(iter(arrays))!r} has {len(x)}")
    if y is not None and (y.ndim == 0 or len(y) != len(x)):
        raise DataError(f"{p}: 'y' has {len(y) if y.ndim else 'no'} entries but 'x' has {len(x)} samples")
    named: list[tuple[str, np.ndarray | None]] = [*arrays.items(), ("y", y)]
    for name, given in named:
        if given is not None:
            _check_numbers(p, name, given)
    return Dataset(x, y, sha256_file(p), str(p), arrays)


def _memory_limit() -> int:
    """Bytes of arrays one data file may hold: half the machine's memory."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError):
        return 8 << 30


def _check_sizes(path: Path) -> None:
    """Read every array's header before anything is loaded: a header that claims more bytes than its
    member holds (an .npz "bomb": 64e12 elements in a few bytes), or arrays larger than memory allows,
    are refused before numpy allocates them. A bare .npy is refused here too, unread.

    Raises:
        DataError: naming the array and the sizes.
    """
    with path.open("rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        raise DataError(f"{path}: a .npy file holds one unnamed array; expected an .npz with arrays 'x' and "
                        "optional 'y' (numpy.savez(path, x=samples, y=labels))")
    if not zipfile.is_zipfile(path):
        return  # np.load says what it is not
    limit, total = _memory_limit(), 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with archive.open(info) as member:
                    version = np.lib.format.read_magic(member)
                    read = {(1, 0): np.lib.format.read_array_header_1_0,
                            (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read is None:
                        continue  # a format numpy itself checks as it loads
                    shape, _, dtype = read(member)
                need = math.prod(shape) * dtype.itemsize
                name = info.filename.removesuffix(".npy")
                if need > info.file_size:
                    raise DataError(f"{path}: array {name!r} claims shape {shape} ({need:,} bytes) but its member "
                                    f"holds {info.file_size:,} bytes: a damaged or crafted file")
                total += need
                if total > limit:
                    raise DataError(f"{path}: the arrays need {total:,} bytes, more than half this machine's "
                                    f"memory ({limit:,} bytes); give a smaller sample of the data")
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz file: {exc}") from exc


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


def _aliases(name: str) -> list[str]:
    """The names an input may be given by in an .npz: its tensor name and the name a signature gives it
    (``serving_default_image:0`` -> ``image``)."""
    import re

    short = re.sub(r"^serving_default_", "", re.sub(r":\d+$", "", name))
    return list(dict.fromkeys([name, short, re.sub(r":\d+$", "", name)]))


def inputs_for(data: Dataset, inputs: list[tuple[str, list[int]]]) -> np.ndarray | list[np.ndarray]:
    """The samples for each model input (name, shape): ``x`` for a model with one input (or an array named
    after it), one array named after each input otherwise. One array for one input, a list for several.

    Raises:
        DataError: an input without its array, naming the input and the shape expected, or a shape
            that does not fit.
    """
    if len(inputs) == 1:
        name, shape = inputs[0]
        given = next((data.arrays[a] for a in _aliases(name) if a in data.arrays), None)
        chosen = data if given is None else Dataset(given, data.y, data.sha256, data.source)
        return fit_to_input(chosen, shape, name)
    out = []
    for name, shape in inputs:
        given = next((data.arrays[a] for a in _aliases(name) if a in data.arrays), None)
        if given is None:
            wanted = ", ".join(f"{_aliases(n)[1]!r} {tuple(s[1:])}" for n, s in inputs)
            raise DataError(f"{data.source}: the model has {len(inputs)} inputs ({wanted}) and the .npz has no array "
                            f"for input {_aliases(name)[1]!r} of shape {tuple(shape[1:])}; it has: "
                            f"{', '.join(data.arrays)}")
        out.append(fit_to_input(Dataset(given, data.y, data.sha256, data.source), shape, name))
    return out


def random_calibration(shape: list[int] | list[list[int]], count: int = 32, seed: int = 0) -> Any:
    """Standard-normal samples for a model input, or (given a list of shapes) for each of several inputs
    (the caller reports ``RANDOM_WARNING``)."""
    if shape and isinstance(shape[0], list):
        return [random_calibration(s, count, seed + i) for i, s in enumerate(shape)]
    dims = [int(s) if s and s > 0 else 1 for s in shape[1:]]  # type: ignore[arg-type, operator]
    return np.random.default_rng(seed).standard_normal((count, *dims)).astype(np.float32)
