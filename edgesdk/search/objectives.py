"""What a search optimizes and what it must respect: objectives, constraints, the Pareto set, the choice.

Every reader of a trial's result goes through here, so the fallbacks (top-1 agreement where there are
no labels, mean where there is no p50) are written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ..errors import RecipeError
from ..kinds import TrialStatus
from ..quality import Quality

OBJECTIVES: dict[str, Literal["maximize", "minimize"]] = {"accuracy": "maximize", "latency": "minimize",
                                                          "size": "minimize", "energy": "minimize"}
# A trial with a latency (measured on a device, or predicted) and a size.
KEPT = (TrialStatus.MEASURED.value, TrialStatus.ESTIMATED.value)


def check_objectives(objectives: list[str], has_data: bool) -> None:
    """Raises RecipeError for an unknown objective, or accuracy without evaluation data."""
    if not objectives or "" in objectives:
        raise RecipeError(f"--objectives names one or more of {', '.join(OBJECTIVES)}, comma-separated (no empty "
                          f"entry). Received: {','.join(objectives)!r}")
    if len(set(objectives)) != len(objectives):
        raise RecipeError(f"an objective is named twice. Received: {','.join(objectives)!r}")
    for name in objectives:
        if name not in OBJECTIVES:
            raise RecipeError(f"unknown objective {name!r}; expected: {', '.join(OBJECTIVES)}")
    if "accuracy" in objectives and not has_data:
        raise RecipeError("the accuracy objective needs evaluation data (--data)")


@dataclass(frozen=True)
class Constraints:
    """Limits a candidate must meet to be chosen. Quality limits need evaluation data."""

    max_accuracy_drop: float | None = None
    min_accuracy: float | None = None
    max_latency_ms: float | None = None
    max_memory_bytes: int | None = None
    require_full_acceleration: bool = False   # every operator on the profile's accelerator, none on the CPU
    min_sqnr_db: float | None = None   # fidelity: the outputs' SQNR against the original's (no labels needed)

    def check(self, has_data: bool) -> None:
        """Refuse limits that nothing could check: a quality limit without evaluation data would be
        silently met by every candidate.

        Raises:
            RecipeError: naming the limit and what it needs.
        """
        given = [flag for flag, value in (("--max-accuracy-drop", self.max_accuracy_drop),
                                          ("--min-accuracy", self.min_accuracy)) if value is not None]
        if given and not has_data:
            raise RecipeError(f"{' and '.join(given)} need evaluation data to be checked: give --data "
                              "(an .npz with 'x' and 'y'), or leave the limit out")

    def bounded(self) -> frozenset[str]:
        """The objectives these limits already bound."""
        out = set()
        if self.max_accuracy_drop is not None or self.min_accuracy is not None:
            out.add("accuracy")
        if self.max_latency_ms is not None:
            out.add("latency")
        return frozenset(out)

    def quality_violations(self, row: dict[str, Any]) -> list[str]:
        """The quality limits ``row`` breaks (compressing further breaks them too), as sentences."""
        out: list[str] = []
        quality = Quality.from_dict(row.get("quality"))
        if quality is None:
            return out
        drop = quality.drop
        if self.max_accuracy_drop is not None and drop is not None and drop > self.max_accuracy_drop:
            out.append(f"{quality.metric} drop {drop:.4f} > {self.max_accuracy_drop}")
        elif self.max_accuracy_drop is not None and drop is None and quality.top1_agreement is not None and \
                quality.top1_agreement < 1 - self.max_accuracy_drop:
            # no labels: the accuracy can drop by as much as the share of samples whose class changed
            out.append(f"top-1 agreement {quality.top1_agreement:.4f} < {1 - self.max_accuracy_drop:.4f} (no labels: "
                       "the accuracy may drop by as much as the disagreement)")
        elif self.max_accuracy_drop is not None and drop is None and quality.top1_agreement is None:
            out.append("the accuracy drop cannot be checked: no labels, and the model is not a classifier "
                       "(give labels in --data, or limit the fidelity with --min-sqnr)")
        if self.min_accuracy is not None and quality.metric == "accuracy" and \
                quality.after is not None and quality.after < self.min_accuracy:
            out.append(f"accuracy {quality.after:.4f} < {self.min_accuracy}")
        if self.min_sqnr_db is not None and quality.sqnr_db is not None and quality.sqnr_db < self.min_sqnr_db:
            out.append(f"fidelity {quality.sqnr_db:.1f} dB SQNR < {self.min_sqnr_db:g} dB")
        return out

    def violations(self, row: dict[str, Any]) -> list[str]:
        """What ``row`` (a trial's result) breaks, as sentences; empty when it meets every limit."""
        out = self.quality_violations(row)
        if self.max_latency_ms is not None and row.get("latency_ms") is not None and \
                row["latency_ms"] > self.max_latency_ms:
            out.append(f"latency {row['latency_ms']:.3f} ms > {self.max_latency_ms} ms")
        if self.max_memory_bytes is not None and row.get("memory_bytes", 0) > self.max_memory_bytes:
            out.append(f"memory {row['memory_bytes']:,} B > {self.max_memory_bytes:,} B")
        accelerator = row.get("accelerator") or {}
        if self.require_full_acceleration and accelerator.get("fully_accelerated") is False:
            ops = ", ".join(accelerator.get("fallback_ops") or []) or "some operators"
            out.append(f"not fully accelerated: {ops} ran on the CPU")
        return out


def objective_value(name: str, row: dict[str, Any]) -> float:
    """The number Optuna optimizes for one objective of a finished candidate."""
    if name == "accuracy":
        quality = Quality.from_dict(row.get("quality"))
        return quality.score if quality is not None else 0.0
    if name == "latency":
        return float(row["latency_ms"])
    if name == "size":
        return float(row["model_bytes"])
    if name == "energy":
        energy = row.get("energy_mj")
        return float(energy) if energy is not None else float("inf")
    raise RecipeError(f"unknown objective {name!r}; expected: {', '.join(OBJECTIVES)}")


# the least relative gain on an objective that counts as one (measured latency moves by a few per cent)
MARGIN = {"size": 0.01, "latency": 0.03, "energy": 0.03}


def gains(row: dict[str, Any], base: dict[str, Any], objectives: list[str]) -> list[str]:
    """The objectives (other than quality) on which ``row`` beats ``base`` by their margin."""
    out = []
    for name in objectives:
        if name not in MARGIN:
            continue
        try:
            ours, theirs = objective_value(name, row), objective_value(name, base)
        except (KeyError, TypeError):  # one of them has no value for it (not measured)
            continue
        if 0 < theirs < float("inf") and ours < theirs * (1 - MARGIN[name]):
            out.append(name)
    return out


def pareto(rows: list[dict[str, Any]], objectives: list[str]) -> list[int]:
    """Trial numbers on the Pareto front of the kept rows (non-dominated on every objective)."""
    signs = [1.0 if OBJECTIVES[o] == "minimize" else -1.0 for o in objectives]
    vecs = {r["number"]: [s * objective_value(o, r) for s, o in zip(signs, objectives, strict=True)] for r in rows}

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))

    return sorted(n for n, v in vecs.items() if not any(dominates(w, v) for m, w in vecs.items() if m != n))


def choose(rows: list[dict[str, Any]], objectives: list[str],
           constrained: frozenset[str] = frozenset()) -> tuple[int | None, bool]:
    """The best kept row: among those meeting every constraint, best on the first objective that no
    constraint already bounds (with --max-accuracy-drop, the fastest model within that drop), ties by the
    others in order; if none meets them, the one with the fewest violations."""
    if not rows:
        return None, False
    order = [o for o in objectives if o not in constrained] + [o for o in objectives if o in constrained]

    def key(r: dict[str, Any]) -> tuple[float, ...]:
        return tuple((1.0 if OBJECTIVES[o] == "minimize" else -1.0) * objective_value(o, r) for o in order)

    meeting = [r for r in rows if not r["violations"]]
    if meeting:
        return min(meeting, key=key)["number"], True
    return min(rows, key=lambda r: (len(r["violations"]), key(r)))["number"], False
