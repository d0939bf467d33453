"""The technique registry: one :class:`Technique` per recipe step, and the recipes built from them.

A technique is data plus behaviour: its name and kind, how its value is parsed and written back, the
values a search may try and the dimension of the search they belong to, the order it runs in, the
model forms it accepts, and ``apply(model, step, ctx)``: one signature for every step. A technique
module registers itself (:func:`register`); :mod:`edgesdk.techniques` imports each module once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import RecipeError
from ..kinds import ModelForm, StepKind
from ..profiles import Profile
from ..registry import Registry

# A training step needs the Keras graph; a weight-space step also edits a float .tflite (and, for
# magnitude pruning and clustering, an integer one); a conversion takes a Keras or SavedModel graph or
# a float .tflite; a post step rewrites the flatbuffer whatever the model came from.
KERAS_ONLY = frozenset({ModelForm.KERAS})
WEIGHT_SPACE = frozenset({ModelForm.KERAS, ModelForm.TFLITE})
CONVERTIBLE = frozenset({ModelForm.KERAS, ModelForm.SAVEDMODEL, ModelForm.TFLITE})
ANY_FORM = frozenset(ModelForm)
FLATBUFFER_FORMS = frozenset({ModelForm.TFLITE, ModelForm.INTEGER})


@dataclass(frozen=True)
class Step:
    """One step of a recipe: a technique's name and its parsed value."""

    name: str
    value: Any = None

    def __str__(self) -> str:
        technique = REGISTRY.get(self.name)
        return technique.format(self.value) if technique is not None else self.name


@dataclass
class Context:
    """What a step may use besides the model: the whole recipe, fine-tuning data, calibration samples
    (real ones; None without data, or random ones for a conversion that must calibrate) and a way to
    say what it is doing."""

    recipe: Recipe
    tune: Any = None
    calibration: Any = None
    say: Callable[[str], None] = field(default=lambda message: None)


def runs(profile: Profile, precision: str) -> str | None:
    """Why ``profile`` does not run models of the profile precision ``precision`` (None: it does)."""
    if precision in profile.precisions:
        return None
    return (f"profile {profile.name!r} ({profile.compute_class}) does not run {precision} models; "
            f"it runs: {', '.join(profile.precisions)}")


@dataclass(frozen=True)
class PrecisionSpec:
    """What a conversion step is to a profile, to the predictor and to the model it leaves.

    Attributes:
        runs_as: the profile precision (:class:`edgesdk.kinds.Precision`) a target must run for it, and
            the one the profile's preferred list is read with (mixed: int8; weight-only: fp32).
        cost: the predictor's compute class (float, dynamic, int8 or int16x8).
        problem: ``(profile, value, shown) -> reason or None`` in place of the plain ``runs_as`` check,
            for a precision whose needs depend on its value (``value`` None: a model of this precision).
        keeps_storage: the float32 weights it leaves go back to an fp16-weight input's storage (fp32 asks
            for float32; fp16 is that storage already).
        nothing_note: said when its output stays float32 (None: it is not expected to quantize).
        bits: ``value -> bits``: what it stores per weight, on average (tune's first guess for size).
    """

    runs_as: str
    cost: str = "float"
    problem: Callable[[Profile, Any, str], str | None] | None = None
    keeps_storage: bool = True
    nothing_note: str | None = None
    bits: Callable[[Any], float] = lambda value: 32.0

    def check(self, profile: Profile, value: Any, shown: str) -> str | None:
        """Why ``profile`` cannot run this precision at ``value`` (None: it can)."""
        if self.problem is not None:
            return self.problem(profile, value, shown)
        return runs(profile, self.runs_as)


@dataclass(frozen=True)
class Technique:
    """What a recipe step may be.

    Attributes:
        parse: the value as written (None without ``=``) -> the step's value, or RecipeError.
        search_values: the values ``tune`` tries, in ``dimension`` (structure, prune, cluster or
            precision; None: not searched).
        bare: the dimension writes the value alone (``--prune 0.5``, ``--cluster 16``), not ``name=value``.
        tag: for values (tag, fraction): the tag written as a plain fraction.
        order: Keras steps run in ascending order.
        forms: the model forms the step accepts.
        fine_tuned: the step fine-tunes when training data is given (and warns without it).
        calibrated: a conversion that calibrates on samples (random ones, with a warning, without data).
        runs_model: the step runs the model on samples here (calibration, layer inputs); true for every
            calibrated step. A model whose custom operators have no kernel here refuses it.
        prepare: called with every step before any applies (it may change the context's fine-tuning).
        apply: ``(model, step, ctx) -> model``: a tf_keras model for a Keras step, the .tflite bytes
            for a conversion (from a Keras model or a SavedModel path) and a post step.
        flatbuffer: ``(content, step, ctx) -> content``: the step on a .tflite model's flatbuffer (a
            float one, normalized, or an integer one where ``forms`` says so); a Keras or conversion
            step that accepts a .tflite form must have one. A Keras step with neither (distill) only
            changes how the others run, in ``prepare``.
        write: the value as the recipe writes it after ``=`` (None: the bare name), where the default
            writing does not fit (``int8=io``).
        check: ``(keras_steps, conversions, recipe)``: a rule of the step about the rest of the recipe,
            raising RecipeError (qat converts to int8 only; distill needs a step to fine-tune).
        implies: the conversion the step means when the recipe names none (qat: int8).
        precision: a conversion's needs and costs (:class:`PrecisionSpec`).
        strength: how far a value goes (larger takes more away): a quality limit broken at one strength is
            broken at every larger one, so `tune` does not try them (None: values are not ordered).
        improves: the objectives (size, latency, energy) the step can improve on its own; `tune` tries the
            steps that cannot improve the ones asked for last (None: any of them).
        model_problem: ``(handle, float_tflite) -> reason``: why this model cannot take the step at all,
            known from its graph before any trial (lowrank on a .tflite without a fully connected op);
            `tune` leaves the step out of the search with the reason.
    """

    name: str
    kind: StepKind
    help: str
    parse: Callable[[str | None], Any]
    search_values: tuple[Any, ...] = ()
    dimension: str | None = None
    bare: bool = False
    tag: str | None = None
    order: int = 0
    forms: frozenset[ModelForm] = KERAS_ONLY
    fine_tuned: bool = False
    calibrated: bool = False
    runs_model: bool = False
    prepare: Callable[[Step, Context], None] | None = None
    apply: Callable[[Any, Step, Context], Any] | None = None
    flatbuffer: Callable[[bytes, Step, Context], bytes] | None = None
    write: Callable[[Any], str | None] | None = None
    check: Callable[[list[Step], list[Step], str], None] | None = None
    implies: str | None = None
    precision: PrecisionSpec | None = None
    strength: Callable[[Any], float] | None = None
    improves: frozenset[str] | None = None
    model_problem: Callable[[Any, bytes], str | None] | None = None

    def __post_init__(self) -> None:
        if self.calibrated:
            object.__setattr__(self, "runs_model", True)
        if self.kind != StepKind.POST and self.forms & FLATBUFFER_FORMS and self.flatbuffer is None:
            raise ValueError(f"technique {self.name!r} accepts .tflite models but has no flatbuffer apply")
        if self.search_values and self.dimension is None:
            raise ValueError(f"technique {self.name!r} has search values but no dimension: they would never be "
                             "searched")
        if (self.kind == StepKind.CONVERT) != (self.precision is not None):
            raise ValueError(f"technique {self.name!r}: a conversion step, and only one, has a PrecisionSpec")

    @property
    def transforms(self) -> bool:
        """Whether the step changes the model (distill only changes how the others fine-tune)."""
        return self.apply is not None or self.flatbuffer is not None

    def on(self, form: ModelForm) -> Callable[[Any, Step, Context], Any]:
        """The apply for a model of ``form``."""
        if form in FLATBUFFER_FORMS and self.kind != StepKind.POST:
            assert self.flatbuffer is not None
            return self.flatbuffer
        assert self.apply is not None
        return self.apply

    def format(self, value: Any) -> str:
        """The step as a recipe writes it: ``prune=0.5``, ``prune=2:4``, ``channels=l1:0.5``, ``int8=io``."""
        if self.write is not None:
            text = self.write(value)
            return self.name if text is None else f"{self.name}={text}"
        if value is None or value is False or value is True:
            return self.name
        if self.tag is not None and isinstance(value, tuple):
            tag, share = value
            return f"{self.name}={share:g}" if tag == self.tag else f"{self.name}={tag}:{share:g}"
        if isinstance(value, tuple):
            return f"{self.name}={value[0]}:{value[1]}"
        if isinstance(value, float):
            return f"{self.name}={value:g}"
        return f"{self.name}={value}"

    def labels(self) -> list[str]:
        """This technique's search values as its dimension writes them (its bare name without values)."""
        if not self.search_values:
            return [self.name]
        texts = [self.format(v).partition("=")[2] if self.write is not None else
                 f"{v[0]}:{v[1]}" if isinstance(v, tuple) else f"{v:g}" if isinstance(v, float) else str(v)
                 for v in self.search_values]
        return texts if self.bare else [f"{self.name}={t}" for t in texts]

    def refuse(self, form: ModelForm, model: str, why: str) -> None:
        """Raise unless the technique accepts ``form``; the refusal names both and what to give instead."""
        if form in self.forms:
            return
        order = list(ModelForm)
        wanted = [f.text for f in sorted(self.forms, key=order.index)]
        takes = ", ".join(wanted[:-1]) + f" or {wanted[-1]}" if len(wanted) > 1 else (wanted or ["no"])[0]
        raise RecipeError(f"{self.name} cannot apply to {model}, {why}; {self.name} takes {takes} models")


@dataclass(frozen=True)
class Dimension:
    """A dimension of `tune`'s search: the techniques that declare it share it, their search values are
    its values, and ``tune --NAME`` (or ``--space NAME=…``) restricts it.

    Attributes:
        what: what its values are, for help texts ("cluster counts").
        optional: ``none`` (no step of the dimension) is a value; the precision is never absent.
        option: ``tune`` has its own ``--NAME`` option for it (the others take ``--space NAME=V``).
    """

    name: str
    what: str
    optional: bool = True
    option: bool = False


REGISTRY: Registry[Technique] = Registry("technique", RecipeError)
DIMENSIONS: Registry[Dimension] = Registry("search dimension", RecipeError)


def dimension(name: str, what: str, *, optional: bool = True, option: bool = False) -> Dimension:
    """Declare a search dimension (before the techniques in it register); recipes write the dimensions
    in the order they are declared."""
    return DIMENSIONS.add(name, Dimension(name, what, optional, option))


def register(technique: Technique) -> Technique:
    """Add a technique to the registry (once: a second one of the same name is a programming error). Its
    dimension must be declared: a technique is never silently left out of the search."""
    if technique.dimension is not None and technique.dimension not in DIMENSIONS:
        raise ValueError(f"technique {technique.name!r}: its search dimension {technique.dimension!r} is not "
                         "declared (techniques.base.dimension)")
    return REGISTRY.add(technique.name, technique)


def techniques(kind: StepKind | None = None, dimension: str | None = None) -> list[Technique]:
    """The registered techniques of a kind or a search dimension, in registration order."""
    return [t for t in REGISTRY.values() if (kind is None or t.kind == kind)
            and (dimension is None or t.dimension == dimension)]


# --- value parsers shared by several techniques ----------------------------------------------------------

def fraction(name: str, raw: str | None, what: str, received: str | None = None) -> float:
    """``raw`` as a number in (0, 1) for the step ``name``, or a RecipeError that says what it means
    (``received``: the whole value as written, when ``raw`` is a part of it)."""
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        value = None
    if value is None or not 0.0 < value < 1.0:
        shown = name if raw is None else f"{name}={received if received is not None else raw}"
        raise RecipeError(f"{name} expects {what}, a fraction in (0, 1), e.g. {name}=0.5. Received: {shown}")
    return value


def sparsity_of(value: Any) -> float:
    """The share of weights a pruning value removes: the sparsity, or 1 - N/M."""
    return 1.0 - value[0] / value[1] if isinstance(value, tuple) else float(value)


def sparsity(name: str) -> Callable[[str | None], Any]:
    """A parser of a sparsity in (0, 1) or N:M for the pruning step ``name``."""
    def parse(value: str | None) -> Any:
        if value is None:
            raise RecipeError(f"{name} needs a value: a sparsity in (0, 1) such as {name}=0.5, or {name}=2:4")
        if ":" in value:
            n, m = value.split(":", 1)
            if not (n.isdigit() and m.isdigit()) or not 0 < int(n) < int(m):
                raise RecipeError(f"{name}=N:M needs 0 < N < M, e.g. {name}=2:4. Received: {name}={value}")
            return (int(n), int(m))
        try:
            share = float(value)
        except ValueError:
            raise RecipeError(f"{name} expects a sparsity in (0, 1) or N:M. Received: {name}={value}") from None
        if not 0.0 < share < 1.0:
            raise RecipeError(f"{name} sparsity must be in (0, 1). Received: {name}={value}")
        return share
    return parse


def no_value(name: str) -> Callable[[str | None], None]:
    """A parser for a step that takes no value."""
    def parse(value: str | None) -> None:
        if value is not None:
            raise RecipeError(f"{name} takes no value. Received: {name}={value}")
    return parse


# --- recipes ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """A parsed, validated recipe: keras steps in order, then exactly one conversion step."""

    keras_steps: tuple[Step, ...]
    convert: Step
    post_steps: tuple[Step, ...] = ()
    stated: bool = field(default=True, compare=False)  # the recipe names its conversion (not fp32 by default)

    @property
    def precision(self) -> str:
        """The conversion step's name: the precision the .tflite is written in."""
        return self.convert.name

    @property
    def steps(self) -> tuple[Step, ...]:
        return (*self.keras_steps, self.convert, *self.post_steps)

    def __str__(self) -> str:
        return ",".join(str(s) for s in self.steps)


def parse_step(token: str, recipe: str | None = None) -> Step:
    """One step as written (``prune=0.5``).

    Raises:
        RecipeError: an unknown technique or a bad value.
    """
    name, _, raw = token.strip().partition("=")
    name = name.strip().lower()
    technique = REGISTRY.lookup(name, f" in recipe {recipe!r}" if recipe is not None else "")
    return Step(name, technique.parse(raw.strip() if raw else None))


def parse_recipe(text: str) -> Recipe:
    """Parse ``text`` such as ``prune=0.5,cluster=16,int8`` into a :class:`Recipe`.

    Raises:
        RecipeError: unknown technique, bad value, repeated step, or several conversion steps.
    """
    if not text or not text.strip():
        raise RecipeError(f"empty recipe; expected steps such as 'int8' or 'prune=0.5,int8' "
                          f"from: {', '.join(REGISTRY)}")
    by_kind: dict[StepKind, list[Step]] = {kind: [] for kind in StepKind}
    for token in text.split(","):
        step = parse_step(token, text)
        if any(s.name == step.name for steps in by_kind.values() for s in steps):
            raise RecipeError(f"technique {step.name!r} appears twice in recipe {text!r}")
        by_kind[REGISTRY[step.name].kind].append(step)
    keras_steps, converts = by_kind[StepKind.KERAS], by_kind[StepKind.CONVERT]
    pruning = [s.name for s in keras_steps if REGISTRY[s.name].dimension == "prune"]
    if len(pruning) > 1:
        raise RecipeError(f"a recipe prunes once; {text!r} has {', '.join(pruning)}")
    if len(converts) > 1:
        raise RecipeError(f"a recipe has one conversion step; {text!r} has "
                          f"{', '.join(s.name for s in converts)}")
    for step in [*keras_steps, *by_kind[StepKind.POST]]:
        rule = REGISTRY[step.name].check
        if rule is not None:
            rule(keras_steps, converts, text)
    implied = [t.implies for s in keras_steps if (t := REGISTRY[s.name]).implies is not None]
    name = converts[0].name if converts else implied[0] if implied else DEFAULT_PRECISION
    convert = converts[0] if converts else Step(name, REGISTRY[name].parse(None))
    keras_steps.sort(key=lambda s: REGISTRY[s.name].order)
    return Recipe(tuple(keras_steps), convert, tuple(by_kind[StepKind.POST]), stated=bool(converts or implied))


DEFAULT_PRECISION = "fp32"  # the conversion of a recipe that names none (and implies none)


def listed(names: list[str], last: str = "or") -> str:
    """``a, b or c``."""
    return ", ".join(names[:-1]) + f" {last} {names[-1]}" if len(names) > 1 else "".join(names)
