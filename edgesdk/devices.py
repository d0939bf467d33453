"""Named devices: a name for a device URL, kept in the results store, usable wherever a URL is."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import deploy
from .deploy import Transport, open_transport
from .deploy.transport import Cleaned
from .errors import DeployError, EdgeSdkError
from .store import Store

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def is_url(text: str) -> bool:
    return text in deploy.LOCAL or "://" in text


def validate_url(url: str) -> str:
    """Check a device URL's syntax without connecting (:func:`edgesdk.deploy.validate_url`).

    Raises:
        DeployError: unknown scheme or malformed URL.
    """
    return deploy.validate_url(url)


def add(store: Store, name: str, url: str, *, replace: bool = False) -> None:
    """Name a device URL.

    Raises:
        DeployError: a bad name or URL. StoreError: the name is taken (unless ``replace``).
    """
    if not _NAME.match(name) or is_url(name):
        raise DeployError(f"a device name is letters, digits, '.', '_' and '-' (up to 100). Received: {name!r}")
    store.add_device(name, validate_url(url), replace=replace)


def resolve(device: str, store: Store | None) -> str:
    """The URL for a device URL or name.

    Raises:
        DeployError: an unknown name (listing the known ones).
    """
    if is_url(device):
        return device
    known = store.devices() if store is not None else {}
    if device not in known:
        names = ", ".join(known) or "none yet; add one with `edgesdk devices add NAME URL`"
        raise DeployError(f"unknown device {device!r}; expected a URL ({deploy.examples()}) or a named device: "
                          f"{names}")
    return known[device]


def clean(device: str, store: Store | None = None) -> Cleaned:
    """Remove what edgesdk uploaded to a device (what its manifest there names; other files stay).

    Raises:
        DeployError: the device cannot be reached, or its transport uploads nothing.
    """
    transport = open_transport(resolve(device, store))
    try:
        return transport.clean()
    finally:
        transport.close()


@dataclass(frozen=True)
class DeviceCheck:
    """What `edgesdk devices check` found."""

    device: str
    url: str
    reachable: bool
    error: str | None = None
    python: str | None = None
    runtime: dict[str, str] | None = None
    runtime_error: str | None = None
    power: str | None = None
    fingerprint: str | None = None
    description: dict[str, Any] | None = None
    # gpu / npu -> what runs a tiny convolution there ("llvmpipe … (software)") or why nothing does
    accelerators: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.reachable and self.runtime is not None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


# A 1 KB float model (one 3x3 convolution and a ReLU) that any GPU or NPU accelerator takes.
PROBE_MODEL = Path(__file__).resolve().parent / "deploy" / "accelerator_probe.tflite"


def _accelerators(transport: Transport, driver: Any, timeout_s: float) -> dict[str, str]:
    """What each accelerator of the device is, found by running the probe model on it once."""
    from device_agent.protocol import OFFLOADED, BenchSettings

    from .deploy.driver import PythonAgent
    from .errors import MeasurementError

    if not isinstance(driver, PythonAgent):
        return {}  # benchmark_model and firmware have no accelerator probe of their own
    remote = transport.put(PROBE_MODEL)
    found: dict[str, str] = {}
    for accelerator in OFFLOADED:
        settings = BenchSettings(runs=1, warmup=0, min_time_s=0, retries=0, windows=1, power=False,
                                 accelerator=accelerator)
        try:
            doc = driver.bench(remote, settings, timeout_s)
        except MeasurementError as exc:
            found[accelerator] = "none: " + str(exc).split("): ", 1)[-1]
            continue
        found[accelerator] = doc["device"].get("gpu") or "yes"  # the agent names the GPU that ran it
    return found


def check(device: str, store: Store | None = None, *, trust_new_host: bool = False,
          timeout_s: float = 60.0, accelerators: bool = True) -> DeviceCheck:
    """Reach the device, run the agent's ``info`` and report python, runtime and power source; with
    ``accelerators``, also run a tiny model on its GPU and NPU to say which it has."""
    url = resolve(device, store)
    transport: Transport | None = None
    try:
        try:
            transport = open_transport(url, trust_new_host=trust_new_host)
            driver = transport.driver()
        except EdgeSdkError as exc:
            return DeviceCheck(device, url, reachable=False, error=str(exc))
        try:
            doc = driver.info(None, timeout_s)
            found = _accelerators(transport, driver, timeout_s) if accelerators and doc.get("runtime") else None
        except DeployError as exc:  # the transport failed: the device is not there
            return DeviceCheck(device, url, reachable=False, error=str(exc))
        except EdgeSdkError as exc:  # the device answered, but not with a description
            return DeviceCheck(device, url, reachable=True, error=str(exc))
    finally:
        if transport is not None:
            transport.close()
    info = doc.get("device", {})
    return DeviceCheck(device, url, reachable=True, python=info.get("python"), runtime=doc.get("runtime"),
                       runtime_error=doc.get("runtime_error"),
                       power=(doc.get("power") or {}).get("source") or
                       f"none: {(doc.get('power') or {}).get('reason')}",
                       fingerprint=info.get("fingerprint"), description=info, accelerators=found)
