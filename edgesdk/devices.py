"""Named devices: a name for a device URL, kept in the results store, usable wherever a URL is."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from .deploy import SCHEMES, Transport, open_transport
from .deploy.ssh import parse_url
from .errors import DeployError, EdgeSdkError
from .store import Store

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def is_url(text: str) -> bool:
    return text == "local" or "://" in text


def validate_url(url: str) -> str:
    """Check a device URL's syntax without connecting.

    Raises:
        DeployError: unknown scheme or malformed URL.
    """
    if url in ("local", "local://"):
        return "local"
    if url.startswith("ssh://"):
        parse_url(url)
        return url
    if url.startswith("adb://"):
        from .deploy.adb import parse_url as parse_adb

        parse_adb(url)
        return url
    if url.startswith("serial://"):
        from .deploy.serial import parse_url as parse_serial

        parse_serial(url)
        return url
    raise DeployError(f"unsupported device {url!r}; expected one of: {', '.join(SCHEMES)}")


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
        raise DeployError(f"unknown device {device!r}; expected a URL (local, ssh://user@host, adb://SERIAL, "
                          f"serial:///dev/ttyACM0) or a named device: {names}")
    return known[device]


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

    @property
    def ok(self) -> bool:
        return self.reachable and self.runtime is not None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check(device: str, store: Store | None = None, *, trust_new_host: bool = False,
          timeout_s: float = 60.0) -> DeviceCheck:
    """Reach the device, run the agent's ``info`` and report python, runtime and power source."""
    url = resolve(device, store)
    transport: Transport | None = None
    try:
        transport = open_transport(url, trust_new_host=trust_new_host)
        run = transport.run_agent(["info"], timeout_s)
    except EdgeSdkError as exc:
        return DeviceCheck(device, url, reachable=False, error=str(exc))
    finally:
        if transport is not None:
            transport.close()
    from .measure import parse_answer

    try:
        doc = parse_answer(run.stdout, run.stderr, run.returncode)
    except EdgeSdkError as exc:
        return DeviceCheck(device, url, reachable=True, error=str(exc))
    info = doc.get("device", {})
    return DeviceCheck(device, url, reachable=True, python=info.get("python"), runtime=doc.get("runtime"),
                       runtime_error=doc.get("runtime_error"),
                       power=(doc.get("power") or {}).get("source") or
                       f"none: {(doc.get('power') or {}).get('reason')}",
                       fingerprint=info.get("fingerprint"), description=info)
