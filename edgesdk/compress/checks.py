"""The checks and small helpers of the compression stages: the output, the calibration samples, a
result that must run, the weight storage an fp16 .tflite keeps."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import data as datamod
from .. import evaluate
from ..errors import DataError, OutputError, RecipeError
from ..fileio import check_outputs, make_dirs
from ..intake import ModelHandle, ModelSource
from ..kinds import ModelForm
from ..profiles import Profile
from ..techniques import REGISTRY, Recipe
from ..tflite import facts

log = logging.getLogger(__name__)

CALIBRATION_SAMPLES = 200


def versions() -> dict[str, str]:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    return {"tensorflow": tf.__version__, "tfmot": tfmot.__version__}


def config_hash(source: ModelSource, recipe: Recipe, profile: Profile, data: datamod.Dataset | None,
                 train: datamod.Dataset | None, epochs: int, seed: int) -> str:
    text = json.dumps({"model": source.sha256, "recipe": str(recipe), "profile": profile.model_dump(mode="json"),
                       "data": data.sha256 if data else None, "train": train.sha256 if train else None,
                       "epochs": epochs, "seed": seed,
                       "versions": versions()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def inputs_of(handle: ModelHandle, float_report: facts.ModelReport) -> list[tuple[str, list[int]]]:
    """(name, shape) of each model input; a Keras model's first input, with its own batch dimension."""
    first = float_report.inputs[0]
    if handle.form == ModelForm.KERAS:
        shape = handle.keras().inputs[0].shape
        return [(first.name, [-1 if s is None else int(s) for s in shape])]
    return [(t.name, list(t.shape)) for t in float_report.inputs]


def calibration(x_train: Any, inputs: list[tuple[str, list[int]]], seed: int) -> Any:
    """Up to CALIBRATION_SAMPLES training inputs in a seeded order (the same order for every input), or
    random ones without data."""
    if x_train is None:
        shapes = [shape for _, shape in inputs]
        return datamod.random_calibration(shapes[0] if len(shapes) == 1 else shapes, seed=seed)
    arrays = [x_train] if isinstance(x_train, np.ndarray) else x_train
    order = np.random.default_rng(seed).permutation(len(arrays[0]))[:CALIBRATION_SAMPLES]
    picked = [a[order] for a in arrays]
    return picked[0] if isinstance(x_train, np.ndarray) else picked


def check_output(output: Path, inputs: list[Path], suffix: str = ".tflite") -> None:
    """Refuse an output that would overwrite one of the inputs (also through links) or is of the wrong kind.

    Raises:
        OutputError: naming the output and why.
    """
    if output.suffix.lower() != suffix:
        raise OutputError(f"{output}: the output must be a {suffix} file. Received: "
                          f"{output.suffix or 'no suffix'!r}")
    if output.is_dir():
        raise OutputError(f"{output}: the output is a directory; name a {suffix} file")
    make_dirs(output.parent)
    try:  # fail now, not after minutes of compression
        tempfile.TemporaryFile(dir=output.parent).close()
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(output)) from exc
    check_outputs([output], inputs)


OVERFLOW_CHECK = 1e15   # calibration values beyond this size are run through the float model first


def check_calibration(float_bytes: bytes, samples: Any) -> None:
    """Samples whose values drive the float model's activations to infinity crash the converter's
    quantizer (a segfault): refused, naming the tensor. Only samples with values beyond
    ``OVERFLOW_CHECK`` are run (ordinary data is nowhere near float32's range).

    Raises:
        DataError: a tensor overflows.
    """
    arrays = [samples] if isinstance(samples, np.ndarray) else list(samples)
    if max((float(np.abs(a).max(initial=0)) for a in arrays if a.dtype.kind == "f"), default=0) <= OVERFLOW_CHECK:
        return
    where = evaluate.first_overflow(float_bytes, samples)
    if where is not None:
        raise DataError(f"the calibration data overflows the float model: tensor {where} is infinite or NaN "
                        "(values up to float32's limit); scale the inputs as the model expects")


def keep_fp16(handle: ModelHandle, rec: Recipe, content: bytes) -> bytes:
    """A .tflite that stores its weights as fp16 keeps that storage for the float32 weights a step left
    (weight-only and dynamic-range leave the small ones, mixed its float layers): they go back to fp16,
    which loses nothing where the step did not change them. An explicit fp32 asks for float32. Where
    the runtime would not run the result, the float32 one stays."""
    spec = REGISTRY[rec.convert.name].precision
    if not handle.fp16_weights or spec is None or not spec.keeps_storage:
        return content
    from ..errors import ModelError
    from ..tflite import graph, runnable

    try:
        kept = graph.cast_fp16(content)
    except ModelError:  # no float32 weight left
        return content
    return content if runnable.check(kept).broken else kept


def larger(given: bytes, made: bytes) -> str | None:
    """Why the output is larger than the .tflite it came from (None: it is not), by weight storage."""
    if len(made) <= len(given):
        return None
    before, after = facts.weight_storage(given), facts.weight_storage(made)

    def text(by_type: dict[str, int]) -> str:
        return ", ".join(f"{kind} {size:,} B" for kind, size in sorted(by_type.items(), key=lambda kv: -kv[1])) \
            or "none"
    why = (f"its weights are stored as {text(after)}, the input's as {text(before)}"
           if sum(after.values()) > sum(before.values()) else
           f"its weights take {sum(after.values()):,} B against the input's {sum(before.values()):,} B; the rest is "
           "the operators and quantization parameters the recipe adds")
    return f"the output ({len(made):,} B) is larger than the input ({len(given):,} B): {why}"


def no_kernel(rec: Recipe, handle: ModelHandle, float_bytes: bytes) -> bool:
    """Whether the model cannot run here because a custom operator has no kernel (some have one, e.g.
    TFLite_Detection_PostProcess).

    Raises:
        RecipeError: a step of ``rec`` runs the model on samples (the one refusal for every such step,
            with data or without), naming the steps that apply.
    """
    from ..tflite import runnable

    if not runnable.check(float_bytes).custom:
        return False
    needs = [str(s) for s in rec.steps if REGISTRY[s.name].runs_model]
    if needs:
        apply = [t.name for t in REGISTRY.values() if handle.form in t.forms and not t.runs_model]
        raise RecipeError(f"{', '.join(needs)} runs the model on samples, and its custom operators "
                          f"({', '.join(handle.custom_ops)}) have no kernel here; the steps that need no run apply: "
                          f"{', '.join(apply)}")
    return True


def runs(rec: Recipe, converted: bytes, final: bytes, custom_ops: list[str]) -> list[str]:
    """Load and invoke the result once on the host's interpreter; a model that does not run is never
    written: the step that made it is named with the runtime's reason. A custom operator without a kernel
    here is said (the model cannot be run on this host), not refused.

    Raises:
        RecipeError: the runtime refuses or crashes on the result.
    """
    from ..tflite import runnable

    smoke = runnable.check(final)
    if smoke.custom:
        ops = f" ({', '.join(custom_ops)})" if custom_ops else ""
        return [f"not run on this host: its custom operators{ops} have no kernel here; run it where they do"]
    if not smoke.broken:
        return []
    blame = rec.convert if final is converted or not rec.post_steps or runnable.check(converted).broken \
        else rec.post_steps[-1]
    raise RecipeError(f"recipe {rec}: the model {blame} made does not run on LiteRT ({smoke.error}); "
                      "nothing was written")
