"""Model intake: identify a model file (:mod:`.source`) and open it as a handle (:mod:`.handles`) that
gives the pipeline its float .tflite and, where it has one, its Keras graph. A new format is a handle
class plus one :func:`~.formats.register_format` line (:mod:`.formats`)."""

from __future__ import annotations

import os

from .formats import MODEL_FORMATS, ModelFormat, expected, register_format
from .handles import KerasHandle, ModelHandle, SavedModelHandle, TfliteHandle
from .source import TRUST_FLAG, ModelSource, code_layers, identify, load_keras, refuse_code


def open_model(path: str | os.PathLike[str] | ModelSource, *, trust_code: bool = False) -> ModelHandle:
    """Identify ``path`` and open it as the handle of its format.

    Raises:
        ModelError: missing, empty, corrupt or unsupported file.
    """
    source = path if isinstance(path, ModelSource) else identify(path)
    handle: ModelHandle = MODEL_FORMATS[source.format].open(source, trust_code)
    return handle


__all__ = ["MODEL_FORMATS", "TRUST_FLAG", "KerasHandle", "ModelFormat", "ModelHandle", "ModelSource", "expected",
           "register_format",
           "SavedModelHandle", "TfliteHandle", "code_layers", "identify", "load_keras", "open_model", "refuse_code"]
