"""How good a compressed model is, as one typed record read the same way everywhere.

``metric`` is ``accuracy`` (labels, a classifier: ``before`` and ``after`` are the float and compressed
model's accuracy), ``mse`` (targets: their mean squared errors) or ``fidelity`` (no labels: the SQNR of
the compressed model's outputs against the float model's, and for a classifier the share of samples
whose top-1 class agrees). ``inputs`` says what it was measured on: the user's data (None) or
``generated`` inputs (no data was given: standard-normal samples).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

# Below this SQNR against the original the outputs barely follow it (noise a third of the signal): a
# warning on every file, and without labels `tune` does not choose such a candidate.
LOW_FIDELITY_DB = 5.0


@dataclass(frozen=True)
class Quality:
    """A compressed model's quality on evaluation data (see the module docstring)."""

    metric: str
    samples: int = 0
    sqnr_db: float | None = None      # None: nothing to compare with (a model measured as it is)
    before: float | None = None
    after: float | None = None
    top1_agreement: float | None = None
    inputs: str | None = None          # None: the user's data; "generated": no data was given
    # A model with several outputs: each one's name and SQNR against the original (sqnr_db is the lowest).
    outputs: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.metric not in ("accuracy", "mse", "fidelity"):
            raise ValueError(f"metric must be accuracy, mse or fidelity. Received: {self.metric!r}")

    @classmethod
    def from_dict(cls, doc: dict[str, Any] | None) -> Quality | None:
        """The record of a stored dict (``results.json``, the store, a trial row; older ones may lack fields);
        None for None."""
        if not doc:
            return None
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k in ("metric", "samples")}

    @property
    def score(self) -> float:
        """The number a search maximizes: accuracy, else top-1 agreement, else minus the MSE, else the SQNR."""
        if self.metric == "accuracy" and self.after is not None:
            return float(self.after)
        if self.top1_agreement is not None:
            return float(self.top1_agreement)
        if self.metric == "mse" and self.after is not None:
            return -float(self.after)
        return float(self.sqnr_db or 0.0)

    @property
    def drop(self) -> float | None:
        """How much worse than the float model (accuracy lost, or MSE gained); None without a reference."""
        if self.before is None or self.after is None:
            return None
        return self.before - self.after if self.metric == "accuracy" else self.after - self.before

    @property
    def points(self) -> float | None:
        """Percentage points a regression gate compares: accuracy, else top-1 agreement; None otherwise."""
        if self.metric == "accuracy" and self.after is not None:
            return 100 * float(self.after)
        if self.top1_agreement is not None:
            return 100 * float(self.top1_agreement)
        return None
