"""The model formats intake takes, as a registry: how a file of each is recognised, what is wrong with a
file that claims it, and the handle that opens it.

A new format (ONNX, a PyTorch export) is one module with its handle class plus one
:func:`register_format` line; :func:`edgesdk.intake.identify`, every "expected …" message and
``open_model`` follow the registry.
"""

from __future__ import annotations

import importlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..registry import Registry

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class ModelFormat:
    """One format a user's model may come in.

    Attributes:
        name: the format's key (``ModelSource.format``).
        what: how "expected …" messages name it ("a .tflite flatbuffer").
        suffixes: file suffixes of the format (lower case, with the dot); empty for a directory format.
        marker: a directory format: the file a directory of it holds (``saved_model.pb``).
        handle: ``module:Class`` of its :class:`~edgesdk.intake.handles.ModelHandle`, imported on use.
        check: refuses a file whose first bytes are not this format (``ModelError``); given the path and
            its first 8 bytes.
        deployable: the file itself is a model the device runtime runs (a .tflite): no conversion needed.
    """

    name: str
    what: str
    handle: str
    suffixes: tuple[str, ...] = ()
    marker: str | None = None
    check: Callable[[Path, bytes], None] | None = None
    deployable: bool = False

    def open(self, source: Any, trust_code: bool = False) -> Any:
        """The format's handle (a ``ModelHandle``) on ``source`` (a ``ModelSource`` of this format)."""
        module, _, cls = self.handle.partition(":")
        return getattr(importlib.import_module(module), cls)(source, trust_code)


MODEL_FORMATS: Registry[ModelFormat] = Registry("model format", ModelError)


def register_format(fmt: ModelFormat) -> ModelFormat:
    """Add a model format (once: a second of the same name, or a suffix another format claims, is a
    programming error)."""
    taken = {s for f in MODEL_FORMATS.values() for s in f.suffixes}
    if set(fmt.suffixes) & taken:
        raise ValueError(f"model format {fmt.name!r}: suffix(es) {sorted(set(fmt.suffixes) & taken)} are taken")
    return MODEL_FORMATS.add(fmt.name, fmt)


def expected() -> str:
    """What a model file may be, for messages: every registered format."""
    names = [f.what for f in MODEL_FORMATS.values()]
    return ", ".join(names[:-1]) + f", or {names[-1]}" if len(names) > 2 else " or ".join(names)


def by_suffix(suffix: str) -> ModelFormat | None:
    return next((f for f in MODEL_FORMATS.values() if suffix.lower() in f.suffixes), None)


def by_marker(directory: Path) -> ModelFormat | None:
    return next((f for f in MODEL_FORMATS.values() if f.marker and (directory / f.marker).is_file()), None)


def _tflite(path: Path, head: bytes) -> None:
    if head[4:8] != b"TFL3":
        raise ModelError(f"{path}: not a TFLite flatbuffer (no TFL3 identifier); the file is corrupt or not a "
                         ".tflite model")


def _keras_zip(path: Path, head: bytes) -> None:
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{path}: not a valid .keras file (a .keras model is a zip archive); the file is corrupt "
                         "or truncated")


def _hdf5(path: Path, head: bytes) -> None:
    if head != _HDF5_MAGIC:
        raise ModelError(f"{path}: not an HDF5 file; the file is corrupt or not a Keras .h5 model")


register_format(ModelFormat("keras", "a .keras model", "edgesdk.intake.handles:KerasHandle", (".keras",),
                            check=_keras_zip))
register_format(ModelFormat("h5", "a .h5 Keras model", "edgesdk.intake.handles:KerasHandle", (".h5", ".hdf5"),
                            check=_hdf5))
register_format(ModelFormat("savedmodel", "a SavedModel directory", "edgesdk.intake.handles:SavedModelHandle",
                            marker="saved_model.pb"))
register_format(ModelFormat("tflite", "a .tflite flatbuffer", "edgesdk.intake.handles:TfliteHandle", (".tflite",),
                            check=_tflite, deployable=True))
