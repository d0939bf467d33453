"""Run the device agent on this machine, in a separate process: the same path remote devices use."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import device_agent

from ..errors import DeployError
from .transport import AgentRun, Transport


class LocalTransport(Transport):
    """This machine as a device. ``python`` is the interpreter that runs the agent."""

    def __init__(self, python: str | None = None) -> None:
        self.url = "local"
        self.python = python or sys.executable

    def put(self, path: Path) -> str:
        if not path.is_file():
            raise DeployError(f"{path}: no such file to deploy")
        return str(path.resolve())

    def run_agent(self, args: list[str], timeout: float) -> AgentRun:
        env = dict(os.environ)
        # The agent package travels on its own; make it importable without installing edgesdk.
        agent_root = str(Path(device_agent.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (agent_root, env.get("PYTHONPATH")) if p)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            proc = subprocess.run([self.python, "-m", "device_agent", *args], capture_output=True, text=True,
                                  timeout=timeout, env=env, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DeployError(f"the device agent ran over the {timeout:g} s timeout and was stopped") from exc
        except OSError as exc:
            raise DeployError(f"cannot start the device agent with {self.python}: {exc.strerror}") from exc
        return AgentRun(proc.returncode, proc.stdout, proc.stderr)
