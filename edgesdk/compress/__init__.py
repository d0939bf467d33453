"""Apply a recipe to a model for a profile: open, load, transform, convert, check, evaluate, write,
record (:mod:`.stages`, one function each)."""

from __future__ import annotations

import logging
import os
from typing import Any

from .. import interrupt
from ..profiles import Profile
from ..progress import Event, Progress
from ..techniques import Recipe
from ..techniques.training import DEFAULT_EPOCHS
from . import stages
from .checks import CALIBRATION_SAMPLES, check_output
from .result import CompressResult

log = logging.getLogger(__name__)


@interrupt.watched
def compress(model: str | os.PathLike[str], profile: str | Profile, recipe: str | Recipe,
             output: str | os.PathLike[str], data: str | os.PathLike[str] | None = None, *,
             train_data: str | os.PathLike[str] | None = None, epochs: int = DEFAULT_EPOCHS, seed: int = 0,
             store: Any = None, progress: Progress | None = None, trust_model_code: bool = False) -> CompressResult:
    """Compress ``model`` with ``recipe`` for ``profile`` and write the .tflite to ``output``.

    Args:
        model: a .keras, .h5, SavedModel directory or .tflite; each step must accept the model's form
            (:class:`edgesdk.intake.ModelHandle`): a .tflite takes the conversions and the weight-space
            steps, with no fine-tuning; an integer .tflite keeps its precision (int8, int8=io, prune,
            cluster, strip).
        profile: a profile name, path, or :class:`Profile`.
        recipe: e.g. ``"prune=0.5,cluster=16,int8"``.
        output: where to write the .tflite; written only if everything succeeded.
        data: an .npz with ``x`` (or one array named after each input of a model with several) and
            optional ``y``; used to evaluate, and to calibrate and fine-tune unless ``train_data`` is given.
        train_data: an .npz to calibrate and fine-tune on, kept apart from the evaluation data.
        epochs: fine-tuning epochs for prune/cluster/qat when data is given (0 disables).
        store: a :class:`edgesdk.store.Store` to record the result in, or None.
        progress: called with an :class:`edgesdk.progress.Event` as each stage starts.
        trust_model_code: load layers that carry Python code (Lambda layers); refused otherwise.

    Raises:
        ModelError, ProfileError, RecipeError, DataError, OutputError: with a one-line reason; nothing
            is written.
    """
    emit = progress or (lambda event: log.info(event.text))
    job = stages.open_job(model, profile, recipe, output, data, train_data, trust_model_code,
                          lambda text: emit(Event(text)))
    job.epochs, job.seed = epochs, seed
    warnings = stages.load(job)
    current, ctx, found = stages.transform(job)
    converted, tflite, made = stages.convert(job, current, ctx)
    report, target, checked, fits = stages.check(job, tflite)
    quality, measured = stages.evaluate(job, tflite)
    result = stages.write(job, tflite, report, target, checked, quality, warnings + found + made + fits + measured)
    if store is not None:
        store.add_compression(result.to_dict())
    return result


__all__ = ["CALIBRATION_SAMPLES", "CompressResult", "check_output", "compress"]
