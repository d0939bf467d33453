"""The stages of a compression, in order: open, load, transform, convert, check, evaluate, write. Each
reads and fills one :class:`Job` and returns the warnings it has for the user."""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import data as datamod
from .. import evaluate as evaluation
from .. import feasibility, interrupt
from ..errors import RecipeError
from ..feasibility import Feasibility
from ..fileio import write_atomic
from ..intake import ModelHandle, open_model
from ..kinds import ModelForm, Precision
from ..profiles import Profile, load_profile
from ..quality import LOW_FIDELITY_DB
from ..techniques import FLATBUFFER_FORMS, REGISTRY, Context, Recipe, parse_recipe, parse_step
from ..techniques.training import DEFAULT_EPOCHS
from ..tflite import facts
from . import checks
from .result import CompressResult

GENERATED_SAMPLES = 32   # inputs the fidelity to the original is measured on without data

PathLike = str | os.PathLike[str]


@dataclass
class Job:
    """One compression: what it was asked, and what each stage found."""

    prof: Profile
    rec: Recipe
    handle: ModelHandle
    output: Path
    say: Callable[[str], None]
    epochs: int = DEFAULT_EPOCHS
    seed: int = 0
    dataset: datamod.Dataset | None = None
    trainset: datamod.Dataset | None = None
    data_given: bool = False
    float_bytes: bytes = b""
    float_report: facts.ModelReport | None = None
    unrunnable: bool = False                    # custom operators without a kernel here
    inputs: list[tuple[str, list[int]]] = field(default_factory=list)
    x: Any = None
    x_train: Any = None
    labels: Any = None
    train_labels: Any = None
    reference: Any = None                       # the float model's outputs on x, by output name

    @property
    def flat(self) -> bool:
        return self.handle.form in FLATBUFFER_FORMS


def open_job(model: PathLike, profile: str | Profile, recipe: str | Recipe, output: PathLike, data: PathLike | None,
             train_data: PathLike | None, trust_model_code: bool, say: Callable[[str], None]) -> Job:
    """Check everything that can be checked before any work: the recipe against the profile and the
    model's form, the output, the data files."""
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    rec = recipe if isinstance(recipe, Recipe) else parse_recipe(recipe)
    problem = feasibility.precision_problem(prof, rec.convert)
    if problem:
        raise RecipeError(f"recipe {rec} is refused: {problem}")
    handle = open_model(model, trust_code=trust_model_code)
    if not rec.stated and handle.own_precision:  # no precision named: a .tflite keeps its own (int8, fp16 weights)
        rec = Recipe(rec.keras_steps, parse_step(handle.own_precision), rec.post_steps)
    for step in rec.steps:  # a step that cannot take this model says so, with the form
        handle.accept(REGISTRY[step.name])
    checks.check_output(Path(output), [handle.source.path, *(Path(d) for d in (data, train_data) if d is not None)])
    dataset = datamod.load_npz(data) if data is not None else None
    trainset = datamod.load_npz(train_data) if train_data is not None else dataset
    return Job(prof, rec, handle, Path(output), say, dataset=dataset, trainset=trainset,
               data_given=data is not None or train_data is not None)


def load(job: Job) -> list[str]:
    """The float reference model, its report, the inputs and labels, and the reference outputs."""
    handle, source = job.handle, job.handle.source
    job.say(f"loading {source.path} ({source.format})")
    job.say("reading the .tflite" if job.flat else "converting the float reference")
    job.float_bytes = handle.float_tflite()
    for change in handle.changes:
        job.say(f"normalized: {change}")
    report = job.float_report = facts.analyze(str(source.path), data=job.float_bytes)
    warnings = []
    job.unrunnable = bool(handle.custom_ops) and checks.no_kernel(job.rec, handle, job.float_bytes)
    if job.unrunnable and (job.dataset or job.trainset):
        warnings.append(f"its custom operators ({', '.join(handle.custom_ops)}) have no kernel here, so it cannot "
                        "be run on this host: the data is not used and quality is not measured")
        job.dataset = job.trainset = None
    job.inputs = checks.inputs_of(handle, report)
    job.x = datamod.inputs_for(job.dataset, job.inputs) if job.dataset else None
    job.x_train = datamod.inputs_for(job.trainset, job.inputs) if job.trainset else None
    shape, name = report.outputs[0].shape, report.outputs[0].name
    job.labels = datamod.labels_for(job.dataset, shape, name) if job.dataset else None
    job.train_labels = job.labels if job.trainset is job.dataset else \
        datamod.labels_for(job.trainset, shape, name) if job.trainset else None
    job.reference = evaluation.predict_outputs(job.float_bytes, job.x) if job.x is not None else None
    return warnings


def _fine_tuning(job: Job) -> tuple[Any, list[str]]:
    """How the Keras steps fine-tune (None: one-shot), and what the user should know about it."""
    from ..techniques.training import FineTune

    warnings = []
    one_shot = [s.name for s in job.rec.keras_steps if REGISTRY[s.name].fine_tuned]
    if job.flat and one_shot and job.trainset is not None and job.epochs > 0:
        warnings.append(f"a .tflite has no training graph: {', '.join(one_shot)} applied one-shot, without "
                        "fine-tuning (give the Keras source to fine-tune)")
    if job.flat or job.x_train is None or job.trainset is None or job.epochs <= 0 or not job.rec.keras_steps:
        return None, warnings
    same = job.trainset is job.dataset
    teacher = next(iter(job.reference.values())) if same and job.reference is not None else \
        evaluation.predict(job.float_bytes, job.x_train)
    assert isinstance(job.x_train, np.ndarray)  # a Keras model: its first input
    if same:
        warnings.append("fine-tuned and evaluated on the same --data: the quality reported is optimistic; "
                        "pass --train-data to keep them apart")
    return FineTune(x=job.x_train, y=job.train_labels, teacher=teacher, epochs=job.epochs, seed=job.seed), warnings


def transform(job: Job) -> tuple[Any, Context, list[str]]:
    """The Keras-level and weight-space steps, in order; the model they leave and the steps' context."""
    tune, warnings = _fine_tuning(job)
    samples = checks.calibration(job.x_train, job.inputs, job.seed) if job.x_train is not None else None
    ctx = Context(job.rec, tune, samples, job.say)
    for step in job.rec.keras_steps:
        prepare = REGISTRY[step.name].prepare
        if prepare is not None:
            prepare(step, ctx)
    if not job.flat and ctx.tune is None and any(REGISTRY[s.name].fine_tuned for s in job.rec.keras_steps):
        warnings.append("no training data (or --epochs 0): pruning/clustering applied one-shot without fine-tuning")
    handle = job.handle
    current = job.float_bytes if job.flat else handle.keras() if job.rec.keras_steps else handle.converter_source()
    for step in job.rec.keras_steps:
        if REGISTRY[step.name].transforms:
            job.say(f"applying {step}")
            current = REGISTRY[step.name].on(handle.form)(current, step, ctx)
    return current, ctx, warnings


def convert(job: Job, current: Any, ctx: Context) -> tuple[bytes, bytes, list[str]]:
    """The conversion step, then the post steps: the converted model, the final one, and the warnings
    (random calibration; the smoke run's)."""
    rec, form, warnings = job.rec, job.handle.form, []
    conversion = REGISTRY[rec.convert.name]
    if conversion.calibrated and form != ModelForm.INTEGER:
        if ctx.calibration is None:
            ctx.calibration = checks.calibration(None, job.inputs, job.seed)
        if job.x_train is None:
            warnings.append(datamod.RANDOM_WARNING)
        checks.check_calibration(job.float_bytes, ctx.calibration)
    else:
        ctx.calibration = None
    job.say(f"converting ({rec.convert})" if not job.flat else f"quantizing ({rec.convert})")
    tflite = converted = checks.keep_fp16(job.handle, rec, conversion.on(form)(current, rec.convert, ctx))
    for step in rec.post_steps:
        tflite = REGISTRY[step.name].on(form)(tflite, step, ctx)
    job.say("running the result once on the host's interpreter")
    return converted, tflite, warnings + checks.runs(rec, converted, tflite, job.handle.custom_ops)


def check(job: Job, tflite: bytes) -> tuple[facts.ModelReport, Any, Feasibility, list[str]]:
    """The result against the profile (and its target's compiler or arena planner).

    Raises:
        RecipeError: the result does not fit the profile.
    """
    from .. import targets

    prof, rec = job.prof, job.rec
    report = facts.analyze(str(job.output), data=tflite)
    if targets.applies(prof):
        job.say(f"assessing on {prof.name} ({prof.npu.compiler if prof.npu else prof.runtime})")
    target = targets.assess(tflite, report, prof)
    checked = feasibility.check(report, prof, target)
    if not checked.ok:
        raise RecipeError(f"recipe {rec} is refused for profile {prof.name}: {'; '.join(checked.problems)}")
    warnings = list(checked.warnings)
    spec = REGISTRY[rec.convert.name].precision
    if report.precision == Precision.FP32 and spec is not None and spec.nothing_note:
        warnings.append(f"{rec.convert} quantized nothing: the model stays float32 ({spec.nothing_note})")
    if job.flat and (why := checks.larger(job.handle.as_given(), tflite)):
        warnings.append(why)
    return report, target, checked, warnings


def evaluate(job: Job, tflite: bytes) -> tuple[dict[str, Any] | None, list[str]]:
    """The result's quality against the float model on the data (None without data)."""
    if job.x is not None and job.reference is not None:  # both or neither
        job.say(f"evaluating on {len(job.x)} samples")
        assert job.float_report is not None
        classifier = evaluation.looks_like_classifier(job.float_report, job.labels)
        return evaluation.quality(job.reference, evaluation.predict_outputs(tflite, job.x), job.labels,
                                  classifier=classifier), []
    if job.dataset is None and not job.unrunnable:
        return _fidelity_on_generated(job, tflite)
    if job.dataset is None and not job.data_given:
        return None, ["no data: quality not measured"]
    return None, []


def _fidelity_on_generated(job: Job, tflite: bytes) -> tuple[dict[str, Any], list[str]]:
    """Without data, the quality is the fidelity to the original on generated inputs (standard-normal,
    other samples than any random calibration's), said as such."""
    assert job.float_report is not None
    job.say(f"comparing with the original on {GENERATED_SAMPLES} generated inputs (no data)")
    shapes = [shape for _, shape in job.inputs]
    x = datamod.random_calibration(shapes[0] if len(shapes) == 1 else shapes, GENERATED_SAMPLES, seed=job.seed + 1)
    reference = evaluation.predict_outputs(job.float_bytes, x)
    classifier = evaluation.looks_like_classifier(job.float_report, None)
    found = evaluation.quality(reference, evaluation.predict_outputs(tflite, x), None, classifier=classifier)
    found["inputs"] = "generated"
    warnings = ["no data: quality is the fidelity to the original on generated inputs, not accuracy"]
    sqnr = found.get("sqnr_db")
    if sqnr is not None and sqnr < LOW_FIDELITY_DB:
        worst = min(found.get("outputs") or [{}], key=lambda o: o.get("sqnr_db", 0.0)).get("name")
        where = f" (output {worst}, the lowest of {len(found['outputs'])})" if worst else ""
        warnings.append(f"fidelity to the original is low ({sqnr:.1f} dB SQNR{where} < {LOW_FIDELITY_DB:g} dB on "
                        "generated inputs): its outputs barely follow the original's; check it on real data (--data)")
    return found, warnings


def write(job: Job, tflite: bytes, report: facts.ModelReport, target: Any, checked: Feasibility,
          quality: dict[str, Any] | None, warnings: list[str]) -> CompressResult:
    """Write the model (atomically; not after a Ctrl-C) and describe it."""
    weights_raw, weights_ideal = facts.weight_entropy_bytes(str(job.output), data=tflite)
    interrupt.check()   # a Ctrl-C that a destructor swallowed still means: write nothing
    write_atomic(job.output, tflite)
    source = job.handle.source
    return CompressResult(
        output=str(job.output), sha256=hashlib.sha256(tflite).hexdigest(), model_bytes=len(tflite),
        gzip_bytes=len(gzip.compress(tflite, compresslevel=9, mtime=0)), recipe=str(job.rec), profile=job.prof.name,
        precision=report.precision, source=str(source.path), source_sha256=source.sha256,
        config_hash=checks.config_hash(source, job.rec, job.prof, job.dataset, job.trainset, job.epochs, job.seed),
        quality=quality, fit=checked.to_dict(), warnings=warnings, weight_bytes=weights_raw,
        weight_entropy_bytes=weights_ideal, target=target.to_dict() if target else None)
