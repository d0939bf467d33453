"""What a compression produced."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class CompressResult:
    """What a compression produced; ``to_dict`` is what the CLI prints with --json and the store keeps."""

    output: str
    sha256: str
    model_bytes: int
    gzip_bytes: int
    recipe: str
    profile: str
    precision: str
    source: str
    source_sha256: str
    config_hash: str
    quality: dict[str, Any] | None
    fit: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    weight_bytes: int = 0                 # raw bytes of the constant tensors
    weight_entropy_bytes: int = 0         # their ideal entropy-coded size (facts.weight_entropy_bytes)
    target: dict[str, Any] | None = None  # MCU/NPU facts: TFLM arena, flash, Vela or Edge TPU placement

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
