"""Hardware-aware search: the space of candidates, the Optuna-driven `tune`, and its report."""

from .objectives import OBJECTIVES, Constraints
from .results import TuneResult
from .space import Candidate, Space, build, for_form
from .tune import DEFAULT_BUDGET, default_budget, tune

__all__ = ["DEFAULT_BUDGET", "OBJECTIVES", "Candidate", "Constraints", "Space", "TuneResult", "build", "default_budget",
           "for_form", "tune"]
