"""What every runtime's loaded model is (a :class:`Session`), and the errors a runtime raises."""

from __future__ import annotations

import abc
from typing import Any, Optional


class UnsupportedModel(RuntimeError):
    """The device runtime refuses the model before running it (an operator or version it lacks)."""


class NoAccelerator(RuntimeError):
    """The device cannot serve the accelerator asked for (no GPU adapter, no NPU library, a runtime
    without an accelerator API)."""


class Session(abc.ABC):
    """A model loaded by a runtime, ready to run."""

    doc: dict[str, Any] = {"requested": None, "used": "cpu", "api": "interpreter", "fully_accelerated": None,
                           "fallback_ops": [], "adapter": None}

    def accelerator(self) -> dict[str, Any]:
        """What ran the model: ``used`` (cpu, gpu, npu), whether it was ``fully_accelerated``, the operators
        left to the CPU (``fallback_ops``) and the GPU ``adapter``."""
        return dict(self.doc)

    def cpu_twin(self) -> Optional[Session]:
        """The same model on the CPU with the same inputs and outputs, to check an accelerator's outputs
        against (None for a session that runs on the CPU itself)."""
        return None

    @abc.abstractmethod
    def input_details(self) -> list[dict]:
        """One dict per input: ``name``, ``shape`` and ``dtype``."""

    @abc.abstractmethod
    def set_inputs(self, arrays: list[Any]) -> None:
        """Give every input its array (in the order of :meth:`input_details`)."""

    @abc.abstractmethod
    def invoke(self) -> None:
        """Run the model once on the inputs set."""

    @abc.abstractmethod
    def outputs(self) -> list[Any]:
        """Every output of the last run, as numpy arrays."""
