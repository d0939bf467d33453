"""`edgesdk inspect`: the report for any supported model, with an optional fit against a profile."""

from __future__ import annotations

import os
from typing import Any

from . import fit, inspect, models
from .profiles import Profile, load_profile


def inspect_model(model: str | os.PathLike[str], profile: str | Profile | None = None) -> dict[str, Any]:
    """Inspect a model of any supported format; Keras and SavedModel sources are converted to fp32
    .tflite in memory first, so every format is described in the same terms.

    Returns:
        ``{"source": {...}, "report": ModelReport.to_dict(), "fit": Fit.to_dict() | None}``.

    Raises:
        ModelError: the model cannot be read. ProfileError: the profile is unknown or invalid.
    """
    prof = profile if isinstance(profile, Profile) or profile is None else load_profile(profile)
    source = models.identify(model)
    if source.format == "tflite":
        report = inspect.analyze(source.path)
    else:
        from .techniques import Step
        from .techniques.convert import convert

        report = inspect.analyze(source.path, data=convert(models.load_source(source), Step("fp32"), None))
    return {
        "source": {"path": str(source.path), "format": source.format, "sha256": source.sha256,
                   "bytes": source.size_bytes},
        "report": report.to_dict(),
        "fit": fit.check(report, prof).to_dict() if prof else None,
    }
