"""The search space of `tune`: which recipes a profile allows, from the techniques' own search values."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from typing import Any

from .. import fit
from ..errors import RecipeError
from ..profiles import Profile
from ..techniques import PRUNING, REGISTRY

PRECISIONS = ("fp32", "fp16", "dynamic", "int8", "int16x8")
NONE = "none"
STRUCTURE = ("channels", "lowrank")  # steps that change the architecture: one dimension, at most one of them
PRUNING_METHODS = tuple(p for p in PRUNING if p != "prune")  # their values carry the method: sparsegpt=0.5


def _prune_label(value: Any) -> str:
    return f"{value[0]}:{value[1]}" if isinstance(value, tuple) else f"{value:g}"


def _prune_step(value: str) -> str:
    """A prune dimension's value as a recipe step: '0.5' is magnitude pruning, 'sparsegpt=0.5' and
    'wanda=2:4' name their method."""
    return value if "=" in value else f"prune={value}"


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
        steps = []
        if self.structure != NONE:
            steps.append(self.structure)
        if self.prune != NONE:
            steps.append(_prune_step(self.prune))
        if self.cluster != NONE:
            steps.append(f"cluster={self.cluster}")
        return ",".join([*steps, self.precision])

    @property
    def slug(self) -> str:
        return self.recipe.replace("=", "").replace(",", "_").replace(":", "of")

    def params(self) -> dict[str, str]:
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
    """The space for ``profile``: precisions the target runs, and each technique's search values.

    ``precisions``, ``prune``, ``cluster`` and ``structure`` restrict a dimension (``none`` means the
    technique is not applied; a prune value is a sparsity for magnitude pruning, or ``wanda=S`` /
    ``sparsegpt=S``; a structure value is a step that changes the architecture: ``channels=F`` or
    ``lowrank=R``); by default the techniques' declared search values are used.

    Raises:
        RecipeError: a value no technique accepts, or a precision the profile refuses.
    """
    notes = []
    known = (*PRECISIONS, *(f"mixed={v:g}" for v in REGISTRY["mixed"].search_values))

    def problem(precision: str) -> str | None:
        return fit.precision_problem(profile, precision)

    allowed = [p for p in known if problem(p) is None]
    if precisions:
        bad = [p for p in precisions if p not in PRECISIONS and not p.startswith("mixed=")]
        if bad:
            raise RecipeError(f"unknown precision(s) {', '.join(bad)}; expected: {', '.join(known)} "
                              "(mixed=F, mixed=int16x8:F or mixed=int4:F for any fraction F)")
        for p in precisions:
            _check(p)
        refused = [p for p in precisions if problem(p) is not None]
        if refused:
            raise RecipeError(f"profile {profile.name} refuses precision(s) {', '.join(refused)}: "
                              f"{problem(refused[0])}")
        allowed = list(dict.fromkeys(precisions))
    else:
        skipped = [p for p in known if p not in allowed]
        if skipped:
            notes.append(f"precisions {', '.join(skipped)} left out: profile {profile.name} does not run them")
    prune_values = [NONE, *(_prune_label(v) for v in REGISTRY["prune"].search_values),
                    *(f"{method}={_prune_label(v)}" for method in PRUNING_METHODS
                      for v in REGISTRY[method].search_values)] if prune is None else prune
    cluster_values = [NONE, *(str(v) for v in REGISTRY["cluster"].search_values)] if cluster is None else cluster
    for value in prune_values:  # validated by the recipe parser: one set of rules
        if value != NONE:
            _check(_prune_step(value))
    for value in cluster_values:
        if value != NONE:
            _check(f"cluster={value}")
    structure_values = [NONE, *(f"{name}={v:g}" for name in STRUCTURE for v in REGISTRY[name].search_values)] \
        if structure is None else structure
    for value in structure_values:
        if value != NONE:
            if value.partition("=")[0] not in STRUCTURE:
                raise RecipeError(f"structure values are {' or '.join(f'{n}=…' for n in STRUCTURE)} (or none). "
                                  f"Received: {value}")
            _check(value)
    if not allowed:
        raise RecipeError(f"profile {profile.name} runs none of the precisions {', '.join(PRECISIONS)}")
    return Space(precision=tuple(allowed), prune=tuple(dict.fromkeys(prune_values)),
                 cluster=tuple(dict.fromkeys(cluster_values)), structure=tuple(dict.fromkeys(structure_values)),
                 notes=notes)


def _check(step: str) -> None:
    from ..techniques import REGISTRY as registry
    from ..techniques import parse_recipe

    technique = registry.get(step.partition("=")[0].strip().lower())
    parse_recipe(step if technique is not None and technique.kind == "convert" else f"{step},fp32")
