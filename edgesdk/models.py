"""Model intake: identify and fingerprint every input format, load Keras models, convert to TFLite.

Formats: ``.keras`` (Keras 3, or Keras 2 zips), ``.h5`` (Keras 2), SavedModel directories and
``.tflite``. Everything below the CLI gets Keras models as tf_keras models (Keras 3 ones are bridged
here, once), because TFMOT and the converter's Keras path speak tf_keras only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError

log = logging.getLogger(__name__)

FORMATS = ("keras", "h5", "savedmodel", "tflite")
EXPECTED = "a .keras or .h5 Keras model, a SavedModel directory, or a .tflite flatbuffer"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class ModelSource:
    """A model file the user handed us: where it is, what it is, and its sha256 fingerprint."""

    path: Path
    format: str
    sha256: str
    size_bytes: int

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}. Received: {self.format!r}")


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_dir(path: Path) -> tuple[str, int]:
    digest, total = hashlib.sha256(), 0
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix().encode()
        digest.update(len(rel).to_bytes(4, "little") + rel)
        digest.update(bytes.fromhex(_hash_file(file)))
        total += file.stat().st_size
    return digest.hexdigest(), total


def identify(path: str | os.PathLike[str]) -> ModelSource:
    """Check that ``path`` is a model of a supported format and fingerprint it.

    Raises:
        ModelError: missing, empty, corrupt or unsupported file, naming the file and what was expected.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such file; expected {EXPECTED}")
    if p.is_dir():
        if not (p / "saved_model.pb").is_file():
            raise ModelError(f"{p}: a directory without saved_model.pb is not a SavedModel; expected {EXPECTED}")
        sha, size = _hash_dir(p)
        return ModelSource(p, "savedmodel", sha, size)
    size = p.stat().st_size
    if size == 0:
        raise ModelError(f"{p}: the file is empty; expected {EXPECTED}")
    with p.open("rb") as fh:
        head = fh.read(8)
    suffix = p.suffix.lower()
    if suffix == ".tflite":
        if head[4:8] != b"TFL3":
            raise ModelError(f"{p}: not a TFLite flatbuffer (no TFL3 identifier); the file is corrupt "
                             "or not a .tflite model")
        fmt = "tflite"
    elif suffix == ".keras":
        if not zipfile.is_zipfile(p):
            raise ModelError(f"{p}: not a valid .keras file (a .keras model is a zip archive); "
                             "the file is corrupt or truncated")
        fmt = "keras"
    elif suffix in (".h5", ".hdf5"):
        if head != _HDF5_MAGIC:
            raise ModelError(f"{p}: not an HDF5 file; the file is corrupt or not a Keras .h5 model")
        fmt = "h5"
    else:
        raise ModelError(f"{p}: unsupported model format {suffix or '(no extension)'!r}; expected {EXPECTED}")
    return ModelSource(p, fmt, _hash_file(p), size)


def _keras_version(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("metadata.json"))
        return str(meta.get("keras_version", "3"))
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: the .keras archive has no readable metadata.json ({exc}); "
                         "the file is corrupt or was not saved by Keras") from exc


def load_keras(source: ModelSource) -> Any:
    """Load a Keras model as a tf_keras model (bridging Keras 3 models).

    Raises:
        ModelError: the file cannot be loaded, or a SavedModel/tflite carries no Keras model.
    """
    import tf_keras

    from . import bridge

    path = str(source.path)
    if source.format == "tflite":
        raise ModelError(f"{path}: a .tflite model carries no Keras graph; training-based techniques "
                         "(prune, cluster, qat) and re-quantization need the float Keras or SavedModel source")
    try:
        if source.format == "keras" and not _keras_version(source.path).startswith("2."):
            import keras

            return bridge.to_tf_keras(keras.models.load_model(path, compile=False))
        if source.format == "savedmodel":
            return tf_keras.models.load_model(path, compile=False)
        try:
            return tf_keras.models.load_model(path, compile=False)
        except Exception:  # noqa: BLE001 - an .h5 written by Keras 3 needs the bridge
            if source.format != "h5":
                raise
            import keras

            return bridge.to_tf_keras(keras.models.load_model(path, compile=False))
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - loaders raise anything on a bad file
        if source.format == "savedmodel":
            raise ModelError(f"{path}: the SavedModel has no Keras model in it ({type(exc).__name__}); "
                             "only quantization recipes (fp32, dynamic, fp16, int8, int16x8) apply") from exc
        raise ModelError(f"{path}: cannot load as a {source.format} Keras model: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc


def load_source(source: ModelSource) -> Any:
    """The object a TFLite converter is built from: a tf_keras model, or a SavedModel path."""
    from ._native import quiet

    with quiet():
        return _load_source(source)


def _load_source(source: ModelSource) -> Any:
    if source.format == "savedmodel":
        try:
            return load_keras(source)
        except ModelError:
            return str(source.path)
    return load_keras(source)
