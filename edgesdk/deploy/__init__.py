"""Transports that put the agent and models on a device: ``local`` now; ssh, adb and serial follow."""

from __future__ import annotations

from ..errors import DeployError
from .local import LocalTransport
from .transport import AgentRun, Transport

SCHEMES = ("local",)


def open_transport(url: str) -> Transport:
    """A transport for a device URL (``local``).

    Raises:
        DeployError: an unknown or not yet supported scheme.
    """
    if url in ("local", "local://"):
        return LocalTransport()
    scheme = url.split("://", 1)[0] if "://" in url else url
    raise DeployError(f"unsupported device {url!r} (scheme {scheme!r}); expected one of: "
                      f"{', '.join(SCHEMES)}")


__all__ = ["AgentRun", "LocalTransport", "Transport", "open_transport"]
