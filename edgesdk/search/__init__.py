"""Hardware-aware search: the space of candidates, the Optuna-driven `tune`, and its report."""

from .space import Candidate, Space, build
from .tune import OBJECTIVES, Constraints, TuneResult, tune

__all__ = ["OBJECTIVES", "Candidate", "Constraints", "Space", "TuneResult", "build", "tune"]
