"""Apply a recipe to a model for a profile: load, transform, convert, check, evaluate, write, record."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import data as datamod
from . import evaluate, feasibility, interrupt
from .errors import DataError, OutputError, RecipeError
from .fileio import check_outputs, make_dirs, write_atomic
from .intake import ModelHandle, ModelSource, open_model
from .kinds import ModelForm
from .profiles import Profile, load_profile
from .progress import Event, Progress
from .techniques import FLATBUFFER_FORMS, REGISTRY, Context, Recipe, parse_recipe
from .tflite import facts

log = logging.getLogger(__name__)

CALIBRATION_SAMPLES = 200


@dataclass(frozen=True)
class CompressResult:
    """What a compression produced; ``to_dict`` is what the CLI prints with --json and the store keeps."""

    output: str
    sha256: str
    model_bytes: int
    gzip_bytes: int
    recipe: str
    profile: str
    precision: str
    source: str
    source_sha256: str
    config_hash: str
    quality: dict[str, Any] | None
    fit: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    weight_bytes: int = 0                 # raw bytes of the constant tensors
    weight_entropy_bytes: int = 0         # their ideal entropy-coded size (facts.weight_entropy_bytes)
    target: dict[str, Any] | None = None  # MCU/NPU facts: TFLM arena, flash, Vela or Edge TPU placement

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _versions() -> dict[str, str]:
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot

    return {"tensorflow": tf.__version__, "tfmot": tfmot.__version__}


def _config_hash(source: ModelSource, recipe: Recipe, profile: Profile, data: datamod.Dataset | None,
                 train: datamod.Dataset | None, epochs: int, seed: int) -> str:
    text = json.dumps({"model": source.sha256, "recipe": str(recipe), "profile": profile.model_dump(mode="json"),
                       "data": data.sha256 if data else None, "train": train.sha256 if train else None,
                       "epochs": epochs, "seed": seed,
                       "versions": _versions()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _inputs(handle: ModelHandle, float_report: facts.ModelReport) -> list[tuple[str, list[int]]]:
    """(name, shape) of each model input; a Keras model's first input, with its own batch dimension."""
    first = float_report.inputs[0]
    if handle.form == ModelForm.KERAS:
        shape = handle.keras().inputs[0].shape
        return [(first.name, [-1 if s is None else int(s) for s in shape])]
    return [(t.name, list(t.shape)) for t in float_report.inputs]


def _calibration(x_train: Any, inputs: list[tuple[str, list[int]]], seed: int) -> Any:
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


def _check_calibration(float_bytes: bytes, samples: Any) -> None:
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


def _keep_fp16(handle: ModelHandle, rec: Recipe, content: bytes) -> bytes:
    """A .tflite that stores its weights as fp16 keeps that storage for the float32 weights a step left
    (weight-only and dynamic-range leave the small ones, mixed its float layers): they go back to fp16,
    which loses nothing where the step did not change them. An explicit fp32 asks for float32. Where
    the runtime would not run the result, the float32 one stays."""
    if not handle.fp16_weights or rec.convert.name in ("fp32", "fp16"):
        return content
    from .errors import ModelError
    from .tflite import graph, runnable

    try:
        kept = graph.cast_fp16(content)
    except ModelError:  # no float32 weight left
        return content
    return content if runnable.check(kept).broken else kept


def _larger(given: bytes, made: bytes) -> str | None:
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


def _no_kernel(rec: Recipe, handle: ModelHandle, float_bytes: bytes) -> bool:
    """Whether the model cannot run here because a custom operator has no kernel (some have one, e.g.
    TFLite_Detection_PostProcess).

    Raises:
        RecipeError: a step of ``rec`` runs the model on samples (the one refusal for every such step,
            with data or without), naming the steps that apply.
    """
    from .tflite import runnable

    if not runnable.check(float_bytes).custom:
        return False
    needs = [str(s) for s in rec.steps if REGISTRY[s.name].runs_model]
    if needs:
        apply = [t.name for t in REGISTRY.values() if handle.form in t.forms and not t.runs_model]
        raise RecipeError(f"{', '.join(needs)} runs the model on samples, and its custom operators "
                          f"({', '.join(handle.custom_ops)}) have no kernel here; the steps that need no run apply: "
                          f"{', '.join(apply)}")
    return True


def _runs(rec: Recipe, converted: bytes, final: bytes, custom_ops: list[str]) -> list[str]:
    """Load and invoke the result once on the host's interpreter; a model that does not run is never
    written: the step that made it is named with the runtime's reason. A custom operator without a kernel
    here is said (the model cannot be run on this host), not refused.

    Raises:
        RecipeError: the runtime refuses or crashes on the result.
    """
    from .tflite import runnable

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


@interrupt.watched
def compress(model: str | os.PathLike[str], profile: str | Profile, recipe: str | Recipe,
             output: str | os.PathLike[str], data: str | os.PathLike[str] | None = None, *,
             train_data: str | os.PathLike[str] | None = None, epochs: int = 2, seed: int = 0, store: Any = None,
             progress: Progress | None = None, trust_model_code: bool = False) -> CompressResult:
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

    def say(text: str) -> None:
        emit(Event(text))

    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    rec = recipe if isinstance(recipe, Recipe) else parse_recipe(recipe)
    problem = feasibility.precision_problem(prof, rec.convert)
    if problem:
        raise RecipeError(f"recipe {rec} is refused: {problem}")
    handle = open_model(model, trust_code=trust_model_code)
    source = handle.source
    form = handle.form
    if form == ModelForm.INTEGER and not rec.stated:  # no precision named: an integer model keeps its own
        rec = Recipe(rec.keras_steps, parse_recipe("int8").convert, rec.post_steps)
    if form == ModelForm.TFLITE and not rec.stated and handle.fp16_weights:  # and fp16 weights stay fp16
        rec = Recipe(rec.keras_steps, parse_recipe("fp16").convert, rec.post_steps)
    for step in rec.steps:  # before any work: a step that cannot take this model says so, with the form
        handle.accept(REGISTRY[step.name])
    flat = form in FLATBUFFER_FORMS
    check_output(Path(output), [source.path, *(Path(d) for d in (data, train_data) if d is not None)])
    dataset = datamod.load_npz(data) if data is not None else None
    trainset = datamod.load_npz(train_data) if train_data is not None else dataset
    warnings: list[str] = []

    say(f"loading {source.path} ({source.format})")
    from .techniques.training import FineTune

    say("reading the .tflite" if flat else "converting the float reference")
    float_bytes = handle.float_tflite()
    for change in handle.changes:
        say(f"normalized: {change}")
    float_report = facts.analyze(str(source.path), data=float_bytes)
    unrunnable = bool(handle.custom_ops) and _no_kernel(rec, handle, float_bytes)
    if unrunnable and (dataset or trainset):
        warnings.append(f"its custom operators ({', '.join(handle.custom_ops)}) have no kernel here, so it cannot "
                        "be run on this host: the data is not used and quality is not measured")
        dataset = trainset = None
    inputs = _inputs(handle, float_report)
    x = datamod.inputs_for(dataset, inputs) if dataset else None
    x_train = datamod.inputs_for(trainset, inputs) if trainset else None
    output_shape, output_name = float_report.outputs[0].shape, float_report.outputs[0].name
    labels = datamod.labels_for(dataset, output_shape, output_name) if dataset else None
    train_labels = labels if trainset is dataset else \
        datamod.labels_for(trainset, output_shape, output_name) if trainset else None
    reference = evaluate.predict(float_bytes, x) if x is not None else None

    tune = None
    one_shot = [s.name for s in rec.keras_steps if REGISTRY[s.name].fine_tuned]
    if flat and one_shot and trainset is not None and epochs > 0:
        warnings.append(f"a .tflite has no training graph: {', '.join(one_shot)} applied one-shot, without "
                        "fine-tuning (give the Keras source to fine-tune)")
    if not flat and x_train is not None and trainset is not None and epochs > 0 and rec.keras_steps:
        teacher = reference if trainset is dataset and reference is not None else evaluate.predict(float_bytes, x_train)
        assert isinstance(x_train, np.ndarray)  # a Keras model: its first input
        tune = FineTune(x=x_train, y=train_labels, teacher=teacher, epochs=epochs, seed=seed)
        if trainset is dataset:
            warnings.append("fine-tuned and evaluated on the same --data: the quality reported is optimistic; "
                            "pass --train-data to keep them apart")
    samples = _calibration(x_train, inputs, seed) if x_train is not None else None  # real data only
    ctx = Context(rec, tune, samples, say)
    for step in rec.keras_steps:
        prepare = REGISTRY[step.name].prepare
        if prepare is not None:
            prepare(step, ctx)
    if not flat and ctx.tune is None and any(REGISTRY[s.name].fine_tuned for s in rec.keras_steps):
        warnings.append("no training data (or --epochs 0): pruning/clustering applied one-shot without fine-tuning")
    current = float_bytes if flat else handle.keras() if rec.keras_steps else handle.converter_source()
    for step in rec.keras_steps:
        say(f"applying {step}")
        current = REGISTRY[step.name].on(form)(current, step, ctx)
    conversion = REGISTRY[rec.convert.name]
    if conversion.calibrated and form != ModelForm.INTEGER:
        ctx.calibration = samples if samples is not None else _calibration(None, inputs, seed)
        if x_train is None:
            warnings.append(datamod.RANDOM_WARNING)
        _check_calibration(float_bytes, ctx.calibration)
    else:
        ctx.calibration = None
    say(f"converting ({rec.convert})" if not flat else f"quantizing ({rec.convert})")
    tflite = converted = _keep_fp16(handle, rec, conversion.on(form)(current, rec.convert, ctx))
    for step in rec.post_steps:
        tflite = REGISTRY[step.name].on(form)(tflite, step, ctx)
    say("running the result once on the host's interpreter")
    warnings += _runs(rec, converted, tflite, handle.custom_ops)
    report = facts.analyze(str(output), data=tflite)
    from . import targets

    if targets.applies(prof):
        say(f"assessing on {prof.name} ({prof.npu.compiler if prof.npu else prof.runtime})")
    target = targets.assess(tflite, report, prof)
    checked = feasibility.check(report, prof, target)
    if not checked.ok:
        raise RecipeError(f"recipe {rec} is refused for profile {prof.name}: {'; '.join(checked.problems)}")
    warnings.extend(checked.warnings)
    if report.precision == "fp32" and rec.convert.name in ("dynamic", "fp16"):
        warnings.append(f"{rec.convert} quantized nothing: the model stays float32 (no weight it quantizes; "
                        "dynamic-range leaves weights of fewer than 1024 values float, as the converter does)")

    quality = None
    if x is not None and reference is not None:  # both or neither
        say(f"evaluating on {len(x)} samples")
        quality = evaluate.quality(reference, evaluate.predict(tflite, x), labels,
                                   classifier=evaluate.looks_like_classifier(float_report, labels))
    elif dataset is None and not (unrunnable and (data or train_data)):
        warnings.append("no data: quality not measured")

    if flat and (larger := _larger(handle.as_given(), tflite)):
        warnings.append(larger)
    weights_raw, weights_ideal = facts.weight_entropy_bytes(str(output), data=tflite)
    out = Path(output)
    interrupt.check()   # a Ctrl-C that a destructor swallowed still means: write nothing
    write_atomic(out, tflite)
    result = CompressResult(
        output=str(out), sha256=hashlib.sha256(tflite).hexdigest(), model_bytes=len(tflite),
        gzip_bytes=len(gzip.compress(tflite, compresslevel=9, mtime=0)), recipe=str(rec), profile=prof.name,
        precision=report.precision, source=str(source.path), source_sha256=source.sha256,
        config_hash=_config_hash(source, rec, prof, dataset, trainset, epochs, seed), quality=quality,
        fit=checked.to_dict(), warnings=warnings, weight_bytes=weights_raw, weight_entropy_bytes=weights_ideal,
        target=target.to_dict() if target else None)
    if store is not None:
        store.add_compression(result.to_dict())
    return result

