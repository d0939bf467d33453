"""Ctrl-C that is never lost. Python raises KeyboardInterrupt wherever it is, and where that is a
destructor or a callback from native code (TensorFlow has many: ``Exception ignored in
AtomicFunction.__del__``) it is printed and dropped, and the command goes on. So while :func:`watch` is
active an interrupt is also recorded; :func:`check` raises it before anything is written, and an error
raised after an interrupt (a converter that wrapped it) becomes the interrupt again."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")

_flag = threading.Event()   # set by Ctrl-C during the outermost watch; kept after it for the CLI to read
_depth = 0


@contextlib.contextmanager
def watch() -> Iterator[threading.Event]:
    """Record Ctrl-C for the block; the flag it yields is set when one came. Blocks nest (a tune runs
    compress steps); the outermost one clears the flag. Only the main thread can install a handler;
    elsewhere Python's own stays and the flag only reflects the main thread's watch."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield _flag
        return

    def handler(signum: int, frame: Any) -> None:
        _flag.set()
        raise KeyboardInterrupt

    if _depth == 0:
        _flag.clear()
    previous = signal.signal(signal.SIGINT, handler)
    _depth += 1
    try:
        yield _flag
    except Exception as exc:
        if _flag.is_set():
            raise KeyboardInterrupt from exc
        raise
    finally:
        _depth -= 1
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def requested() -> bool:
    """Whether Ctrl-C came during the last outermost :func:`watch` (even if something swallowed it)."""
    return _flag.is_set()


def check() -> None:
    """Raise the interrupt that something swallowed; call before writing a result.

    Raises:
        KeyboardInterrupt: Ctrl-C came during the active watch.
    """
    if _flag.is_set():
        raise KeyboardInterrupt


def watched(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` inside :func:`watch` (for API entry points that write results)."""
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with watch():
            return fn(*args, **kwargs)
    return wrapper
