"""Measure a .tflite on a device: its agent driver answers, the answer is validated, the store keeps it."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from device_agent.protocol import BenchSettings, ProtocolError, validate

from . import intake
from .deploy import Transport, open_transport
from .deploy.driver import AgentDriver, device_info
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


def with_accelerator(settings: BenchSettings | None, profile: Any) -> BenchSettings:
    """``settings`` (or the defaults) with ``profile``'s accelerator (mobile-gpu: gpu) where none was asked for."""
    settings = settings or BenchSettings()
    if settings.accelerator is None and profile is not None and getattr(profile, "accelerator", None):
        return replace(settings, accelerator=profile.accelerator)
    return settings


def _checked_info(transport: Transport, driver: AgentDriver, model: Path, timeout_s: float) -> dict[str, Any]:
    """Device info, with the model's operator table checked against the device runtime before the
    model itself is uploaded: a runtime too old for an operator version is refused here, not after
    the upload and a failed load."""
    from .tflite.facts import operator_probe

    with tempfile.TemporaryDirectory(prefix="edgesdk-probe-") as tmp:
        probe = Path(tmp) / "ops.tflite"
        probe.write_bytes(operator_probe(model))
        info = device_info(transport, timeout=timeout_s, check=transport.put(probe), driver=driver)
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
    source = intake.identify(model)
    if source.format != "tflite":
        raise ModelError(f"{source.path}: bench measures .tflite models; compress this {source.format} "
                         "model first (`edgesdk compress`)")
    if isinstance(device, str):
        from .devices import resolve

        transport = open_transport(resolve(device, store), trust_new_host=trust_new_host)
    else:
        transport = device
    try:
        driver = transport.driver()
        info = _checked_info(transport, driver, Path(source.path), timeout_s)
        key = measurement_key(source.sha256, info["device"]["fingerprint"], info["runtime"], settings.to_dict())
        if store is not None and not fresh:
            hit = store.find_measurement(key)
            if hit is not None:
                log.info("answered from the store (key %s)", key[:12])
                return Measurement(hit, True, key, transport.url)
        remote = transport.put(Path(source.path))
        doc = driver.bench(remote, settings, timeout_s)
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
