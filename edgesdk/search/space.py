"""The search space of `tune`: a mapping from each search dimension to its values, built from the
dimensions the techniques declare (:data:`edgesdk.techniques.DIMENSIONS`) and their search values; a
profile keeps the precisions it runs, and a model's form the steps it can take."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from .. import feasibility
from ..errors import RecipeError
from ..fileio import slug
from ..kinds import ModelForm, StepKind
from ..profiles import Profile
from ..techniques import DIMENSIONS, REGISTRY, listed, parse_recipe, parse_step, techniques

NONE = "none"
PRECISION = "precision"  # the one dimension every candidate has a value in


def dimension_values(dimension: str) -> list[str]:
    """A dimension's default values: ``none`` (where no step of it is a choice) and every search value of
    the techniques in it, as the dimension writes them (``0.5`` and ``wanda=0.5`` for pruning)."""
    found = sorted(techniques(dimension=dimension), key=lambda t: t.order)
    return [*([NONE] if DIMENSIONS[dimension].optional else []), *(label for t in found for label in t.labels())]


def step_text(dimension: str, value: str) -> str:
    """A dimension's value as a recipe step: a bare value (``0.5``, ``16``) belongs to the dimension's
    bare technique (magnitude pruning, clustering); ``sparsegpt=0.5`` and ``int8`` name theirs."""
    name = value.partition("=")[0].strip().lower()
    if "=" in value or name in REGISTRY:
        return value
    bare = next((t for t in techniques(dimension=dimension) if t.bare), None)
    return f"{bare.name}={value}" if bare is not None else value


def weight_bits(precision: str) -> float:
    """The bits a precision stores per weight, on average (before anything is measured)."""
    step = parse_step(precision)
    spec = REGISTRY[step.name].precision
    return spec.bits(step.value) if spec is not None else 32.0


@dataclass(frozen=True)
class Candidate:
    """One point of the space: a value in each dimension (``none`` where no step of it applies), held in
    the order the dimensions were declared (the order its recipe is written in)."""

    choice: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, params: Mapping[str, str]) -> Candidate:
        """The candidate of ``params`` (dimension -> value; a missing optional dimension is ``none``).

        Raises:
            RecipeError: a dimension no technique declared.
        """
        for name in params:
            DIMENSIONS.lookup(name)
        return cls(tuple((d, params.get(d, NONE)) for d in DIMENSIONS))

    def __getitem__(self, dimension: str) -> str:
        return dict(self.choice)[dimension]

    @property
    def recipe(self) -> str:
        return ",".join(step_text(dim, value) for dim, value in self.choice if value != NONE)

    @property
    def slug(self) -> str:
        return slug(self.recipe)

    @property
    def plain(self) -> bool:
        """Only a precision: no step of any other dimension."""
        return all(value == NONE for dim, value in self.choice if dim != PRECISION)

    def params(self) -> dict[str, str]:
        """The candidate's value in each dimension, in the order its recipe is written."""
        return dict(self.choice)


@dataclass(frozen=True)
class Space:
    """The values of each dimension; every combination is a candidate."""

    choices: dict[str, tuple[str, ...]]
    notes: list[str] = field(default_factory=list, compare=False)

    def dimensions(self) -> dict[str, tuple[str, ...]]:
        return dict(self.choices)

    def __getitem__(self, dimension: str) -> tuple[str, ...]:
        return self.choices[dimension]

    def grid(self) -> list[Candidate]:
        names = list(self.choices)
        return [Candidate.of(dict(zip(names, values, strict=True))) for values in product(*self.choices.values())]

    def __iter__(self) -> Iterator[Candidate]:
        return iter(self.grid())

    def __len__(self) -> int:
        return math.prod(len(v) for v in self.choices.values())


def build(profile: Profile, restrict: Mapping[str, Sequence[str] | None] | None = None,
          **by_dimension: Sequence[str] | None) -> Space:
    """The space for ``profile``: precisions the target runs, and each technique's search values, grouped
    by the dimension each technique declares.

    ``restrict`` (or one keyword per dimension: ``precision=[...]``, ``prune=[...]``) restricts a dimension
    (``none`` means no step of it; a prune value is a sparsity for magnitude pruning, or ``wanda=S`` /
    ``sparsegpt=S``; a structure value is ``channels=F`` or ``lowrank=R``); by default the techniques'
    declared search values are used.

    Raises:
        RecipeError: an unknown dimension, a value no technique of the dimension accepts, or a precision
            the profile refuses.
    """
    given = {**(restrict or {}), **by_dimension}
    for name in given:
        DIMENSIONS.lookup(name)
    notes: list[str] = []
    chosen = {PRECISION: _precisions(profile, given.get(PRECISION), notes)}
    for dim in DIMENSIONS:
        if dim == PRECISION:
            continue
        values = given.get(dim) or dimension_values(dim)
        for value in values:
            if value != NONE:
                _check(dim, value, dimension_values(dim))
        chosen[dim] = tuple(dict.fromkeys(values))
    return Space({d: chosen[d] for d in DIMENSIONS}, notes=notes)


def _precisions(profile: Profile, given: Sequence[str] | None, notes: list[str]) -> tuple[str, ...]:
    known = dimension_values(PRECISION)

    def problem(precision: str) -> str | None:
        return feasibility.precision_problem(profile, parse_step(precision))

    allowed = [p for p in known if problem(p) is None]
    if given:
        for p in given:
            _check(PRECISION, p, known)
        refused = [p for p in given if problem(p) is not None]
        if refused:
            raise RecipeError(f"profile {profile.name} refuses precision(s) {', '.join(refused)}: "
                              f"{problem(refused[0])}")
        allowed = list(dict.fromkeys(given))
    else:
        skipped = [p for p in known if p not in allowed]
        if skipped:
            notes.append(f"precisions {', '.join(skipped)} left out: profile {profile.name} does not run them")
    if not allowed:
        raise RecipeError(f"profile {profile.name} runs none of the precisions {', '.join(known)}")
    return tuple(allowed)


def for_form(space: Space, form: ModelForm) -> Space:
    """``space`` without the values whose technique cannot take a model of ``form`` (a .tflite has no
    training graph: no channels or fine-tuning; an integer .tflite keeps its precision), with a note.

    Raises:
        RecipeError: no precision of the space applies to the model.
    """
    kept: dict[str, tuple[str, ...]] = {}
    notes = list(space.notes)
    for dim, values in space.dimensions().items():
        ok = tuple(v for v in values if v == NONE or form in REGISTRY[parse_step(step_text(dim, v)).name].forms)
        dropped = [v for v in values if v not in ok]
        if dropped:
            notes.append(f"{dim} {', '.join(dropped)} left out: {form.article} {form.text} model cannot take them")
        kept[dim] = ok or (NONE,)
    if not kept[PRECISION] or kept[PRECISION] == (NONE,):
        raise RecipeError(f"none of the precisions {', '.join(space[PRECISION])} applies to {form.article} "
                          f"{form.text} model")
    return Space(kept, notes=notes)


def for_model(space: Space, handle: Any) -> Space:
    """``space`` for this model: :func:`for_form`, then without the steps its graph rules out before any
    trial (a technique's ``model_problem``; a step that runs the model, where a custom operator has no
    kernel here), each with a note."""
    from ..tflite import runnable

    space = for_form(space, handle.form)
    content = handle.float_tflite()
    unrunnable = bool(handle.custom_ops) and bool(runnable.check(content).custom)
    problems: dict[str, str | None] = {}
    kept: dict[str, tuple[str, ...]] = {}
    notes = list(space.notes)
    for dim, values in space.dimensions().items():
        why: dict[str, str] = {}
        for value in values:
            if value == NONE:
                continue
            technique = REGISTRY[parse_step(step_text(dim, value)).name]
            if technique.name not in problems:
                try:  # a problem hook that finds nothing to work on may say so by refusing
                    problem = technique.model_problem(handle, content) if technique.model_problem else None
                except RecipeError as exc:
                    problem = str(exc)
                if problem is None and unrunnable and technique.runs_model:
                    problem = (f"it runs the model on samples and the custom operators "
                               f"({', '.join(handle.custom_ops)}) have no kernel here")
                problems[technique.name] = problem
            if problems[technique.name] is not None:
                why[value] = problems[technique.name] or ""
        for reason in dict.fromkeys(why.values()):
            notes.append(f"{dim} {', '.join(v for v in why if why[v] == reason)} left out: {reason}")
        kept[dim] = tuple(v for v in values if v not in why) or (NONE,)
    if kept[PRECISION] == (NONE,):
        raise RecipeError(f"none of the precisions {', '.join(space[PRECISION])} applies to this model: "
                          f"{'; '.join(n for n in notes if n.startswith(PRECISION))}")
    return Space(kept, notes=notes)


def _check(dimension: str, value: str, known: list[str]) -> None:
    """A dimension's value must be a step of a technique in that dimension, with a valid value (the
    recipe parser's rules: one set of them)."""
    text = step_text(dimension, value)
    name = text.partition("=")[0].strip().lower()
    technique = REGISTRY.get(name)
    if technique is None or technique.dimension != dimension:
        names = sorted({t.name for t in techniques(dimension=dimension)})
        if dimension == PRECISION:
            raise RecipeError(f"unknown precision(s) {value}; expected: {', '.join(known)} "
                              "(mixed=F, mixed=int16x8:F or mixed=int4:F for any fraction F)")
        if not any(t.bare for t in techniques(dimension=dimension)):  # its values name their step
            raise RecipeError(f"{dimension} values are {listed([f'{n}=…' for n in names])} (or none). "
                              f"Received: {value}")
        raise RecipeError(f"{dimension} values are steps of {', '.join(names)} (or none). Received: {value}")
    parse_recipe(text if technique.kind == StepKind.CONVERT else f"{text},fp32")
