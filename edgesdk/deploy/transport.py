"""The Transport protocol: how the host puts files on a device and runs the agent there."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AgentRun:
    """Raw result of one agent invocation: its exit code and both streams."""

    returncode: int
    stdout: str
    stderr: str


class Transport(abc.ABC):
    """A device the agent can run on. Implementations: local (this machine); ssh and adb follow."""

    url: str

    @abc.abstractmethod
    def put(self, path: Path) -> str:
        """Make ``path`` available on the device; return the path the agent should use there."""

    @abc.abstractmethod
    def run_agent(self, args: list[str], timeout: float) -> AgentRun:
        """Run ``python3 -m device_agent ARGS`` on the device, within ``timeout`` seconds."""

    def close(self) -> None:  # noqa: B027 - optional hook, most transports hold nothing
        """Release connections; the default has none."""
