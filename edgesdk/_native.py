"""Keep the C++ chatter of TensorFlow and LiteRT (printed straight to fd 2) off the user's terminal."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


@contextmanager
def quiet() -> Iterator[None]:
    """Capture fd 2 and Python warnings for the block; the text goes to the debug log."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace").strip()
            if text:
                log.debug("native output:\n%s", text)


def import_tensorflow() -> None:
    """Import TensorFlow with fd 2 captured: TF 2.21 logs through absl before any log level applies
    (``TF_CPP_MIN_LOG_LEVEL`` does not reach "oneDNN custom operations are on")."""
    if "tensorflow" not in sys.modules:
        with quiet():
            import tensorflow  # noqa: F401
