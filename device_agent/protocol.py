"""The versioned measurement schema spoken by the device agent.

This module is the single source of truth for the protocol: the agent writes documents that
``validate`` accepts, and the host SDK imports this module to parse them. Stdlib only.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, TypedDict

SCHEMA = "edgesdk.measurement/1"
INFO_SCHEMA = "edgesdk.deviceinfo/1"
ERROR_SCHEMA = "edgesdk.error/1"

LATENCY_FIELDS = (
    "mean_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "std_ms", "cv",
    "runs", "warmup_runs", "first_inference_ms", "init_ms",
)
MEMORY_FIELDS = ("peak_rss_bytes", "peak_rss_increase_bytes", "model_bytes")
# Figures a runtime other than the python agent (benchmark_model) may not report: null, with a warning.
NULLABLE = ("p50_ms", "p90_ms", "p99_ms", "peak_rss_bytes", "peak_rss_increase_bytes")
REQUIRED = ("schema", "model_sha256", "runtime", "threads", "device", "latency", "memory",
            "power", "output_checksum", "warnings")
# Fields of the device description that identify the hardware/OS, and so go into its fingerprint.
# Temperature, governor and current frequency change from run to run and stay out.
FINGERPRINT_FIELDS = ("hostname", "machine", "cpu_model", "cores", "ram_bytes", "os")
# What the agent can run a model on (LiteRT's CompiledModel for gpu and npu; auto: the best one there is).
ACCELERATORS = ("cpu", "gpu", "npu", "auto")
MAX_RUNS = 1_000_000       # timed or warm-up runs one measurement may ask for
MAX_SECONDS = 3600         # the longest minimum timing window one measurement may ask for
OFFLOADED = ("gpu", "npu")  # the accelerators that are not the CPU (the CPU runs what they cannot)


@dataclass(frozen=True)
class BenchSettings:
    """How the agent measures. The host sends these as arguments and keys its cache on them."""

    runs: int = 50
    warmup: int = 5
    min_time_s: float = 1.0
    threads: int | None = None
    max_cv: float = 0.15
    retries: int = 2
    windows: int = 5                   # timed runs split into windows; a speed change keeps the quietest
    seed: int = 0
    power: bool = True                 # measure energy when the device has a power source
    power_cmd: str | None = None       # an external meter: a command that prints watts
    delegate: str | None = None        # None: the runtime's default (XNNPACK); "none": no delegate; else a
                                       # delegate library's path on the device (load_delegate)
    accelerator: str | None = None     # cpu, gpu, npu or auto (LiteRT's CompiledModel); None: the CPU as ever
    inputs: str | None = None          # an .npz on the device with the user's samples (names + input_0 ...):
                                       # the timed runs feed the first, the accelerator's fidelity all of them

    def __post_init__(self) -> None:
        if not 1 <= self.runs <= MAX_RUNS:
            raise ValueError(f"runs must be between 1 and {MAX_RUNS:,}. Received: {self.runs}")
        if not 0 <= self.warmup <= MAX_RUNS:
            raise ValueError(f"warmup must be between 0 and {MAX_RUNS:,}. Received: {self.warmup}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1. Received: {self.threads}")
        if self.windows < 1:
            raise ValueError(f"windows must be >= 1. Received: {self.windows}")
        if self.accelerator is not None and self.accelerator not in ACCELERATORS:
            raise ValueError(f"accelerator must be one of {', '.join(ACCELERATORS)}. Received: {self.accelerator!r}")
        if not (0 <= self.min_time_s <= MAX_SECONDS and 0 < self.max_cv < float("inf") and 0 <= self.retries <= 100):
            raise ValueError(f"min_time_s >= 0, max_cv > 0 and retries >= 0 are required. Received: {self}")

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        for key in ("delegate", "accelerator"):  # None keeps the cache keys of measurements made before them
            if doc[key] is None:
                del doc[key]
        del doc["inputs"]  # a path on one device: the host keys a measurement on the samples' sha256 instead
        return doc

    def to_args(self) -> list[str]:
        """The agent's command-line arguments for these settings."""
        args = ["--runs", str(self.runs), "--warmup", str(self.warmup), "--min-time", str(self.min_time_s),
                "--max-cv", str(self.max_cv), "--retries", str(self.retries), "--windows", str(self.windows),
                "--seed", str(self.seed)]
        args += ["--threads", str(self.threads)] if self.threads is not None else []
        args += ["--power-cmd", self.power_cmd] if self.power_cmd else []
        args += ["--delegate", self.delegate] if self.delegate else []
        args += ["--accelerator", self.accelerator] if self.accelerator else []
        args += ["--inputs", self.inputs] if self.inputs else []
        return args + ([] if self.power else ["--no-power"])


def typical_ms(latency: dict[str, Any]) -> float:
    """The latency a measurement stands for: its p50, or its mean where the runtime reports no p50
    (older benchmark_model builds)."""
    return float(latency["p50_ms"] if latency.get("p50_ms") is not None else latency["mean_ms"])


class Runtime(TypedDict):
    name: str
    version: str


class Memory(TypedDict):
    peak_rss_bytes: int | None
    peak_rss_increase_bytes: int | None
    model_bytes: int


def measurement(*, model_sha256: str, runtime: Runtime, delegate: str, accelerator: dict[str, Any],
                settings: BenchSettings, device: dict[str, Any], latency: dict[str, Any], memory: Memory,
                power: dict[str, Any], output_checksum: str | None, warnings: list[str], started_at: float,
                inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A measurement document of schema :data:`SCHEMA`, as every producer writes it (the agent's bench,
    the host's benchmark_model driver): one place that knows its layout. :func:`validate` reads it."""
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "model_sha256": model_sha256,
        "runtime": dict(runtime),
        "delegate": delegate,
        "accelerator": accelerator,
        "threads": settings.threads if settings.threads is not None else "default",
        "settings": settings.to_dict(),
        "device": device,
        "latency": latency,
        "memory": dict(memory),
        "power": power,
        "output_checksum": output_checksum,
    }
    if inputs is not None:
        doc["inputs"] = inputs
    return {**doc, "warnings": warnings, "started_at": started_at, "finished_at": time.time()}


class ProtocolError(ValueError):
    """A document does not follow the measurement schema."""


def validate(doc: Any) -> dict[str, Any]:
    """Check that ``doc`` is a measurement document of this schema version and return it.

    Raises:
        ProtocolError: naming the first missing or malformed field.
    """
    if not isinstance(doc, dict):
        raise ProtocolError(f"expected a JSON object. Received: {type(doc).__name__}")
    if doc.get("schema") != SCHEMA:
        raise ProtocolError(f"expected schema {SCHEMA!r}. Received: {doc.get('schema')!r}")
    for key in REQUIRED:
        if key not in doc:
            raise ProtocolError(f"measurement lacks field {key!r}")
    for key in LATENCY_FIELDS:
        value = doc["latency"].get(key)
        if value is None and key in NULLABLE:
            continue
        if not isinstance(value, (int, float)) or value < 0:
            raise ProtocolError(f"latency.{key} must be a non-negative number. Received: {value!r}")
    for key in MEMORY_FIELDS:
        value = doc["memory"].get(key)
        if not isinstance(value, int) and not (value is None and key in NULLABLE):
            raise ProtocolError(f"memory.{key} must be an integer. Received: {value!r}")
    missing = [key for key in NULLABLE if {**doc["latency"], **doc["memory"]}.get(key, 0) is None]
    if missing and not doc["warnings"]:
        raise ProtocolError(f"{', '.join(missing)} not reported, and no warning says why")
    runtime = doc["runtime"]
    if not isinstance(runtime, dict) or not runtime.get("name") or not runtime.get("version"):
        raise ProtocolError(f"runtime must name the runtime and its version. Received: {runtime!r}")
    if not isinstance(doc["device"], dict) or not doc["device"].get("fingerprint"):
        raise ProtocolError("device must carry a fingerprint")
    power = doc["power"]
    if not isinstance(power, dict) or "source" not in power:
        raise ProtocolError(f"power must be an object with a 'source'. Received: {power!r}")
    if power["source"] is None and not power.get("reason"):
        raise ProtocolError("power without a source must say why (power.reason)")
    if power["source"] is not None:
        for key in ("idle_w", "active_w", "energy_per_inference_mj"):
            if not isinstance(power.get(key), (int, float)) or not 0 <= power[key] < float("inf"):
                raise ProtocolError(f"power.{key} must be a non-negative number. Received: {power.get(key)!r}")
    return doc
