"""ADB transport (adbutils, through the adb server): Android phones and boards over USB or TCP.

URL: ``adb://SERIAL[?python=PATH][&benchmark_model=HOST_PATH][&dir=DEVICE_DIR][&server=HOST:PORT]``.

- SERIAL is what ``adb devices`` lists (``R58M123ABC``, ``emulator-5554``, ``192.168.1.20:5555``). A
  ``host:port`` serial the server does not know yet is connected (``adb connect``) first.
- Files go to ``dir`` (default ``/data/local/tmp/edgesdk``, the directory adb may write and execute on
  any phone), named by content hash, so a model or the agent is pushed once.
- The agent runs with the device's ``python`` (e.g. Termux's, or one unpacked into /data/local/tmp).
  Where there is none, or it has no numpy or TFLite runtime, ``benchmark_model`` names a TFLite
  ``benchmark_model`` binary on this machine: it is pushed and run instead, and its log is read into the
  same schema (see :mod:`edgesdk.deploy.benchmark_model`).
- The adb server is ``server`` or $ANDROID_ADB_SERVER_HOST/$ANDROID_ADB_SERVER_PORT (default 127.0.0.1:5037).
- Exit codes come from the ``shell_v2`` protocol where the device has it (Android 7+), else from a marker
  the shell prints after the command.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import DeployError
from . import benchmark_model as bm
from .bundle import agent_zipapp
from .driver import AgentDriver, PythonAgent, parse_answer
from .transport import (
    LOCK,
    AgentRun,
    Cleaned,
    Transport,
    agent_command,
    checked_run,
    clean_command,
    content_name,
    parse_clean,
    record_command,
)

log = logging.getLogger(__name__)

DEVICE_DIR = "/data/local/tmp/edgesdk"
OPTIONS = ("python", "benchmark_model", "dir", "server")
_NO_AGENT_ERRORS = ("no_runtime", "missing_dependency")


def parse_url(url: str) -> dict[str, Any]:
    """Split an adb:// URL into serial and options.

    Raises:
        DeployError: not an adb:// URL, no serial, an unknown option or a bad server address.
    """
    parts = urlsplit(url)
    if parts.scheme != "adb" or not parts.netloc:
        raise DeployError(f"expected a device URL like adb://SERIAL (a serial from `adb devices`). Received: {url!r}")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - set(OPTIONS)
    if unknown:
        raise DeployError(f"{url}: unknown option(s) {', '.join(sorted(unknown))}; expected: {', '.join(OPTIONS)}")
    server_host = os.environ.get("ANDROID_ADB_SERVER_HOST", "127.0.0.1")
    server_port = os.environ.get("ANDROID_ADB_SERVER_PORT", "5037")
    if "server" in query:
        server_host, _, server_port = query["server"].rpartition(":")
        server_host = server_host or "127.0.0.1"
    if not server_port.isdigit():
        raise DeployError(f"{url}: the adb server address must be HOST:PORT. Received: {query.get('server')!r}")
    directory = query.get("dir", DEVICE_DIR).rstrip("/") or "/"
    if not directory.startswith("/"):
        raise DeployError(f"{url}: dir must be an absolute path on the device. Received: {directory!r}")
    return {"serial": parts.netloc, "python": query.get("python"), "benchmark_model": query.get("benchmark_model"),
            "dir": directory, "server": (server_host, int(server_port))}


class AdbTransport(Transport):
    """A device reached through the adb server."""

    def __init__(self, url: str, *, connect_timeout: float = 10.0) -> None:
        import adbutils

        self.url = url
        target = parse_url(url)
        self.serial: str = target["serial"]
        self.python: str = target["python"] or "python3"
        self.dir: str = target["dir"]
        self.benchmark_binary = Path(target["benchmark_model"]).expanduser() if target["benchmark_model"] else None
        if self.benchmark_binary is not None and not self.benchmark_binary.is_file():
            raise DeployError(f"{url}: benchmark_model binary {self.benchmark_binary} not found on this machine")
        self._binary_sha = content_name(self.benchmark_binary)[0] if self.benchmark_binary is not None else ""
        self.uploads = 0
        self.mode: str | None = None  # "python" or "benchmark_model", settled by the first info
        self._driver: AgentDriver | None = None
        self._agent: str | None = None
        self._binary: str | None = None
        self._dir_made = False
        self._recorded: set[str] = set()  # names this connection has written to the device's manifest
        self._sha: dict[str, tuple[str, int]] = {}  # device path -> (sha256, bytes) of what put() sent
        host, port = target["server"]
        server = f"the adb server at {host}:{port}"
        # Checked here because adbutils would otherwise start its own bundled adb (on the default port,
        # possibly a different version than the user's, which then fight over the devices).
        try:
            socket.create_connection((host, port), timeout=connect_timeout).close()
        except OSError as exc:
            raise DeployError(f"{url}: cannot reach {server} ({exc.strerror or exc}); start it with "
                              "`adb start-server`, or name it with ?server=HOST:PORT") from exc
        self.client = adbutils.AdbClient(host=host, port=port, socket_timeout=connect_timeout)
        try:
            listed = {d.serial: d.state for d in self.client.list()}
            if self.serial not in listed and re.fullmatch(r"[\w.\-]+:\d+", self.serial):
                self.client.connect(self.serial, timeout=connect_timeout)
                listed = {d.serial: d.state for d in self.client.list()}
        except (ConnectionError, OSError, adbutils.AdbError) as exc:
            raise DeployError(f"{url}: cannot reach {server} ({exc}); start it with `adb start-server` or name "
                              "it with ?server=HOST:PORT") from exc
        if self.serial not in listed:
            known = ", ".join(f"{s} ({st})" for s, st in listed.items()) or "none"
            raise DeployError(f"{url}: no device {self.serial!r} on {server}; devices: {known}")
        if listed[self.serial] != "device":
            hint = " (accept the debugging prompt on the phone)" if listed[self.serial] == "unauthorized" else ""
            raise DeployError(f"{url}: the device is {listed[self.serial]}{hint}, not ready")
        self.device = self.client.device(self.serial)
        try:
            self.v2 = "shell_v2" in self.device.get_features().split(",")
        except adbutils.AdbError as exc:
            raise DeployError(f"{url}: the device does not answer: {exc}") from exc

    # -- device helpers ----------------------------------------------------------------------------
    def _dropped(self, exc: Exception) -> DeployError:
        state = "device"
        for _ in range(10):  # the server takes a moment to notice a dead connection
            try:
                state = {d.serial: d.state for d in self.client.list()}.get(self.serial, "gone")
            except Exception:  # noqa: BLE001 - the server itself may be down now
                state = "unreachable"
            if state != "device":
                break
            time.sleep(0.2)
        if state != "device":
            return DeployError(f"{self.url}: the connection to the device dropped (it is now {state}); "
                               "nothing was stored")
        return DeployError(f"{self.url}: adb failed: {exc}")

    def _exec(self, command: str, timeout: float) -> AgentRun:
        import adbutils

        # `sh -c` keeps an `exit` in the command from skipping the v1 exit-status marker.
        wrapped = command if self.v2 else "sh -c " + shlex.quote(command)
        try:
            result = self.device.shell2(wrapped, timeout=timeout, encoding=None, v2=self.v2)
        except adbutils.AdbTimeout as exc:
            raise DeployError(f"{self.url}: no answer from the device within {timeout:g} s") from exc
        except (adbutils.AdbError, ConnectionError, OSError, EOFError) as exc:
            raise self._dropped(exc) from exc
        out = (result.stdout if self.v2 else result.output).decode(errors="replace")
        err = result.stderr.decode(errors="replace") if self.v2 else out  # v1 mixes both streams
        return AgentRun(result.returncode, out, err)

    def _make_dir(self) -> None:
        if not self._dir_made:
            run = self._exec(f"mkdir -p {shlex.quote(self.dir)}", 30)
            if run.returncode != 0:
                raise DeployError(f"{self.url}: cannot create {self.dir} on the device: {run.stderr.strip()}")
            self._dir_made = True

    def _push(self, path: Path, name: str) -> str:
        """Push ``path`` as ``name`` into the device directory unless a file of that name and size is there."""
        import adbutils

        self._make_dir()
        remote = f"{self.dir}/{name}"
        size = path.stat().st_size
        try:
            if self.device.sync.stat(remote).size == size:
                self._record(name)
                return remote
            partial = f"{remote}.part-{os.getpid()}-{time.monotonic_ns()}"
            self.device.sync.push(path, partial, mode=0o755, check=True)
        except adbutils.AdbError as exc:
            self._exec(f"rm -f {shlex.quote(remote)}.part-*", 30)
            if "FAIL" in str(exc) or "not complete" in str(exc):
                raise DeployError(f"{self.url}: the device refused {path.name} ({exc}); is its storage full? "
                                  f"(`adb -s {self.serial} shell df {self.dir}`)") from exc
            raise self._dropped(exc) from exc
        except (ConnectionError, OSError, EOFError) as exc:
            raise self._dropped(exc) from exc
        moved = self._exec(f"mv -f {shlex.quote(partial)} {shlex.quote(remote)}", 30)
        if moved.returncode != 0:
            raise DeployError(f"{self.url}: cannot move {name} into place: {moved.stderr.strip()}")
        self.uploads += 1
        self._record(name)
        return remote

    def _record(self, name: str, *more: str) -> None:
        """Name a file in the device's manifest (once per connection), so `devices clean` removes it."""
        names = [n for n in (name, *more) if n not in self._recorded]
        if names:
            self._make_dir()
            run = self._exec(record_command(self.dir, names), 30)
            if run.returncode != 0:
                raise DeployError(f"{self.url}: cannot write the upload manifest in {self.dir}: "
                                  f"{run.stderr.strip()[:300]}")
            self._recorded.update(names)

    # -- Transport ---------------------------------------------------------------------------------
    def put(self, path: Path) -> str:
        digest, name = content_name(path)
        remote = self._push(path, name)
        self._sha[remote] = (digest, path.stat().st_size)
        return remote

    def run_agent(self, args: list[str], timeout: float) -> AgentRun:
        return checked_run(self._run_python(args, timeout), self.url, self.python, timeout)

    def driver(self) -> AgentDriver:
        """The python agent, or (a device whose python cannot run it, and ?benchmark_model= given) the
        benchmark_model binary: settled by the first ``info``."""
        if self._driver is None:
            self._driver = AdbDriver(self)
        return self._driver

    def _run_python(self, args: list[str], timeout: float) -> AgentRun:
        if self._agent is None:
            bundle = agent_zipapp()
            self._agent = self._push(bundle, bundle.name)
            self._record(LOCK)
        return self._exec(agent_command(self.python, self._agent, args, timeout, self.dir), timeout + 15)

    @staticmethod
    def _lacks_agent(run: AgentRun) -> bool:
        """True when the device's python is missing, or has no numpy / TFLite runtime."""
        if run.returncode == 127 and not run.stdout.lstrip().startswith("{"):
            return True
        for line in run.stdout.splitlines():
            if line.startswith("{"):
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if doc.get("error") in _NO_AGENT_ERRORS or ("runtime" in doc and doc["runtime"] is None):
                    return True
        return False

    def shell(self, command: str, timeout: float) -> AgentRun:
        return self._exec(command, timeout)

    def put_as(self, path: Path, name: str) -> str:
        return self._push(path, name)

    def cache_dir(self) -> str:
        self._make_dir()
        return self.dir

    def clean(self) -> Cleaned:
        run = self._exec(clean_command(self.dir), 120)
        self._dir_made, self._agent, self._binary, self._recorded = False, None, None, set()
        return parse_clean(run.stdout, self.dir)


class AdbDriver(AgentDriver):
    """Speaks for a device over adb: the python agent where it runs, else the benchmark_model binary."""

    def __init__(self, transport: AdbTransport) -> None:
        self.transport = transport
        self.python = PythonAgent(transport)
        self.binary = bm.BenchmarkModel(transport) if transport.benchmark_binary is not None else None

    def info(self, check: str | None, timeout: float) -> dict[str, Any]:
        t = self.transport
        if t.mode == "benchmark_model" and self.binary is not None:
            return self.binary.info(check, timeout)
        args = ["info", *(["--check", check] if check else [])]
        run = t._run_python(args, timeout)
        if t.mode is None:
            if self.binary is not None and t._lacks_agent(run):
                log.warning("%s: %s cannot run the agent; measuring with benchmark_model", t.url, t.python)
                t.mode = "benchmark_model"
                return self.binary.info(check, timeout)
            t.mode = "python"
        run = checked_run(run, t.url, t.python, timeout)
        return parse_answer(run.stdout, run.stderr, run.returncode)

    def bench(self, model: str, settings: Any, timeout: float) -> dict[str, Any]:
        if self.transport.mode is None:
            self.info(None, timeout)
        if self.transport.mode == "benchmark_model" and self.binary is not None:
            return self.binary.bench(model, settings, timeout)
        return self.python.bench(model, settings, timeout)
