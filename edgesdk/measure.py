"""Drive the device agent over a transport and turn its answer into a validated Measurement."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device_agent.protocol import ERROR_SCHEMA, INFO_SCHEMA, BenchSettings, ProtocolError, validate

from . import models
from .deploy import Transport, open_transport
from .errors import MeasurementError, ModelError
from .store import Store, measurement_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Measurement:
    """A validated agent document, and whether it came from the store rather than the device."""

    document: dict[str, Any]
    cached: bool
    key: str
    device: str

    @property
    def latency(self) -> dict[str, Any]:
        return self.document["latency"]

    def to_dict(self) -> dict[str, Any]:
        return {**self.document, "cached": self.cached, "key": self.key, "transport": self.device}


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


def device_info(transport: Transport, timeout: float = 120.0, check: str | None = None) -> dict[str, Any]:
    """The agent's description of the device and its runtime (schema ``edgesdk.deviceinfo/1``).

    ``check`` is the device path of an operator probe (:func:`edgesdk.inspect.operator_probe`): the
    answer then carries ``model_check`` (``ok`` and ``message``).
    """
    run = transport.run_agent(["info", *(["--check", check] if check else [])], timeout)
    doc = parse_answer(run.stdout, run.stderr, run.returncode)
    if doc.get("schema") != INFO_SCHEMA:
        raise MeasurementError(f"unexpected answer to 'info': schema {doc.get('schema')!r}")
    if not doc.get("runtime"):
        raise MeasurementError(doc.get("runtime_error", "no TFLite runtime on the device"))
    return doc


def _checked_info(transport: Transport, model: Path, timeout_s: float) -> dict[str, Any]:
    """Device info, with the model's operator table checked against the device runtime before the
    model itself is uploaded: a runtime too old for an operator version is refused here, not after
    the upload and a failed load."""
    from .inspect import operator_probe

    with tempfile.TemporaryDirectory(prefix="edgesdk-probe-") as tmp:
        probe = Path(tmp) / "ops.tflite"
        probe.write_bytes(operator_probe(model))
        info = device_info(transport, timeout=timeout_s, check=transport.put(probe))
    check = info.get("model_check")
    if check is not None and not check.get("ok"):
        raise MeasurementError(f"{check.get('message')}; checked on the device before uploading {model.name}")
    if check is None:
        log.warning("the device agent did not check the model's operators (an older agent?)")
    return info


def bench(model: str | os.PathLike[str], device: str | Transport = "local", settings: BenchSettings | None = None,
          *, store: Store | None = None, fresh: bool = False, timeout_s: float = 600.0,
          trust_new_host: bool = False) -> Measurement:
    """Measure a .tflite model on a device through the agent, or answer from the store.

    A stored measurement with the same model sha256, device fingerprint, runtime version and
    settings answers the call unless ``fresh``. ``device`` is ``local``, ``ssh://user@host[:port]``,
    a device name recorded in ``store``, or a :class:`Transport`; ``trust_new_host`` records an
    unknown SSH host key instead of refusing.

    Raises:
        ModelError: the file is not a .tflite model.
        DeployError, MeasurementError: the device or the agent failed (one-line reason).
    """
    settings = settings or BenchSettings()
    source = models.identify(model)
    if source.format != "tflite":
        raise ModelError(f"{source.path}: bench measures .tflite models; compress this {source.format} "
                         "model first (`edgesdk compress`)")
    if isinstance(device, str):
        from .devices import resolve

        transport = open_transport(resolve(device, store), trust_new_host=trust_new_host)
    else:
        transport = device
    try:
        info = _checked_info(transport, Path(source.path), timeout_s)
        key = measurement_key(source.sha256, info["device"]["fingerprint"], info["runtime"], settings.to_dict())
        if store is not None and not fresh:
            hit = store.find_measurement(key)
            if hit is not None:
                log.info("answered from the store (key %s)", key[:12])
                return Measurement(hit, True, key, transport.url)
        remote = transport.put(Path(source.path))
        run = transport.run_agent(["bench", remote, *settings.to_args()], timeout_s)
        doc = parse_answer(run.stdout, run.stderr, run.returncode)
        try:
            validate(doc)
        except ProtocolError as exc:
            raise MeasurementError(f"the device agent's answer does not follow the protocol: {exc}") from exc
        if doc["model_sha256"] != source.sha256:
            raise MeasurementError("the device measured a different file than the one sent "
                                   f"(sha256 {doc['model_sha256'][:12]} != {source.sha256[:12]})")
        if store is not None:
            store.add_measurement(key, doc, transport.url)
        return Measurement(doc, False, key, transport.url)
    finally:
        transport.close()
