"""The search space of `tune`: which recipes a profile allows, from the techniques' own search values."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

from .. import feasibility
from ..errors import RecipeError
from ..fileio import slug
from ..kinds import ModelForm, StepKind
from ..profiles import Profile
from ..techniques import REGISTRY, parse_recipe, parse_step, techniques

NONE = "none"
DIMENSIONS = ("structure", "prune", "cluster", "precision")   # a Candidate's fields; techniques name theirs


def dimension_values(dimension: str) -> list[str]:
    """A dimension's default values: ``none`` (but for the precision) and every search value of the
    techniques in it, as the dimension writes them (``0.5`` and ``wanda=0.5`` for pruning)."""
    found = sorted(techniques(dimension=dimension), key=lambda t: t.order)
    return [*([] if dimension == "precision" else [NONE]), *(label for t in found for label in t.labels())]


def step_text(dimension: str, value: str) -> str:
    """A dimension's value as a recipe step: a bare value (``0.5``, ``16``) belongs to the dimension's
    bare technique (magnitude pruning, clustering); ``sparsegpt=0.5`` and ``int8`` name theirs."""
    name = value.partition("=")[0].strip().lower()
    if "=" in value or name in REGISTRY:
        return value
    bare = next((t for t in techniques(dimension=dimension) if t.bare), None)
    return f"{bare.name}={value}" if bare is not None else value


@dataclass(frozen=True)
class Candidate:
    """One point of the space: a change of structure (channels=F, lowrank=R or none), a pruning (a
    sparsity, or a method and sparsity, or none), a cluster count (or none) and a precision."""

    prune: str = NONE
    cluster: str = NONE
    precision: str = "fp32"
    structure: str = NONE

    @property
    def recipe(self) -> str:
        steps = [step_text(dim, value) for dim, value in self.params().items() if value != NONE]
        return ",".join(steps)

    @property
    def slug(self) -> str:
        return slug(self.recipe)

    def params(self) -> dict[str, str]:
        """The candidate's value in each dimension, in the order its recipe is written."""
        return {"structure": self.structure, "prune": self.prune, "cluster": self.cluster,
                "precision": self.precision}


@dataclass(frozen=True)
class Space:
    """The choices for each dimension; every combination is a candidate."""

    precision: tuple[str, ...]
    prune: tuple[str, ...] = (NONE,)
    cluster: tuple[str, ...] = (NONE,)
    structure: tuple[str, ...] = (NONE,)
    notes: list[str] = field(default_factory=list, compare=False)

    def dimensions(self) -> dict[str, tuple[str, ...]]:
        return {"structure": self.structure, "prune": self.prune, "cluster": self.cluster,
                "precision": self.precision}

    def grid(self) -> list[Candidate]:
        return [Candidate(p, c, q, s) for s, p, c, q in product(self.structure, self.prune, self.cluster,
                                                                 self.precision)]

    def __len__(self) -> int:
        return len(self.structure) * len(self.prune) * len(self.cluster) * len(self.precision)


def build(profile: Profile, *, precisions: list[str] | None = None, prune: list[str] | None = None,
          cluster: list[str] | None = None, structure: list[str] | None = None) -> Space:
    """The space for ``profile``: precisions the target runs, and each technique's search values, grouped
    by the dimension each technique declares.

    ``precisions``, ``prune``, ``cluster`` and ``structure`` restrict a dimension (``none`` means the
    technique is not applied; a prune value is a sparsity for magnitude pruning, or ``wanda=S`` /
    ``sparsegpt=S``; a structure value is a step that changes the architecture: ``channels=F`` or
    ``lowrank=R``); by default the techniques' declared search values are used.

    Raises:
        RecipeError: a value no technique of the dimension accepts, or a precision the profile refuses.
    """
    notes = []
    known = dimension_values("precision")

    def problem(precision: str) -> str | None:
        return feasibility.precision_problem(profile, parse_step(precision))

    allowed = [p for p in known if problem(p) is None]
    if precisions:
        for p in precisions:
            _check("precision", p, known)
        refused = [p for p in precisions if problem(p) is not None]
        if refused:
            raise RecipeError(f"profile {profile.name} refuses precision(s) {', '.join(refused)}: "
                              f"{problem(refused[0])}")
        allowed = list(dict.fromkeys(precisions))
    else:
        skipped = [p for p in known if p not in allowed]
        if skipped:
            notes.append(f"precisions {', '.join(skipped)} left out: profile {profile.name} does not run them")
    if not allowed:
        raise RecipeError(f"profile {profile.name} runs none of the precisions {', '.join(known)}")
    chosen = {"precision": allowed}
    for dim, given in (("structure", structure), ("prune", prune), ("cluster", cluster)):
        values = dimension_values(dim) if given is None else given
        for value in values:
            if value != NONE:
                _check(dim, value, dimension_values(dim))
        chosen[dim] = list(dict.fromkeys(values))
    return Space(precision=tuple(chosen["precision"]), prune=tuple(chosen["prune"]), cluster=tuple(chosen["cluster"]),
                 structure=tuple(chosen["structure"]), notes=notes)


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
        kept[dim] = ok
    if not kept["precision"]:
        raise RecipeError(f"none of the precisions {', '.join(space.precision)} applies to {form.article} "
                          f"{form.text} model")
    if form == ModelForm.INTEGER and "int8" not in kept["precision"]:
        kept["precision"] = ("int8", *kept["precision"])
    return Space(precision=kept["precision"], prune=kept["prune"] or (NONE,), cluster=kept["cluster"] or (NONE,),
                 structure=kept["structure"] or (NONE,), notes=notes)


def _check(dimension: str, value: str, known: list[str]) -> None:
    """A dimension's value must be a step of a technique in that dimension, with a valid value (the
    recipe parser's rules: one set of them)."""
    text = step_text(dimension, value)
    name = text.partition("=")[0].strip().lower()
    technique = REGISTRY.get(name)
    if technique is None or technique.dimension != dimension:
        names = sorted({t.name for t in techniques(dimension=dimension)})
        if dimension == "precision":
            raise RecipeError(f"unknown precision(s) {value}; expected: {', '.join(known)} "
                              "(mixed=F, mixed=int16x8:F or mixed=int4:F for any fraction F)")
        if dimension == "structure":
            raise RecipeError(f"structure values are {' or '.join(f'{n}=…' for n in names)} (or none). "
                              f"Received: {value}")
        raise RecipeError(f"{dimension} values are steps of {', '.join(names)} (or none). Received: {value}")
    parse_recipe(text if technique.kind == StepKind.CONVERT else f"{text},fp32")
