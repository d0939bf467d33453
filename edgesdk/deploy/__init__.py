"""Transports that put the agent and models on a device: ``local``, ``ssh://`` and ``adb://``; and
``serial://``, a microcontroller running the edgesdk firmware harness."""

from __future__ import annotations

from ..errors import DeployError
from .local import LocalTransport
from .transport import AgentRun, Transport

SCHEMES = ("local", "ssh://user@host[:port]", "adb://SERIAL", "serial:///dev/ttyACM0[?baud=115200]")


def open_transport(url: str, *, trust_new_host: bool = False) -> Transport:
    """A transport for a device URL: ``local``, ``ssh://user@host[:port][?python=PATH]`` or ``adb://SERIAL[?...]``.

    Raises:
        DeployError: an unknown scheme, or the device cannot be reached.
    """
    if url in ("local", "local://"):
        return LocalTransport()
    if url.startswith("ssh://"):
        from .ssh import SshTransport

        return SshTransport(url, trust_new_host=trust_new_host)
    if url.startswith("adb://"):
        from .adb import AdbTransport

        return AdbTransport(url)
    if url.startswith("serial://"):
        from .serial import SerialTransport

        return SerialTransport(url)
    scheme = url.split("://", 1)[0] if "://" in url else url
    raise DeployError(f"unsupported device {url!r} (scheme {scheme!r}); expected one of: "
                      f"{', '.join(SCHEMES)}")


__all__ = ["AgentRun", "LocalTransport", "Transport", "open_transport"]
