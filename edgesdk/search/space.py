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
PRUNING_METHODS = tuple(p for p in PRUNING if p != "prune")  # their values carry the method: sparsegpt=0.5


def _prune_label(value: Any) -> str:
    return f"{value[0]}:{value[1]}" if isinstance(value, tuple) else f"{value:g}"


def _prune_step(value: str) -> str:
    """A prune dimension's value as a recipe step: '0.5' is magnitude pruning, 'sparsegpt=0.5' and
    'wanda=2:4' name their method."""
    return value if "=" in value else f"prune={value}"


@dataclass(frozen=True)
class Candidate:
    """One point of the space: a pruning (a sparsity, or a method and sparsity, or none), a cluster count
    (or none) and a precision."""

    prune: str = NONE
    cluster: str = NONE
    precision: str = "fp32"
    channels: str = NONE

    @property
    def recipe(self) -> str:
        steps = []
        if self.channels != NONE:
            steps.append(f"channels={self.channels}")
        if self.prune != NONE:
            steps.append(_prune_step(self.prune))
        if self.cluster != NONE:
            steps.append(f"cluster={self.cluster}")
        return ",".join([*steps, self.precision])

    @property
    def slug(self) -> str:
        return self.recipe.replace("=", "").replace(",", "_").replace(":", "of")

    def params(self) -> dict[str, str]:
        return {"channels": self.channels, "prune": self.prune, "cluster": self.cluster, "precision": self.precision}


@dataclass(frozen=True)
class Space:
    """The choices for each dimension; every combination is a candidate."""

    precision: tuple[str, ...]
    prune: tuple[str, ...] = (NONE,)
    cluster: tuple[str, ...] = (NONE,)
    channels: tuple[str, ...] = (NONE,)
    notes: list[str] = field(default_factory=list, compare=False)

    def dimensions(self) -> dict[str, tuple[str, ...]]:
        return {"channels": self.channels, "prune": self.prune, "cluster": self.cluster, "precision": self.precision}

    def grid(self) -> list[Candidate]:
        return [Candidate(p, c, q, s) for s, p, c, q in product(self.channels, self.prune, self.cluster,
                                                                 self.precision)]

    def __len__(self) -> int:
        return len(self.channels) * len(self.prune) * len(self.cluster) * len(self.precision)


def build(profile: Profile, *, precisions: list[str] | None = None, prune: list[str] | None = None,
          cluster: list[str] | None = None, channels: list[str] | None = None) -> Space:
    """The space for ``profile``: precisions the target runs, and each technique's search values.

    ``precisions``, ``prune``, ``cluster`` and ``channels`` restrict a dimension (``none`` means the technique is not
    applied; a prune value is a sparsity for magnitude pruning, or ``wanda=S`` / ``sparsegpt=S``); by
    default the techniques' declared search values are used.

    Raises:
        RecipeError: a value no technique accepts, or a precision the profile refuses.
    """
    notes = []
    allowed = [p for p in PRECISIONS if fit.precision_problem(profile, p) is None]
    if precisions:
        bad = [p for p in precisions if p not in PRECISIONS]
        if bad:
            raise RecipeError(f"unknown precision(s) {', '.join(bad)}; expected: {', '.join(PRECISIONS)}")
        refused = [p for p in precisions if p not in allowed]
        if refused:
            raise RecipeError(f"profile {profile.name} refuses precision(s) {', '.join(refused)}: "
                              f"{fit.precision_problem(profile, refused[0])}")
        allowed = list(dict.fromkeys(precisions))
    else:
        skipped = [p for p in PRECISIONS if p not in allowed]
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
    channel_values = [NONE, *(f"{v:g}" for v in REGISTRY["channels"].search_values)] if channels is None \
        else channels
    for value in channel_values:
        if value != NONE:
            _check(f"channels={value}")
    if not allowed:
        raise RecipeError(f"profile {profile.name} runs none of the precisions {', '.join(PRECISIONS)}")
    return Space(precision=tuple(allowed), prune=tuple(dict.fromkeys(prune_values)),
                 cluster=tuple(dict.fromkeys(cluster_values)), channels=tuple(dict.fromkeys(channel_values)),
                 notes=notes)


def _check(step: str) -> None:
    from ..techniques import parse_recipe

    parse_recipe(f"{step},fp32")
