"""Does a model fit a profile? Precision, operators and memory budgets, before any device time."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from device_agent.protocol import OFFLOADED

from .profiles import Profile
from .targets import TargetFacts
from .techniques import REGISTRY, Step
from .tflite.facts import ModelReport


@dataclass(frozen=True)
class Feasibility:
    """``problems`` make the model unusable on the target; ``warnings`` are worth knowing."""

    profile: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    unsupported_operators: list[str] = field(default_factory=list)
    ram_needed_bytes: int = 0
    ram_budget_bytes: int = 0
    storage_needed_bytes: int = 0
    storage_budget_bytes: int = 0
    ram_basis: str = "estimate"          # "tflm arena", "vela", or an estimate from tensor liveness

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def precision_problem(profile: Profile, step: Step) -> str | None:
    """Why ``profile`` cannot run the conversion ``step``, or None if it can (the precision's own rule:
    :class:`edgesdk.techniques.PrecisionSpec`)."""
    spec = REGISTRY[step.name].precision
    assert spec is not None, f"{step.name} is not a conversion step"
    return spec.check(profile, step.value, str(step))


def check(report: ModelReport, profile: Profile, target: TargetFacts | None = None) -> Feasibility:
    """Check a .tflite model's report against ``profile``; ``target`` (:func:`edgesdk.targets.assess`)
    replaces the RAM and flash estimates with the measured arena and the target's flash, and adds its
    problems and warnings."""
    problems: list[str] = list(target.problems) if target else []
    warnings: list[str] = list(target.warnings) if target else []
    spec = REGISTRY[report.precision].precision  # the precision a model of this kind was written in
    assert spec is not None
    problem = spec.check(profile, None, report.precision)
    if problem:
        problems.append(problem)
    elif spec.runs_as not in profile.preferred_precisions:
        warnings.append(f"{report.precision} runs on {profile.name} but not well; preferred: "
                        f"{', '.join(profile.preferred_precisions)}")
    missing = sorted(op for op in report.operators if not profile.supports_operator(op))
    if profile.accelerator in OFFLOADED:  # tensor types and ranks count too (targets/gpu.py)
        from .targets import gpu

        missing = gpu.predicted_ops(report, profile)
    if missing:
        text = f"operators {', '.join(missing)} are not supported by {profile.name}"
        if profile.unsupported_operators == "refuse":
            problems.append(text)
        else:
            warnings.append(text + "; they will fall back to the CPU, slowly")
    ram = report.peak_activation_bytes + (report.weight_bytes if profile.memory.weights_in_ram else 0)
    what, basis = ("activations + weights" if profile.memory.weights_in_ram else "peak activations"), "estimate"
    if target is not None and target.ram_bytes is not None:
        ram, basis = target.ram_bytes, {"tflite-micro": "tflm arena", "vela": "vela"}.get(target.target, target.target)
        what = "the TFLite Micro tensor arena" if target.target == "tflite-micro" else "the tensor arena Vela plans"
    if ram > profile.memory.ram_bytes:
        problems.append(f"{what} need{'s' if what.startswith('the') else ''} {ram:,} bytes of RAM; {profile.name} "
                        f"has a budget of {profile.memory.ram_bytes:,}")
    storage = target.flash_bytes if target is not None and target.flash_bytes is not None else report.model_bytes
    if storage > profile.memory.storage_bytes:
        what = "the model with its runtime and kernels needs" if target is not None else "the model is"
        problems.append(f"{what} {storage:,} bytes; {profile.name} can store {profile.memory.storage_bytes:,}")
    return Feasibility(profile.name, problems, warnings, missing, ram, profile.memory.ram_bytes,
               storage, profile.memory.storage_bytes, basis)
