"""Model files: identify and fingerprint every input format, read Keras configurations as data, load
Keras models.

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

from ..errors import ModelError
from ..fileio import sha256_file

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


def _hash_dir(path: Path) -> tuple[str, int]:
    digest, total = hashlib.sha256(), 0
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix().encode()
        digest.update(len(rel).to_bytes(4, "little") + rel)
        digest.update(bytes.fromhex(sha256_file(file)))
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
    return ModelSource(p, fmt, sha256_file(p), size)


def _keras_version(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            meta = json.loads(zf.read("metadata.json"))
        return str(meta.get("keras_version", "3"))
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: the .keras archive has no readable metadata.json ({exc}); "
                         "the file is corrupt or was not saved by Keras") from exc


TRUST_FLAG = "--trust-model-code"


def _keras_configs(source: ModelSource) -> list[Any]:
    """The model configuration(s) stored in a Keras file, read as data, before any layer is built."""
    if source.format == "h5":
        import h5py

        try:
            with h5py.File(source.path, "r") as fh:
                raw = fh.attrs.get("model_config")
        except OSError as exc:
            raise ModelError(f"{source.path}: cannot read the HDF5 file: {exc}") from exc
        texts = [] if raw is None else [raw.decode() if isinstance(raw, bytes) else str(raw)]
    elif source.format == "keras":
        try:
            with zipfile.ZipFile(source.path) as zf:
                texts = [zf.read("config.json").decode("utf-8")] if "config.json" in zf.namelist() else []
        except (zipfile.BadZipFile, UnicodeDecodeError) as exc:
            raise ModelError(f"{source.path}: the .keras archive has no readable config.json ({exc})") from exc
    elif source.format == "savedmodel" and (source.path / "keras_metadata.pb").is_file():
        from tf_keras.protobuf import saved_metadata_pb2

        meta = saved_metadata_pb2.SavedMetadata()
        meta.ParseFromString((source.path / "keras_metadata.pb").read_bytes())
        texts = [node.metadata for node in meta.nodes]
    else:
        texts = []
    configs = []
    for text in texts:
        try:
            configs.append(json.loads(text))
        except ValueError as exc:
            raise ModelError(f"{source.path}: the stored model configuration is not valid JSON ({exc})") from exc
    return configs


def _code_layers(config: Any, found: list[str]) -> list[str]:
    """Layers whose configuration carries Python code (a Lambda's marshalled bytecode): 'name (class)'
    for each. A custom class is not code from the file: the loaders only find classes the running
    program registered itself (Keras 3 imports modules of its own packages only)."""
    if isinstance(config, list):
        for item in config:
            _code_layers(item, found)
    elif isinstance(config, dict):
        cls = config.get("class_name")
        inner: dict[str, Any] = config["config"] if isinstance(config.get("config"), dict) else {}
        if isinstance(cls, str) and (cls in ("Lambda", "__lambda__") or inner.get("function_type") == "lambda"):
            found.append(f"{inner.get('name') or config.get('name') or '?'} ({cls})")
        elif config.get("function_type") == "lambda":  # a Lambda's own config, met apart from its layer
            found.append(f"{config.get('name') or '?'} (Lambda)")
        for value in config.values():
            _code_layers(value, found)
    return found


def code_layers(source: ModelSource) -> list[str]:
    """The layers of a Keras model file that would run code from the file when loaded (empty: none)."""
    return list(dict.fromkeys(_code_layers(_keras_configs(source), [])))


def refuse_code(source: ModelSource) -> None:
    """Refuse a model file whose layers carry code, naming them and the flag that allows it.

    Raises:
        ModelError: a Lambda layer (marshalled Python bytecode) is in the file.
    """
    found = code_layers(source)
    if found:
        shown = ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise ModelError(f"{source.path}: layer {shown} holds Python code that loading would run; edgesdk "
                         f"never runs code from a model file unless told to: pass {TRUST_FLAG} (in a suite file, "
                         "`trust_code: true` on the model) if you trust this file")


def load_keras(source: ModelSource, *, trust_code: bool = False) -> Any:
    """Load a Keras model as a tf_keras model (bridging Keras 3 models).

    The configuration is read as data first: a layer that carries code (a Lambda) is refused unless
    ``trust_code``, because loading it would run that code (tf_keras applies no safe
    mode to .h5 files or SavedModels).

    Raises:
        ModelError: the file cannot be loaded, holds code and ``trust_code`` is false, or a
            SavedModel/tflite carries no Keras model.
    """
    import tf_keras

    from .. import bridge

    path = str(source.path)
    if source.format == "tflite":
        raise ModelError(f"{path}: a .tflite model carries no Keras graph; training-based techniques "
                         "(prune, cluster, qat) and re-quantization need the float Keras or SavedModel source")
    if not trust_code:
        refuse_code(source)
    try:
        if source.format == "keras" and not _keras_version(source.path).startswith("2."):
            import keras

            return bridge.to_tf_keras(keras.models.load_model(path, compile=False, safe_mode=not trust_code))
        if source.format == "savedmodel":
            return tf_keras.models.load_model(path, compile=False)
        try:
            return tf_keras.models.load_model(path, compile=False, safe_mode=not trust_code)
        except Exception:  # noqa: BLE001 - an .h5 written by Keras 3 needs the bridge
            if source.format != "h5":
                raise
            import keras

            return bridge.to_tf_keras(keras.models.load_model(path, compile=False, safe_mode=not trust_code))
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - loaders raise anything on a bad file
        if source.format == "savedmodel":
            raise ModelError(f"{path}: the SavedModel has no Keras model in it ({type(exc).__name__}); "
                             "only quantization recipes (fp32, dynamic, fp16, int8, int16x8) apply") from exc
        raise ModelError(f"{path}: cannot load as a {source.format} Keras model: "
                         f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from exc
