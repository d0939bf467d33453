"""One registry type for every plug-in point: techniques, search dimensions, URL schemes, model formats,
device runtimes. It lives in the agent (which imports nothing of edgesdk, and runs on the device's own
Python) so that the agent's runtimes use it too; edgesdk imports it as :mod:`edgesdk.registry`.

A registry maps a key to what was registered under it, in registration order (the order the CLI lists
them). Registering a key twice is a programming error; looking up an unknown key raises the caller's
error type with one sentence that lists the known keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping filled by :meth:`add`.

    Args:
        what: what one entry is, for messages ("technique", "URL scheme").
        error: the exception :meth:`lookup` raises for an unknown key (the caller's error type).
    """

    def __init__(self, what: str, error: Callable[[str], Exception] = KeyError) -> None:
        self.what = what
        self._error = error
        self._items: dict[str, T] = {}

    def add(self, key: str, item: T) -> T:
        """Register ``item`` under ``key``; a second entry of the same key is refused."""
        if key in self._items:
            raise ValueError(f"{self.what} {key!r} is registered twice")
        self._items[key] = item
        return item

    def lookup(self, key: str, where: str = "") -> T:
        """The entry of ``key``, or the caller's error naming it and listing the known keys."""
        if key not in self._items:
            raise self._error(f"unknown {self.what} {key!r}{where}; expected one of {', '.join(self._items)}")
        return self._items[key]

    def __getitem__(self, key: str) -> T:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.what}: {', '.join(self._items)})"
