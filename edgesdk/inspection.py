"""`edgesdk inspect`: the report for any supported model, with an optional fit against a profile."""

from __future__ import annotations

import os
from typing import Any

from . import feasibility, targets
from .intake import open_model
from .profiles import Profile, load_profile
from .tflite import facts


def inspect_model(model: str | os.PathLike[str], profile: str | Profile | None = None, *,
                  trust_model_code: bool = False) -> dict[str, Any]:
    """Inspect a model of any supported format; Keras and SavedModel sources are converted to fp32
    .tflite in memory first, so every format is described in the same terms.

    Returns:
        ``{"source": {...}, "report": ModelReport.to_dict(), "fit": Feasibility.to_dict() | None,
        "target": TargetFacts.to_dict() | None}``: the target facts for MCU and NPU profiles (the
        TFLite Micro arena, Vela's compilation, the Edge TPU's placement).

    ``trust_model_code``: load Keras layers that carry Python code (refused otherwise).

    Raises:
        ModelError: the model cannot be read. ProfileError: the profile is unknown or invalid.
    """
    prof = profile if isinstance(profile, Profile) or profile is None else load_profile(profile)
    handle = open_model(model, trust_code=trust_model_code)
    source = handle.source
    data = handle.float_tflite()
    report = facts.analyze(source.path, data=data)
    target = targets.assess(data, report, prof) if prof else None
    return {
        "source": {"path": str(source.path), "format": source.format, "sha256": source.sha256,
                   "bytes": source.size_bytes},
        "report": report.to_dict(),
        "fit": feasibility.check(report, prof, target).to_dict() if prof else None,
        "target": target.to_dict() if target else None,
    }
