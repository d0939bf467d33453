"""Agent drivers: what runs on a device and answers ``info`` and ``bench`` in the protocol's schema.

A :class:`~edgesdk.deploy.transport.Transport` only puts files on a device, runs a command there and
closes; its :meth:`~edgesdk.deploy.transport.Transport.driver` names the driver that speaks for the
device: the python agent (:class:`PythonAgent`, any transport that can run it), TFLite's
``benchmark_model`` on a phone without python (:mod:`.benchmark_model`), or a board's firmware
harness (:mod:`.serial`). Every driver hands back protocol documents, so measuring is the same code
for all of them.
"""

from __future__ import annotations

import abc
import json
from typing import Any

from device_agent.protocol import ERROR_SCHEMA, INFO_SCHEMA, BenchSettings

from ..errors import MeasurementError


def parse_answer(run_stdout: str, stderr: str, returncode: int) -> dict[str, Any]:
    """The agent's one JSON document; its error documents, signals and silence become MeasurementError."""
    lines = [line for line in run_stdout.splitlines() if line.startswith("{")]
    # A signal: negative locally; 128+N through a remote shell or `timeout`.
    signal_no = -returncode if returncode < 0 else returncode - 128 if 128 < returncode < 160 else 0
    if not lines and signal_no:
        raise MeasurementError(f"the device agent was killed (signal {signal_no}) before it answered; "
                               "nothing was stored")
    if not lines:
        tail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {returncode}"
        raise MeasurementError(f"the device agent returned no result: {tail}")
    try:
        doc = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise MeasurementError(f"the device agent returned malformed JSON: {exc}") from exc
    if isinstance(doc, dict) and doc.get("schema") == ERROR_SCHEMA:
        if doc.get("error") in ("unsupported_model", "no_runtime"):
            raise MeasurementError(str(doc.get("message")))  # already a complete sentence for the user
        raise MeasurementError(f"the device agent failed ({doc.get('error')}): {doc.get('message')}")
    if returncode != 0:
        raise MeasurementError(f"the device agent exited with code {returncode}")
    return doc


class AgentDriver(abc.ABC):
    """Speaks for the device: describes it and measures a model, in the protocol's documents."""

    @abc.abstractmethod
    def info(self, check: str | None, timeout: float) -> dict[str, Any]:
        """The device and its runtime (schema ``edgesdk.deviceinfo/1``); with ``check`` (the device path of
        an operator probe) also ``model_check``.

        Raises:
            DeployError, MeasurementError: the device or the agent failed.
        """

    @abc.abstractmethod
    def bench(self, model: str, settings: BenchSettings, timeout: float) -> dict[str, Any]:
        """Measure the model at ``model`` (a path the transport's ``put`` returned): a measurement document,
        validated by the caller.

        Raises:
            DeployError, MeasurementError: the device or the agent failed.
        """


class PythonAgent(AgentDriver):
    """The python agent (:mod:`device_agent`), run by the transport."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def info(self, check: str | None, timeout: float) -> dict[str, Any]:
        run = self.transport.run_agent(["info", *(["--check", check] if check else [])], timeout)
        return parse_answer(run.stdout, run.stderr, run.returncode)

    def bench(self, model: str, settings: BenchSettings, timeout: float) -> dict[str, Any]:
        run = self.transport.run_agent(["bench", model, *settings.to_args()], timeout)
        return parse_answer(run.stdout, run.stderr, run.returncode)


def device_info(transport: Any, timeout: float = 120.0, check: str | None = None,
                driver: AgentDriver | None = None) -> dict[str, Any]:
    """The agent's description of the device and its runtime (schema ``edgesdk.deviceinfo/1``).

    ``check`` is the device path of an operator probe (:func:`edgesdk.tflite.facts.operator_probe`): the
    answer then carries ``model_check`` (``ok`` and ``message``).

    Raises:
        MeasurementError: not an info document, or the device has no runtime.
    """
    doc = (driver or transport.driver()).info(check, timeout)
    if doc.get("schema") != INFO_SCHEMA:
        raise MeasurementError(f"unexpected answer to 'info': schema {doc.get('schema')!r}")
    if not doc.get("runtime"):
        raise MeasurementError(doc.get("runtime_error", "no TFLite runtime on the device"))
    return doc
