"""A microcontroller on a serial line, running the edgesdk firmware harness (firmware_examples/).

URL: ``serial:///dev/ttyACM0[?baud=115200][&timeout=60][&retries=2]`` (``serial://COM3`` on Windows).

Nothing is uploaded: the board runs the model it was flashed with (``edgesdk export c``). The host
sends one command per line, ``info`` or ``bench RUNS WARMUP``; the board answers each with one JSON
line in the device agent's schemas, and may print anything else around it (boot banners, logs),
which is skipped. A line that starts like JSON but does not parse (a garbled byte, a reset halfway)
makes the host ask again, up to ``retries`` times; a board that stays silent past ``timeout`` seconds
is an error that says so. The board reports the sha256 of its model, so measuring a different file
than the one flashed is refused.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from device_agent.protocol import ERROR_SCHEMA, INFO_SCHEMA, SCHEMA, BenchSettings

from ..errors import DeployError
from ..fileio import sha256_file
from .driver import AgentDriver, parse_answer
from .transport import AgentRun, Transport

log = logging.getLogger(__name__)
_OPTIONS = {"baud": int, "timeout": float, "retries": int}


def parse_url(url: str) -> dict[str, Any]:
    """Port and options of a serial:// URL.

    Raises:
        DeployError: not a serial:// URL, no port, or a bad option.
    """
    if not url.startswith("serial://"):
        raise DeployError(f"expected a device URL like serial:///dev/ttyACM0?baud=115200. Received: {url!r}")
    parts = urlsplit(url)
    port = parts.netloc + parts.path
    if not port:
        raise DeployError(f"{url}: no serial port; expected serial:///dev/ttyACM0 or serial://COM3")
    options: dict[str, Any] = {"port": port, "baud": 115200, "timeout": 60.0, "retries": 2}
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        if key not in _OPTIONS:
            raise DeployError(f"{url}: unknown option {key!r}; expected {', '.join(_OPTIONS)}")
        try:
            options[key] = _OPTIONS[key](values[-1])
        except ValueError:
            raise DeployError(f"{url}: option {key} must be a number. Received: {values[-1]!r}") from None
        if options[key] < 0 or (key in ("baud", "timeout") and options[key] == 0):
            raise DeployError(f"{url}: option {key} must be positive. Received: {values[-1]!r}")
    return options


class SerialTransport(Transport):
    """A board running the edgesdk harness, spoken to line by line over a serial port."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.options = parse_url(url)
        try:
            import serial
        except ImportError as exc:
            raise DeployError("serial devices need pyserial: pip install pyserial") from exc
        try:
            self.port = serial.serial_for_url(self.options["port"], baudrate=self.options["baud"], timeout=0.2)
        except (serial.SerialException, OSError) as exc:
            raise DeployError(f"{url}: cannot open {self.options['port']}: {exc}") from exc
        self.buffer = b""

    def put(self, path: Path) -> str:
        if not path.is_file():
            raise DeployError(f"{path}: no such file")
        return str(path)  # nothing travels: the board runs what it was flashed with

    def run_agent(self, args: list[str], timeout: float) -> AgentRun:
        raise DeployError(f"{self.url}: a board on a serial line runs no agent; it answers `info` and `bench` "
                          "through its firmware (see driver())")

    def driver(self) -> AgentDriver:
        return Firmware(self)

    def _ask(self, command: str, schema: str, timeout: float) -> tuple[dict[str, Any], list[str]]:
        """Send ``command`` and return the board's JSON answer, asking again after a garbled line."""
        notes: list[str] = []
        for _ in range(self.options["retries"] + 1):
            self.port.reset_input_buffer()
            self.buffer = b""
            self.port.write(command.encode() + b"\n")
            self.port.flush()
            deadline = time.monotonic() + timeout
            while True:
                line = self._line(deadline)
                if line is None:
                    raise DeployError(f"{self.url}: no answer to {command.split()[0]!r} within {timeout:g} s; is "
                                      f"the board flashed with the edgesdk harness and talking at "
                                      f"{self.options['baud']} baud?")
                if not line.startswith("{"):
                    log.debug("%s: %s", self.url, line)  # banners and logs
                    continue
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError:
                    doc = None
                if isinstance(doc, dict) and doc.get("schema") in (schema, ERROR_SCHEMA):
                    return doc, notes
                notes.append(f"the board's answer to {command.split()[0]!r} arrived garbled "
                             f"({line[:40]!r}...) and was asked again")
                log.warning("%s", notes[-1])
                break
        raise DeployError(f"{self.url}: {self.options['retries'] + 1} answers to {command.split()[0]!r} arrived "
                          "garbled; check the baud rate and the cable")

    def _line(self, deadline: float) -> str | None:
        """The next line from the board, or None at the deadline."""
        while b"\n" not in self.buffer:
            if time.monotonic() > deadline:
                return None
            chunk = self.port.read(self.port.in_waiting or 1)
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\n")
        return raw.decode("utf-8", errors="replace").strip()

    def close(self) -> None:
        self.port.close()


class Firmware(AgentDriver):
    """The edgesdk firmware harness on a board: ``info`` and ``bench RUNS WARMUP``, one JSON line each."""

    def __init__(self, transport: SerialTransport) -> None:
        self.transport = transport

    def info(self, check: str | None, timeout: float) -> dict[str, Any]:
        t = self.transport
        doc, _ = t._ask("info", INFO_SCHEMA, min(timeout, t.options["timeout"]))
        doc = _answered(doc)
        doc.setdefault("model_check", {"ok": True, "message": "the board runs the model it was flashed with"})
        return doc

    def bench(self, model: str, settings: BenchSettings, timeout: float) -> dict[str, Any]:
        t = self.transport
        sha = sha256_file(model)
        doc, notes = t._ask(f"bench {settings.runs} {settings.warmup}", SCHEMA, min(timeout, t.options["timeout"]))
        doc = _answered(doc)
        if doc.get("model_sha256") != sha:
            raise DeployError(f"{t.url}: the board runs model {str(doc.get('model_sha256'))[:12]}, not "
                              f"{Path(model).name} ({sha[:12]}); flash firmware built from "
                              f"`edgesdk export c {Path(model).name}`")
        doc["warnings"] = list(doc.get("warnings") or []) + notes
        doc.setdefault("settings", {"runs": settings.runs, "warmup": settings.warmup})
        return doc


def _answered(doc: dict[str, Any]) -> dict[str, Any]:
    """The board's document, or its error document as the agent's errors are reported."""
    return parse_answer(json.dumps(doc), "", 0)
