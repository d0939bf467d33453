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


def _samples(model: Path, data: str | os.PathLike[str]) -> tuple[Path, str]:
    """(an .npz the agent reads with --inputs, its sha256) from the user's data for ``model``'s inputs:
    in the inputs' shapes and types (quantized through an integer input's scale), at most 16 samples.

    Raises:
        DataError: unreadable data, or no array for one of the model's inputs (named).
    """
    import hashlib
    import io

    import numpy as np

    from . import data as datamod
    from . import evaluate
    from .tflite.facts import analyze

    report = analyze(model)
    x = datamod.inputs_for(datamod.load_npz(data), [(t.name, t.shape) for t in report.inputs])
    buffer = io.BytesIO()
    np.savez(buffer, **evaluate.device_inputs(model.read_bytes(), x, 16))  # type: ignore[arg-type]
    content = buffer.getvalue()
    digest = hashlib.sha256(content).hexdigest()
    path = Path(tempfile.gettempdir()) / f"edgesdk-inputs-{digest[:16]}.npz"
    if not path.is_file():
        from .fileio import write_atomic

        write_atomic(path, content)
    return path, digest


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
          trust_new_host: bool = False, data: str | os.PathLike[str] | None = None) -> Measurement:
    """Measure a .tflite model on a device through the agent, or answer from the store.

    A stored measurement with the same model sha256, device fingerprint, runtime version and
    settings answers the call unless ``fresh``. ``device`` is ``local``, ``ssh://user@host[:port]``,
    a device name recorded in ``store``, or a :class:`Transport`; ``trust_new_host`` records an
    unknown SSH host key instead of refusing. ``data`` (an .npz: ``x``, or arrays named after the
    inputs) gives the samples to run instead of generated ones: the first is timed, and up to 16 are
    compared between an accelerator and the CPU (the samples' sha256 joins the store's key).

    Raises:
        DataError: ``data`` is unreadable or lacks an input.
        ModelError: the file is not a .tflite model.
        DeployError, MeasurementError: the device or the agent failed (one-line reason).
    """
    settings = settings or BenchSettings()
    source = intake.identify(model)
    if source.format != "tflite":
        raise ModelError(f"{source.path}: bench measures .tflite models; compress this {source.format} "
                         "model first (`edgesdk compress`)")
    from .tflite.facts import analyze

    analyze(source.path)   # its structure checked before any runtime sees it (a mutated file can crash one)
    samples = _samples(Path(source.path), data) if data is not None else None  # bad data: before connecting
    if isinstance(device, str):
        from .devices import resolve

        transport = open_transport(resolve(device, store), trust_new_host=trust_new_host)
    else:
        transport = device
    try:
        driver = transport.driver()
        info = _checked_info(transport, driver, Path(source.path), timeout_s)
        keyed = settings.to_dict() | ({"inputs_sha256": samples[1]} if samples else {})
        key = measurement_key(source.sha256, info["device"]["fingerprint"], info["runtime"], keyed)
        if store is not None and not fresh:
            hit = store.find_measurement(key)
            if hit is not None:
                log.info("answered from the store (key %s)", key[:12])
                return Measurement(hit, True, key, transport.url)
        remote = transport.put(Path(source.path))
        if samples is not None:
            settings = replace(settings, inputs=transport.put(samples[0]))
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
