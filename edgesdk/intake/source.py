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
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError, first_line
from ..fileio import sha256_file
from .formats import MODEL_FORMATS, by_marker, by_suffix, expected

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class ModelSource:
    """A model file the user handed us: where it is, what it is, and its sha256 fingerprint."""

    path: Path
    format: str
    sha256: str
    size_bytes: int

    def __post_init__(self) -> None:
        if self.format not in MODEL_FORMATS:
            raise ValueError(f"format must be one of {', '.join(MODEL_FORMATS)}. Received: {self.format!r}")


def _hash_dir(path: Path) -> tuple[str, int]:
    digest, total = hashlib.sha256(), 0
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix().encode()
        digest.update(len(rel).to_bytes(4, "little") + rel)
        digest.update(bytes.fromhex(sha256_file(file)))
        total += file.stat().st_size
    return digest.hexdigest(), total


def identify(path: str | os.PathLike[str]) -> ModelSource:
    """Check that ``path`` is a model of a registered format (:mod:`.formats`) and fingerprint it.

    Raises:
        ModelError: missing, empty, corrupt or unsupported file, naming the file and what was expected.
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"{p}: no such file; expected {expected()}")
    if p.is_dir():
        found = by_marker(p)
        if found is None:
            markers = " or ".join(f.marker for f in MODEL_FORMATS.values() if f.marker)
            raise ModelError(f"{p}: a directory without {markers} is not a model directory; expected {expected()}")
        sha, size = _hash_dir(p)
        return ModelSource(p, found.name, sha, size)
    size = p.stat().st_size
    if size == 0:
        raise ModelError(f"{p}: the file is empty; expected {expected()}")
    fmt = by_suffix(p.suffix)
    if fmt is None:
        raise ModelError(f"{p}: unsupported model format {p.suffix.lower() or '(no extension)'!r}; expected "
                         f"{expected()}")
    if fmt.check is not None:
        with p.open("rb") as fh:
            fmt.check(p, fh.read(8))
    return ModelSource(p, fmt.name, sha256_file(p), size)


MAX_CONFIG_BYTES = 64 << 20  # a model configuration larger than this is refused (a decompression bomb)
# Packages whose modules a Keras config may name (importing them runs no code from the file); tf_keras
# imports any other module a config names (``serialization_lib._retrieve_class_or_fn``).
_SAFE_PACKAGES = frozenset({"keras", "tf_keras", "keras_hub", "keras_cv", "keras_nlp", "tensorflow", "builtins",
                            "__main__"})


def _zip_member(path: Path, zf: zipfile.ZipFile, name: str) -> bytes | None:
    """One member of a Keras zip, read with a bound (its header may lie about its size); None if absent."""
    try:
        info = zf.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_CONFIG_BYTES:
        raise ModelError(f"{path}: {name} in the archive claims {info.file_size:,} bytes (over "
                         f"{MAX_CONFIG_BYTES >> 20} MiB); the file is corrupt or hostile")
    try:
        with zf.open(info) as fh:
            content = fh.read(MAX_CONFIG_BYTES + 1)
    except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise ModelError(f"{path}: cannot read {name} from the archive ({first_line(exc)}); it is encrypted, "
                         "compressed with a method Keras does not write, or corrupt") from exc
    if len(content) > MAX_CONFIG_BYTES:
        raise ModelError(f"{path}: {name} in the archive decompresses to over {MAX_CONFIG_BYTES >> 20} MiB; "
                         "the file is corrupt or hostile")
    return content


def _json(path: Path, what: str, text: bytes | str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else first_line(exc)
        raise ModelError(f"{path}: {what} is not valid JSON ({reason}); the file is corrupt") from exc


def _keras_version(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            raw = _zip_member(path, zf, "metadata.json")
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelError(f"{path}: the .keras archive cannot be read ({first_line(exc)})") from exc
    if raw is None:
        raise ModelError(f"{path}: the .keras archive has no metadata.json; the file is corrupt or was not "
                         "saved by Keras")
    meta = _json(path, "metadata.json", raw)
    return str(meta.get("keras_version", "3")) if isinstance(meta, dict) else "3"


TRUST_FLAG = "--trust-model-code"


def _savedmodel_metadata(path: Path) -> list[str]:
    """Every Keras metadata string tf_keras reads from a SavedModel: ``keras_metadata.pb`` (TF >= 2.5)
    and, as tf_keras falls back to, the ``user_object.metadata`` of every node of ``saved_model.pb``."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2
    from tf_keras.protobuf import saved_metadata_pb2

    texts: list[str] = []
    try:
        if (path / "keras_metadata.pb").is_file():
            meta = saved_metadata_pb2.SavedMetadata()
            meta.ParseFromString((path / "keras_metadata.pb").read_bytes())
            texts += [node.metadata for node in meta.nodes]
        saved = saved_model_pb2.SavedModel()
        saved.ParseFromString((path / "saved_model.pb").read_bytes())
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelError(f"{path}: the SavedModel's protocol buffers cannot be parsed ({first_line(exc)}); "
                         "the directory is corrupt") from exc
    for graph in saved.meta_graphs:
        texts += [node.user_object.metadata for node in graph.object_graph_def.nodes
                  if node.WhichOneof("kind") == "user_object" and node.user_object.metadata]
    return texts


def _keras_configs(source: ModelSource) -> list[Any]:
    """The model configuration(s) stored in a Keras file, read as data, before any layer is built."""
    texts: list[bytes | str] = []
    if source.format == "h5":
        import h5py

        try:
            with h5py.File(source.path, "r") as fh:
                raw = fh.attrs.get("model_config")
        except OSError as exc:
            raise ModelError(f"{source.path}: cannot read the HDF5 file: {exc}") from exc
        if raw is not None:
            texts = [raw if isinstance(raw, bytes) else str(raw)]
    elif source.format == "keras":
        try:
            with zipfile.ZipFile(source.path) as zf:
                config = _zip_member(source.path, zf, "config.json")
        except (zipfile.BadZipFile, OSError) as exc:
            raise ModelError(f"{source.path}: the .keras archive cannot be read ({first_line(exc)})") from exc
        texts = [] if config is None else [config]
    elif source.format == "savedmodel":
        texts = list(_savedmodel_metadata(source.path))
    return [_json(source.path, "the stored model configuration", text) for text in texts]


def _layer_name(node: dict[str, Any], current: str) -> str:
    """'name (Class)' of a layer's config node, or ``current`` when the node is not a layer."""
    cls, inner = node.get("class_name"), node.get("config")
    name = (inner.get("name") if isinstance(inner, dict) else None) or node.get("name")
    if isinstance(cls, str) and isinstance(name, str):
        return f"{name} ({cls})"
    return current


def _code_in(node: dict[str, Any], layer: str, modules: bool) -> list[str]:
    """What in one config node would run code on loading: a marshalled function (any ``*_type`` key that
    says ``lambda``, a ``__lambda__`` object, a Lambda layer) or a ``module`` outside Keras that tf_keras
    would import."""
    found = []
    cls = node.get("class_name")
    if cls in ("Lambda", "__lambda__"):
        found.append(f"{layer}: a {cls} ({'marshalled Python bytecode' if cls == '__lambda__' else 'Python code'})")
    for key, value in node.items():
        if isinstance(key, str) and key.endswith("_type") and value == "lambda" and cls != "Lambda":
            found.append(f"{layer}: key {key[:-5]!s} ({key}: lambda, marshalled Python bytecode)")
    module = node.get("module")
    if modules and isinstance(module, str) and module.split(".", 1)[0] not in _SAFE_PACKAGES:
        found.append(f"{layer}: key module ({module[:80]!r}, a module loading would import)")
    return found


def code_spots(configs: Any, modules: bool = True) -> list[str]:
    """Every place in a Keras configuration tree whose loading would run code from outside Keras, as
    'layer (Class): what'. Structural: every node is looked at, whatever key holds it (wrapper cells,
    activations and initializers given as functions, nested models); iterative, so depth cannot crash it."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(configs, "model")]
    while stack:
        node, layer = stack.pop()
        if isinstance(node, list):
            stack.extend((item, layer) for item in reversed(node))
        elif isinstance(node, dict):
            layer = _layer_name(node, layer)
            found += _code_in(node, layer, modules)
            stack.extend((value, layer) for value in reversed(list(node.values())))
    first: dict[str, str] = {}  # one finding per layer: the outermost says what runs
    for spot in found:
        first.setdefault(spot.split(": ", 1)[0], spot)
    return list(first.values())


def code_layers(source: ModelSource) -> list[str]:
    """The places in a Keras model file that would run code from the file when loaded (empty: none)."""
    keras3 = source.format == "keras" and not _keras_version(source.path).startswith("2.")
    return code_spots(_keras_configs(source), modules=not keras3)  # Keras 3 imports only its own packages


def refuse_code(source: ModelSource) -> None:
    """Refuse a model file whose layers carry code, naming them and the flag that allows it.

    Raises:
        ModelError: a Lambda layer (marshalled Python bytecode) is in the file.
    """
    found = code_layers(source)
    if found:
        shown = "; ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        raise ModelError(f"{source.path}: {shown}: loading would run code from the file; edgesdk "
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
                         f"{type(exc).__name__}: {first_line(exc)}") from exc
