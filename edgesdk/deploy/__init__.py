"""Transports that put the agent and models on a device: ``local`` and ``ssh://``; adb and serial follow."""

from __future__ import annotations

from ..errors import DeployError
from .local import LocalTransport
from .transport import AgentRun, Transport

SCHEMES = ("local", "ssh://user@host[:port]")


def open_transport(url: str, *, trust_new_host: bool = False) -> Transport:
    """A transport for a device URL (``local`` or ``ssh://user@host[:port][?python=PATH]``).

    Raises:
        DeployError: an unknown scheme, or the device cannot be reached.
    """
    if url in ("local", "local://"):
        return LocalTransport()
    if url.startswith("ssh://"):
        from .ssh import SshTransport

        return SshTransport(url, trust_new_host=trust_new_host)
    scheme = url.split("://", 1)[0] if "://" in url else url
    raise DeployError(f"unsupported device {url!r} (scheme {scheme!r}); expected one of: "
                      f"{', '.join(SCHEMES)}")


__all__ = ["AgentRun", "LocalTransport", "Transport", "open_transport"]
