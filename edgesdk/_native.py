"""Keep the C++ chatter of TensorFlow and LiteRT (printed straight to fd 2) off the user's terminal."""

from __future__ import annotations

import importlib.abc
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
            if text:  # shown with --verbose
                log.info("native output:\n%s", text)


class _QuietImport:
    """A meta path finder that imports TensorFlow (and what imports it first: tf_keras, keras) with fd 2
    captured, whichever module asks for it first; it steps aside once TensorFlow is in."""

    NAMES = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization")

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.NAMES or name in sys.modules:
            return None
        import importlib
        import importlib.util

        if self in sys.meta_path:
            sys.meta_path.remove(self)
        try:
            with quiet():
                module = importlib.import_module(name)
        finally:
            if "tensorflow" not in sys.modules and self not in sys.meta_path:
                sys.meta_path.insert(0, self)
        return importlib.util.spec_from_loader(name, _Loaded(module))


class _Loaded(importlib.abc.Loader):
    """The loader of a module that is already imported: the import system gets it as it is."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def create_module(self, spec: Any) -> Any:
        return self.module

    def exec_module(self, module: Any) -> None:
        return None


def quiet_tensorflow_imports() -> None:
    """From now on, TensorFlow's import-time chatter (absl's "All log messages before
    absl::InitializeLog()", "oneDNN custom operations are on") goes to the log, wherever it is imported."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())


def import_tensorflow() -> None:
    """Import TensorFlow with fd 2 captured: TF 2.21 logs through absl before any log level applies
    (``TF_CPP_MIN_LOG_LEVEL`` does not reach "oneDNN custom operations are on")."""
    if "tensorflow" not in sys.modules:
        with quiet():
            import tensorflow  # noqa: F401
