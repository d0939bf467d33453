"""strip: drop tensor names, the description and signatures (a smaller file for flash-limited targets)."""

from __future__ import annotations

from ..kinds import StepKind
from .base import ANY_FORM, Technique, dimension, no_value, register

dimension("post", "steps on the written file (strip)", optional=True, option=False)


def strip_strings(content: bytes) -> bytes:
    """Remove tensor names, the description and signatures with TFLite's own flatbuffer tool."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


register(Technique("strip", StepKind.POST, "drop tensor names and signatures: a smaller file for flash-limited targets",
                   no_value("strip"), dimension="post", forms=ANY_FORM, improves=frozenset({"size"}),
                   apply=lambda tflite, step, ctx: strip_strings(tflite)))
