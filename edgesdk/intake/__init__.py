"""Model intake: identify a model file (:mod:`.source`) and open it as a handle (:mod:`.handles`) that
gives the pipeline its float .tflite and, where it has one, its Keras graph. A new format is a handle
class plus its entry in ``HANDLES`` (and its suffix in :func:`identify`)."""

from __future__ import annotations

import os

from .handles import HANDLES, KerasHandle, ModelHandle, SavedModelHandle, TfliteHandle
from .source import EXPECTED, FORMATS, TRUST_FLAG, ModelSource, code_layers, identify, load_keras, refuse_code


def open_model(path: str | os.PathLike[str] | ModelSource, *, trust_code: bool = False) -> ModelHandle:
    """Identify ``path`` and open it as the handle of its format.

    Raises:
        ModelError: missing, empty, corrupt or unsupported file.
    """
    source = path if isinstance(path, ModelSource) else identify(path)
    return HANDLES[source.format](source, trust_code)


__all__ = ["EXPECTED", "FORMATS", "HANDLES", "TRUST_FLAG", "KerasHandle", "ModelHandle", "ModelSource",
           "SavedModelHandle", "TfliteHandle", "code_layers", "identify", "load_keras", "open_model", "refuse_code"]
