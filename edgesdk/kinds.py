"""The small closed vocabularies edgesdk speaks in, as StrEnums: each equals its text, so JSON, YAML
and the CLI read and write them unchanged."""

from __future__ import annotations

from enum import StrEnum


class Precision(StrEnum):
    """The precisions a profile runs and a conversion step produces (``mixed`` is int8 with exceptions)."""

    FP32 = "fp32"
    FP16 = "fp16"
    DYNAMIC = "dynamic"
    INT8 = "int8"
    INT16X8 = "int16x8"


PRECISIONS: tuple[str, ...] = tuple(p.value for p in Precision)


class StepKind(StrEnum):
    """Where a recipe step works: on the Keras model, at conversion (the precision), on the flatbuffer."""

    KERAS = "keras"
    CONVERT = "convert"
    POST = "post"


class ModelForm(StrEnum):
    """What a model handle can give a technique: a Keras graph, a TensorFlow graph the converter takes
    (a SavedModel), a float .tflite flatbuffer, or an integer one (activations already quantized)."""

    KERAS = "keras"
    SAVEDMODEL = "savedmodel"
    TFLITE = "tflite"
    INTEGER = "integer-tflite"

    @property
    def article(self) -> str:
        return "an" if self.value == "integer-tflite" else "a"

    @property
    def text(self) -> str:
        return {"keras": "Keras", "savedmodel": "SavedModel", "tflite": "float .tflite",
                "integer-tflite": "integer .tflite"}[self.value]


class TrialStatus(StrEnum):
    """What became of one trial of a search."""

    MEASURED = "measured"      # latency from a device
    ESTIMATED = "estimated"    # latency from the predictor (no device)
    REJECTED = "rejected"      # refused before any device time (profile, memory, predicted latency)
    FAILED = "failed"
    REPEAT = "repeat"          # a candidate already tried
    SKIPPED = "skipped"        # a proposal that what earlier trials taught rules out; no work, no budget

# The latency predictor's compute classes: how a precision's kernels are costed (PrecisionSpec.cost).
COST_CLASSES: tuple[str, ...] = ("float", "dynamic", "int8", "int16x8")
