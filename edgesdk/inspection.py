"""`edgesdk inspect`: the report for any supported model, with an optional fit against a profile."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from . import feasibility, targets
from .errors import ModelError
from .feasibility import Feasibility
from .intake import ModelHandle, ModelSource, open_model
from .profiles import Profile, load_profile
from .targets import TargetFacts
from .tflite import facts, runnable
from .tflite.facts import ModelReport


@dataclass(frozen=True)
class Inspection:
    """What `edgesdk inspect` reports: the file, its .tflite facts and, with a profile, whether it fits
    (and the target facts of an MCU or NPU profile: the TFLite Micro arena, Vela's compilation, the
    Edge TPU's placement)."""

    source: ModelSource
    report: ModelReport
    fit: Feasibility | None = None
    target: TargetFacts | None = None
    takes: dict[str, Any] | None = None   # the model's form, the steps it takes, and why it refuses the others

    def to_dict(self) -> dict[str, Any]:
        s = self.source
        return {"source": {"path": str(s.path), "format": s.format, "sha256": s.sha256, "bytes": s.size_bytes},
                "report": self.report.to_dict(), "fit": self.fit.to_dict() if self.fit else None,
                "target": self.target.to_dict() if self.target else None, "takes": self.takes}


def takes(handle: ModelHandle) -> dict[str, Any]:
    """What a model can be given: every technique that accepts its form, and the others with why not."""
    from .techniques import REGISTRY

    form = handle.form
    accepted = [name for name, t in REGISTRY.items() if form in t.forms]
    refused = {name: handle.why() for name, t in REGISTRY.items() if form not in t.forms}
    return {"form": form.value, "form_text": form.text, "accepted": accepted, "refused": refused,
            "changes": list(handle.changes), "custom_ops": list(handle.custom_ops)}


def inspect_model(model: str | os.PathLike[str], profile: str | Profile | None = None, *,
                  trust_model_code: bool = False) -> Inspection:
    """Inspect a model of any supported format; Keras and SavedModel sources are converted to fp32
    .tflite in memory first, so every format is described in the same terms.

    ``trust_model_code``: load Keras layers that carry Python code (refused otherwise).

    Raises:
        ModelError: the model cannot be read, or the host's runtime cannot load and run it (a model
            whose custom operators have no kernel here is inspected). ProfileError: the profile is unknown or invalid.
    """
    prof = profile if isinstance(profile, Profile) or profile is None else load_profile(profile)
    handle = open_model(model, trust_code=trust_model_code)
    data = handle.as_given()
    report = facts.analyze(handle.source.path, data=data)   # the structure checked before the runtime sees it
    smoke = runnable.check(data)
    if smoke.broken:
        raise ModelError(f"{handle.source.path}: the model does not run on LiteRT ({smoke.error})")
    target = targets.assess(data, report, prof) if prof else None
    return Inspection(handle.source, report, feasibility.check(report, prof, target) if prof else None, target,
                      takes(handle))
