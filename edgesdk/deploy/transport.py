"""The Transport protocol: how the host puts files on a device and runs the agent there."""

from __future__ import annotations

import abc
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DeployError
from ..fileio import sha256_file


@dataclass(frozen=True)
class AgentRun:
    """Raw result of one agent invocation: its exit code and both streams."""

    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Cleaned:
    """What `devices clean` did: files removed, and files it found beside them and left alone."""

    removed: int
    kept: int
    directory: str


# Every file edgesdk puts in a device directory is named here, one line each, so that `devices clean`
# deletes those and nothing else: ?cache= (ssh) and ?dir= (adb) may name a folder the user also keeps
# files in. The agent's lock file is recorded with the agent.
MANIFEST = ".edgesdk-uploads"
LOCK = ".edgesdk-bench.lock"  # a name no user file has


def record_command(directory: str, names: list[str]) -> str:
    """The shell command that adds ``names`` (relative to ``directory``) to its manifest."""
    lines = " ".join(shlex.quote(n) for n in names)
    return f"printf '%s\\n' {lines} >> {shlex.quote(f'{directory}/{MANIFEST}')}"


# POSIX sh (dash, busybox, toybox): remove what the manifest names (never a path that leaves the directory,
# never a folder), then the manifest, then the folders edgesdk made if they are empty; print "removed kept".
_CLEAN = """cd {dir} 2>/dev/null || {{ echo 0 0; exit 0; }}
n=0
if [ -f {manifest} ]; then
  while IFS= read -r f; do
    case "$f" in ''|/*|..|../*|*/..|*/../*) continue ;; esac
    if [ -f "$f" ] || [ -L "$f" ]; then rm -f -- "$f" && n=$((n+1)); fi
    rm -f -- "$f".part-* 2>/dev/null
  done < {manifest}
  rm -f -- {manifest}
fi
rmdir wheels 2>/dev/null
k=$(ls -1A | grep -v '^venv-' | wc -l)
cd / && rmdir {dir} 2>/dev/null
echo $n $k
"""


def clean_command(directory: str) -> str:
    """The shell command that removes what edgesdk recorded in ``directory``; see :func:`parse_clean`."""
    return _CLEAN.format(dir=shlex.quote(directory), manifest=shlex.quote(MANIFEST))


def parse_clean(stdout: str, directory: str) -> Cleaned:
    words = stdout.split()
    numbers = [int(w) for w in words[-2:] if w.isdigit()]
    removed, kept = (numbers + [0, 0])[:2] if len(numbers) == 2 else (0, 0)
    return Cleaned(removed, kept, directory)


class Transport(abc.ABC):
    """How files reach a device and commands run there: local (this machine), ssh://, adb://, serial://.
    What answers ``info`` and ``bench`` on it is its :meth:`driver`."""

    url: str

    @abc.abstractmethod
    def put(self, path: Path) -> str:
        """Make ``path`` available on the device; return the path the agent should use there."""

    @abc.abstractmethod
    def run_agent(self, args: list[str], timeout: float) -> AgentRun:
        """Run ``python3 -m device_agent ARGS`` on the device, within ``timeout`` seconds."""

    def driver(self) -> Any:
        """The agent driver that speaks for this device (:mod:`edgesdk.deploy.driver`): the python agent
        unless the transport knows better."""
        from .driver import PythonAgent

        return PythonAgent(self)

    def clean(self) -> Cleaned:
        """Remove what edgesdk uploaded to the device (the files its manifest names, nothing else).

        Raises:
            DeployError: this transport uploads nothing.
        """
        raise DeployError(f"{self.url}: nothing to clean; edgesdk uploads nothing to this device")

    # -- what `devices setup` needs: a shell, named uploads and the device's cache directory --------------
    def shell(self, command: str, timeout: float) -> AgentRun:
        """Run a shell command on the device.

        Raises:
            DeployError: this transport runs no shell commands (or the connection failed).
        """
        raise DeployError(f"{self.url}: this kind of device runs no shell commands")

    def put_as(self, path: Path, name: str) -> str:
        """Upload ``path`` into the device's cache as ``name`` (kept as it is: pip reads wheel file names)."""
        raise DeployError(f"{self.url}: this kind of device takes no uploads")

    def cache_dir(self) -> str:
        """The directory on the device that edgesdk uploads into."""
        raise DeployError(f"{self.url}: this kind of device has no cache directory")

    def close(self) -> None:  # noqa: B027 - optional hook, most transports hold nothing
        """Release connections; the default has none."""


def content_name(path: Path) -> tuple[str, str]:
    """``(sha256, name)`` for a file a transport caches on a device: the name is the first 16 hex digits
    of its hash and its own name, so a changed file gets a new name and an unchanged one travels once.

    Raises:
        DeployError: no such file.
    """
    if not path.is_file():
        raise DeployError(f"{path}: no such file to deploy")
    sha = sha256_file(path)
    return sha, f"{sha[:16]}-{path.name}"


def agent_command(python: str, agent: str, args: list[str], timeout: float, cache: str) -> str:
    """The shell command that runs the agent on a POSIX device (ssh, adb) within ``timeout``.

    coreutils/toybox/busybox `timeout` stops the agent on the device too, not just our wait for it;
    `sh -c '...; exit $?'` turns death by a signal into an exit status (128 + N) the transport carries.
    Measurements take the device's lock file in ``cache``, so two hosts never measure at once.
    """
    extra = ["--lock", f"{cache}/{LOCK}"] if args and args[0] == "bench" else []
    inner = " ".join(shlex.quote(a) for a in ["timeout", f"{max(1, int(timeout))}", python, agent, *args, *extra])
    return "sh -c " + shlex.quote(inner + "; exit $?")


def checked_run(run: AgentRun, url: str, python: str, timeout: float) -> AgentRun:
    """Turn the shell's own exit codes (124 timeout, 127 no interpreter) into clear errors.

    Raises:
        DeployError: the agent ran over ``timeout``, or ``python`` does not exist on the device.
    """
    if run.returncode == 124:
        raise DeployError(f"{url}: the device agent ran over the {timeout:g} s timeout and was stopped")
    if run.returncode == 127 and not run.stdout.lstrip().startswith("{"):
        raise DeployError(f"{url}: {python!r} not found on the device; install python3 or name the "
                          "interpreter with ?python=/path/to/python in the device URL")
    return run
