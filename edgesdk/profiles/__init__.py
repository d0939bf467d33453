"""Hardware profiles: YAML data describing a target, validated on load.

A profile bounds what edgesdk may produce for a target: the precisions it runs, the operators it
has, its memory budgets, a roofline for estimates and its power source. Ship one YAML per target
beside this module; users pass a path to their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from ..errors import ProfileError, first_line
from ..fileio import read_text
from ..kinds import COST_CLASSES, PRECISIONS
from ..strict import Strict, StrictBool

PROFILE_DIR = Path(__file__).parent


class Memory(Strict):
    ram_bytes: int = Field(gt=0, description="working memory for one model (tensor arena on an MCU)")
    storage_bytes: int = Field(gt=0, description="where the model is stored (flash on an MCU)")
    weights_in_ram: StrictBool = Field(description="weights are loaded into RAM (CPU/GPU) or read from flash")


class Roofline(Strict):
    peak_macs_per_s: dict[str, float]

    @field_validator("peak_macs_per_s")
    @classmethod
    def _positive_peaks(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not (v > 0 and v != float("inf"))}
        if bad:
            raise ValueError(f"every peak must be a positive, finite MAC/s rate. Received: {bad}")
        return value
    memory_bandwidth_bytes_per_s: float = Field(gt=0)
    # Kernels work on whole tiles: a quantized GEMM packs the reduction (kernel height x width x input
    # channels) in blocks of ``quantized_k_tile`` input channels, a depthwise kernel runs
    # ``depthwise_channel_tile`` channels at a time. A 3-channel stem then costs what an 8-channel one
    # does. 1 (the default) counts plain MACs.
    quantized_k_tile: int = Field(1, ge=1)
    depthwise_channel_tile: int = Field(1, ge=1)
    # Kernel facts, beside the peaks: the share of the peak the runtime's kernels reach, by precision class
    # (float, dynamic, int8, int16x8), by kind of layer (conv, fc, depthwise) or both ("int8_depthwise");
    # the cost of each operator launched and of each inference; the last-level cache, whose traffic
    # moves at its own bandwidth. `edgesdk calibrate` replaces them with what the device measures.
    kernel_efficiency: dict[str, float] = Field(default_factory=dict)
    per_op_us: float = Field(0.0, ge=0)
    fixed_us: float = Field(0.0, ge=0)
    cache_bytes: int = Field(0, ge=0)
    cache_bandwidth_bytes_per_s: float | None = Field(None, gt=0)
    # How far an uncalibrated estimate can be off: within this factor of the device's latency (either way),
    # as measured on the models benchmarks/predictor_error.py runs (or assumed, where the YAML says so).
    uncalibrated_error: float = Field(3.0, ge=1)

    @field_validator("kernel_efficiency")
    @classmethod
    def _efficiencies(cls, value: dict[str, float]) -> dict[str, float]:
        kinds = ("conv", "fc", "depthwise")
        known = {*COST_CLASSES, *kinds, *(f"{c}_{k}" for c in COST_CLASSES for k in kinds)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown kernel class(es) {unknown}; expected a precision class "
                             f"({', '.join(COST_CLASSES)}), a kind ({', '.join(kinds)}) or both (int8_depthwise)")
        bad = {k: v for k, v in value.items() if not 0 < v <= 10}
        if bad:
            raise ValueError(f"an efficiency is a share of the peak, above 0 and at most 10. Received: {bad}")
        return value


class Power(Strict):
    source: Literal["mains", "usb", "battery"]
    idle_w: float = Field(ge=0)
    active_w: float = Field(gt=0)


class Mcu(Strict):
    """A cycle model for a microcontroller running TFLite Micro (or the host CPU beside an NPU).

    cycles = sum over layers of MACs x ``cycles_per_mac[kind]`` (kind: conv, depthwise, fc), scaled for
    other precisions by the roofline's int8 peak over that precision's peak, plus ``cycles_per_op`` for
    every operator. Calibrated against published measurements (``calibrated_on`` says which).
    """

    clock_hz: float = Field(gt=0)
    cycles_per_mac: dict[Literal["conv", "depthwise", "fc"], float]
    cycles_per_op: float = Field(0.0, ge=0)
    cycles_per_element: float = Field(0.0, ge=0, description="per output element of operators without MACs")
    active_w: float | None = Field(None, gt=0, description="power while inferring, from the same measurements")
    calibrated_on: str = ""
    # Flash for the runtime and kernels, beside the model: an estimate (see targets/tflm.py).
    runtime_flash_bytes: int = Field(20_000, ge=0)


class Npu(Strict):
    """How an NPU compiler is driven and what runs beside it."""

    compiler: Literal["vela", "edgetpu-rules"]
    accelerator: str = ""                 # vela --accelerator-config, e.g. ethos-u55-256
    system_config: str = ""               # vela --system-config
    memory_mode: str = ""                 # vela --memory-mode
    clock_hz: float | None = Field(None, gt=0)
    # Operators the NPU cannot run execute on the host CPU at this rate (MAC/s), when no `mcu` model is given.
    fallback_macs_per_s: float | None = Field(None, gt=0)
    onchip_param_bytes: int | None = Field(None, gt=0)   # parameters beyond this stream from off-chip


class Profile(Strict):
    """A hardware target. Immutable; build it with :func:`load_profile`."""

    name: str
    description: str
    compute_class: Literal["cpu", "gpu", "npu", "mcu"]
    runtime: str
    precisions: tuple[str, ...]
    preferred_precisions: tuple[str, ...]
    operators: Literal["all"] | frozenset[str]
    unsupported_operators: Literal["refuse", "cpu-fallback"]
    # What the device agent runs the model on by default (LiteRT's CompiledModel for gpu and npu); None:
    # the CPU interpreter. `--accelerator` overrides it.
    accelerator: Literal["cpu", "gpu", "npu"] | None = None
    # Tensor types the accelerator has no kernels for: an operator reading or writing one falls back.
    unsupported_tensor_types: frozenset[str] = frozenset()
    max_tensor_rank: int | None = Field(None, ge=1, description="tensors of more dimensions fall back")
    memory: Memory
    roofline: Roofline
    power: Power
    mcu: Mcu | None = None
    npu: Npu | None = None
    path: str = ""

    @field_validator("precisions", "preferred_precisions")
    @classmethod
    def _known_precisions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in value if p not in PRECISIONS]
        if unknown:
            raise ValueError(f"unknown precision(s) {unknown}; expected some of {list(PRECISIONS)}")
        if not value:
            raise ValueError("at least one precision is required")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        if not set(self.preferred_precisions) <= set(self.precisions):
            raise ValueError("preferred_precisions must be a subset of precisions")
        missing = [p for p in self.precisions if p not in self.roofline.peak_macs_per_s]
        if missing:
            raise ValueError(f"roofline.peak_macs_per_s lacks precision(s) {missing}")
        return self

    def supports_operator(self, op: str) -> bool:
        return self.operators == "all" or op in self.operators


def _format_error(path: Path, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{path}: field {where!r}: {first['msg']}{more}"


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a shipped profile by name (``rpi5``) or a user's YAML file by path.

    Raises:
        ProfileError: unknown name, unreadable file, or a field that fails validation (named).
    """
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or path.is_file()):
        path = PROFILE_DIR / f"{text}.yaml"
        if not path.is_file():
            raise ProfileError(f"unknown profile {text!r}; expected one of {', '.join(list_profiles())} "
                               "or a path to a .yaml profile")
    try:
        raw = yaml.safe_load(read_text(path))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: a profile must be UTF-8 text; byte {exc.start} is not") from exc
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {first_line(exc)}") from exc
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: a profile must be a YAML mapping. Received: {type(raw).__name__}")
    odd = [k for k in raw if not isinstance(k, str)]
    if odd:
        raise ProfileError(f"{path}: every field name must be text. Received: {odd[0]!r}")
    if "path" in raw:
        raise ProfileError(f"{path}: field 'path' is set by edgesdk (where the profile was read from); remove it")
    operators = raw.get("operators")
    if isinstance(operators, list):
        names = [op for op in operators if not isinstance(op, str)]
        if names:
            raise ProfileError(f"{path}: field 'operators': every operator is a name such as CONV_2D. "
                               f"Received: {names[0]!r}")
        raw["operators"] = frozenset(operators)
    if isinstance(raw.get("unsupported_tensor_types"), list):
        raw["unsupported_tensor_types"] = frozenset(str(t).upper() for t in raw["unsupported_tensor_types"])
    try:
        return Profile.model_validate({**raw, "path": str(path)})
    except ValidationError as exc:
        raise ProfileError(_format_error(path, exc)) from exc


def list_profiles() -> list[str]:
    """Names of the profiles shipped with edgesdk."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
