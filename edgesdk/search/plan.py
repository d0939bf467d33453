"""The order in which `tune` tries candidates, and the ones it need not try: what each trial taught.

A search of a few dozen trials over thousands of combinations cannot be left to a sampler: half of its
first proposals would be random stacks of three or four techniques. The plan is stateless (a function
of the rows done so far, so resumed and parallel searches follow it alike):

1. every precision plain, in the order the objectives favour (the predictor's ranking);
2. on the best plain precisions (those that kept the quality limits, best first), each other step
   alone, mildest first; the steps that cannot improve the objectives asked for (pruning and clustering
   change neither the file size nor the speed of a dense runtime) come last, and the second precision's
   steps after the pairs on the first;
3. stacks of the steps that proved worth it on their own on the same precision: they kept every quality
   limit and gained on an objective;
4. then the sampler, seeded with all of the above.

A candidate is ruled out, at no cost, when a candidate that is weaker or equal in every dimension (the same
precision; each other step absent, the same, or the same technique at a smaller strength) broke a quality
limit or was refused by compress: a limit broken by pruning at 0.5 is broken at 0.75, and a stack on a
step that already broke a limit alone breaks it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from ..errors import RecipeError
from ..kinds import TrialStatus
from ..profiles import Profile
from ..techniques import REGISTRY, parse_step
from . import space as spacemod
from .objectives import KEPT, MARGIN, OBJECTIVES, Constraints, gains, objective_value

BASES = 2            # plain precisions the single steps are tried on
SINGLE_LATE = 3      # priority added to single steps that cannot improve the objectives asked for
NEXT_BASE = 2        # priority added per base: the second base's singles come after the first's pairs
Ranked = tuple[tuple[float, int, int], "spacemod.Candidate"]   # (priority, base rank, dimension order), candidate


def step_of(dimension: str, value: str) -> tuple[str, float | None]:
    """The technique of a dimension's value and the value's strength (None: not ordered)."""
    step = parse_step(spacemod.step_text(dimension, value))
    technique = REGISTRY[step.name]
    return step.name, (technique.strength(step.value) if technique.strength is not None else None)


def weaker_or_equal(a: spacemod.Candidate, b: spacemod.Candidate) -> bool:
    """Whether ``a`` takes at most what ``b`` takes: the same precision, and in every other dimension no
    step, the same step, or the same technique at a smaller or equal strength."""
    if a[spacemod.PRECISION] != b[spacemod.PRECISION]:
        return False
    for dim, value in a.choice:
        other = b[dim]
        if dim == spacemod.PRECISION or value == spacemod.NONE or value == other:
            continue
        if other == spacemod.NONE:
            return False
        (name_a, s_a), (name_b, s_b) = step_of(dim, value), step_of(dim, other)
        if name_a != name_b or s_a is None or s_b is None or s_a > s_b:
            return False
    return True


@dataclass
class Plan:
    """What to try next in one tune: ``precisions`` in the order the objectives favour."""

    space: spacemod.Space
    objectives: list[str]
    constraints: Constraints
    precisions: list[str]

    def broke(self, row: dict[str, Any]) -> str | None:
        """What a done row broke that every stronger candidate breaks too: a quality limit, or compress's
        refusal (memory, latency and acceleration limits may be met by compressing further)."""
        status = row.get("status")
        if status == TrialStatus.REJECTED.value and row.get("stage") == "compress":
            return f"refused: {(row.get('reason') or '').split(';')[0]}"
        if status == TrialStatus.FAILED.value:
            return "failed"
        if status in KEPT:
            broken = self.constraints.quality_violations(row)
            return broken[0] if broken else None
        return None

    def ruled_out(self, cand: spacemod.Candidate, rows: Mapping[str, dict[str, Any]]) -> str | None:
        """Why ``cand`` need not be tried (None: it must)."""
        for row in rows.values():
            if row.get("recipe") == cand.recipe:
                continue
            why = self.broke(row)
            if why is None:
                continue
            done = _candidate(row)
            if done is not None and weaker_or_equal(done, cand):
                return f"{done.recipe} already broke it ({why})"
        return None

    def next(self, rows: Mapping[str, dict[str, Any]], busy: set[str]) -> spacemod.Candidate | None:
        """The next candidate of the plan, or None when only the sampler is left."""
        for precision in self.precisions:
            cand = spacemod.Candidate.of({spacemod.PRECISION: precision})
            if cand.recipe not in rows and cand.recipe not in busy:
                return cand
        pool: list[Ranked] = []
        for rank, base in enumerate(self._bases(rows)):
            pool += self._singles(base, rank, rows)
            pool += self._stacks(base, rank, rows)
        pool = [((p + NEXT_BASE * rank, rank, order), c) for (p, rank, order), c in pool]
        for _, cand in sorted(pool, key=lambda item: item[0]):
            if cand.recipe not in rows and cand.recipe not in busy and self.ruled_out(cand, rows) is None:
                return cand
        return None

    def gain(self, row: dict[str, Any], base: dict[str, Any]) -> bool:
        """Whether ``row`` is better than ``base`` on an objective (other than quality) by its margin."""
        return bool(gains(row, base, self.objectives))

    def _key(self, row: dict[str, Any]) -> tuple[float, ...]:
        order = [o for o in self.objectives if o not in self.constraints.bounded()] + \
            [o for o in self.objectives if o in self.constraints.bounded()]
        return tuple((1.0 if OBJECTIVES[o] == "minimize" else -1.0) * objective_value(o, row) for o in order)

    def _bases(self, rows: Mapping[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """The plain precisions to build on: kept, no quality limit broken; those meeting every limit
        first, then by the objectives."""
        plain = [r for r in rows.values() if r.get("status") in KEPT and (c := _candidate(r)) is not None and c.plain
                 and not self.constraints.quality_violations(r)]
        plain.sort(key=lambda r: (bool(self.constraints.violations(r)), self._key(r)))
        return plain[:BASES]

    def _on(self, base: dict[str, Any], **steps: str) -> spacemod.Candidate:
        return spacemod.Candidate.of({**(base.get("params") or {}), **steps})

    def _singles(self, base: dict[str, Any], rank: int,
                 rows: Mapping[str, dict[str, Any]]) -> list[Ranked]:
        """Each other step alone on ``base``: a technique's next strength after the ones tried, sooner when
        the technique can improve an objective asked for and its milder values did."""
        wanted = {o for o in self.objectives if o in MARGIN}
        out: list[Ranked] = []
        for order, (dim, values) in enumerate(self.space.dimensions().items()):
            if dim == spacemod.PRECISION:
                continue
            by_technique: dict[str, list[tuple[float, str]]] = {}
            for value in values:
                if value != spacemod.NONE:
                    name, strength = step_of(dim, value)
                    by_technique.setdefault(name, []).append((strength or 0.0, value))
            for name, found in by_technique.items():
                improves = REGISTRY[name].improves
                late = improves is not None and not improves & wanted
                tried = 0
                for _, value in sorted(found):
                    cand = self._on(base, **{dim: value})
                    row = rows.get(cand.recipe)
                    if row is None:
                        out.append(((tried + (SINGLE_LATE if late else 0), rank, order), cand))
                        break  # the next strength waits for this one
                    tried += 1
                    if row.get("status") not in KEPT or not self.gain(row, base):
                        late = True   # a milder value gained nothing: the stronger ones may still
        return out

    def _stacks(self, base: dict[str, Any], rank: int,
                rows: Mapping[str, dict[str, Any]]) -> list[Ranked]:
        """Stacks of the steps that proved worth it alone on ``base`` (their strongest such value per
        dimension), two at a time before three."""
        worthy: dict[str, str] = {}
        for dim, values in self.space.dimensions().items():
            if dim == spacemod.PRECISION:
                continue
            proved = []
            for value in values:
                row = rows.get(self._on(base, **{dim: value}).recipe) if value != spacemod.NONE else None
                if row is not None and row.get("status") in KEPT and not self.constraints.violations(row) \
                        and self.gain(row, base):
                    proved.append((self._key(row), -(step_of(dim, value)[1] or 0.0), value))
            if proved:
                worthy[dim] = min(proved)[2]   # the best on the objectives; of equals, the strongest
        out: list[Ranked] = []
        for size in range(2, len(worthy) + 1):
            for dims in combinations(worthy, size):
                out.append(((size - 0.5, rank, 0), self._on(base, **{d: worthy[d] for d in dims})))
        return out


def ranked_precisions(space: spacemod.Space, handle: Any, prof: Profile, predictor: Any,
                       objectives: list[str]) -> list[str]:
    """The space's precisions in the order the first objective favours before anything is measured:
    predicted latency (or energy), the bits each weight keeps for size, the space's order for quality."""
    precisions = list(space[spacemod.PRECISION])
    first = next((o for o in objectives if o != "accuracy"), None)
    if first == "size":
        return sorted(precisions, key=spacemod.weight_bits)
    if first is None or len(precisions) < 2:
        return precisions
    rank = predicted_ranks(handle, prof, predictor, precisions)
    return sorted(precisions, key=lambda p: rank[p])


def predicted_ranks(handle: Any, profile: Profile, predictor: Any, precisions: list[str]) -> dict[str, float]:
    """Predicted latency of the float model at each precision (the predictor's cost per precision class
    applied to its MACs and bytes), from its float .tflite; nothing is measured."""
    import dataclasses

    from ..tflite.facts import analyze

    report = analyze(handle.source.path, data=handle.float_tflite())
    return {p: predictor.predict_ms(dataclasses.replace(report, precision=p.partition("=")[0]), profile)
            for p in precisions}


def _candidate(row: dict[str, Any]) -> spacemod.Candidate | None:
    params = row.get("params")
    if not params:
        return None
    try:
        return spacemod.Candidate.of(params)
    except RecipeError:
        return None


__all__ = ["BASES", "Plan", "predicted_ranks", "ranked_precisions", "step_of", "weaker_or_equal"]
