"""Where models are measured: transports that put files on a device and run commands there, in a
scheme registry, and the agent drivers that answer on the device (:mod:`.driver`).

Schemes: ``local`` (this machine), ``ssh://``, ``adb://``, and ``serial://`` (a microcontroller running
the edgesdk firmware harness). A new transport is one module plus one :func:`register_scheme` line below.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from ..errors import DeployError
from ..registry import Registry
from .local import LocalTransport
from .transport import AgentRun, Transport


@dataclass(frozen=True)
class Scheme:
    """A device URL scheme: its prefix, an example, and the module whose ``parse_url`` checks a URL and
    whose transport class opens it (imported only when a URL of the scheme is used); ``host_keys``: the
    transport checks host keys, so it takes ``trust_new_host``; ``setup``: the device has a shell and
    pip, so ``devices setup`` can install a runtime on it."""

    prefix: str
    example: str
    module: str
    transport: str
    host_keys: bool = False
    setup: bool = False

    def parse_url(self, url: str) -> Any:
        return importlib.import_module(self.module).parse_url(url)

    def open(self, url: str, *, trust_new_host: bool = False) -> Transport:
        cls = getattr(importlib.import_module(self.module), self.transport)
        return cls(url, trust_new_host=trust_new_host) if self.host_keys else cls(url)


SCHEMES: Registry[Scheme] = Registry("URL scheme", DeployError)


def register_scheme(scheme: Scheme) -> Scheme:
    """Add a transport's scheme (once: a second one of the same prefix is a programming error)."""
    return SCHEMES.add(scheme.prefix, scheme)


register_scheme(Scheme("ssh://", "ssh://user@host[:port][?python=PATH]", "edgesdk.deploy.ssh", "SshTransport",
                       host_keys=True, setup=True))
register_scheme(Scheme("adb://", "adb://SERIAL[?python=PATH|benchmark_model=PATH]", "edgesdk.deploy.adb",
                       "AdbTransport", setup=True))
register_scheme(Scheme("serial://", "serial:///dev/ttyACM0[?baud=115200]", "edgesdk.deploy.serial",
                       "SerialTransport"))
LOCAL = ("local", "local://")


def examples(wrappable: bool = False) -> str:
    """Every scheme as a user writes it, for help texts and errors; ``wrappable`` puts a space before each
    URL's options (``ssh://user@host [?python=PATH]``) so that a narrow ``--help`` breaks the line there
    instead of inside the URL."""
    forms = [s.example.replace("[?", " [?") if wrappable else s.example for s in SCHEMES.values()]
    return ", ".join(["local", *forms])


def scheme_of(url: str) -> Scheme:
    """The scheme of a device URL other than local.

    Raises:
        DeployError: an unknown scheme.
    """
    for prefix, scheme in SCHEMES.items():
        if url.startswith(prefix):
            return scheme
    name = url.split("://", 1)[0] if "://" in url else url
    raise DeployError(f"unsupported device {url!r} (scheme {name!r}); expected one of: {examples()}")


def validate_url(url: str) -> str:
    """Check a device URL's syntax without connecting; returns it (``local`` for both spellings).

    Raises:
        DeployError: unknown scheme or malformed URL.
    """
    if url in LOCAL:
        return "local"
    scheme_of(url).parse_url(url)
    return url


def open_transport(url: str, *, trust_new_host: bool = False) -> Transport:
    """A transport for a device URL.

    Raises:
        DeployError: an unknown scheme, or the device cannot be reached.
    """
    if url in LOCAL:
        return LocalTransport()
    return scheme_of(url).open(url, trust_new_host=trust_new_host)


__all__ = ["LOCAL", "SCHEMES", "AgentRun", "LocalTransport", "Scheme", "Transport", "examples", "open_transport",
           "register_scheme", "scheme_of", "validate_url"]
