"""Find whichever TFLite runtime the device has: ai_edge_litert, tflite_runtime or tensorflow.lite."""

from __future__ import annotations

import importlib
import re
from typing import Any

# Preference order: LiteRT is the maintained runtime; tflite_runtime is what older boards carry;
# full TensorFlow is a last resort (its interpreter is deprecated).
CANDIDATES = (
    ("ai_edge_litert", "ai_edge_litert.interpreter", "ai-edge-litert"),
    ("tflite_runtime", "tflite_runtime.interpreter", "tflite-runtime"),
    ("tensorflow", "tensorflow.lite.python.interpreter", "tensorflow"),
)

INSTALL_HINT = ("no TFLite runtime found: install one on the device, e.g. "
                "`python3 -m pip install numpy ai-edge-litert` (or `tflite-runtime 'numpy<2'` where "
                "LiteRT has no wheel)")


UNSUPPORTED_OP = re.compile(r"Didn't find (?:op for builtin opcode|custom op for name) '([^']+)'"
                             r"(?: version '(\d+)')?")


class NoRuntimeError(RuntimeError):
    """No TFLite runtime could be imported."""


class UnsupportedModel(RuntimeError):
    """The device runtime refuses the model before running it (an operator or version it lacks)."""


def _version(dist: str) -> str:
    try:
        from importlib import metadata
        return metadata.version(dist)
    except Exception:  # noqa: BLE001 - any metadata failure just means "unknown"
        return "unknown"


def load(preferred: str | None = None) -> tuple[str, str, Any]:
    """Return ``(name, version, Interpreter class)`` of the first runtime that imports.

    Args:
        preferred: a runtime name from ``CANDIDATES`` to require instead of searching.

    Raises:
        NoRuntimeError: when none (or not the preferred one) can be imported.
    """
    errors = []
    for name, module, dist in CANDIDATES:
        if preferred and name != preferred:
            continue
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - a broken install is reported, not raised
            errors.append(f"{name}: {exc}")
            continue
        return name, _version(dist), mod.Interpreter
    raise NoRuntimeError(INSTALL_HINT + ("; tried " + "; ".join(errors) if errors else ""))


def open_interpreter(interpreter_cls: Any, name: str, version: str, model_path: str,
                     threads: int | None = None, delegate: str | None = None) -> Any:
    """Create and allocate an interpreter; a missing kernel becomes :class:`UnsupportedModel`.

    ``delegate``: None for the runtime's default (XNNPACK in LiteRT), ``"none"`` for plain builtin
    kernels, or the path of a delegate library to load.

    Raises:
        UnsupportedModel: the runtime has no kernel for one of the model's operators (or versions).
    """
    kwargs: dict[str, Any] = {"model_path": model_path}
    if threads is not None:
        kwargs["num_threads"] = threads
    if delegate is not None:
        module = importlib.import_module(interpreter_cls.__module__)
        if delegate == "none":
            resolver = getattr(module, "OpResolverType", None)
            if resolver is None:
                raise UnsupportedModel(f"{name} {version} cannot turn off its default delegate")
            kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        else:
            try:
                kwargs["experimental_delegates"] = [module.load_delegate(delegate)]
            except (ValueError, OSError, RuntimeError, AttributeError) as exc:
                raise UnsupportedModel(f"cannot load the delegate {delegate}: {exc}") from exc
    try:
        interp = interpreter_cls(**kwargs)
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        found = UNSUPPORTED_OP.search(str(exc))
        if found:
            what = found.group(1) + (f" version {found.group(2)}" if found.group(2) else " (custom op)")
            raise UnsupportedModel(f"{name} {version} cannot run this model: it has no kernel for {what} "
                                   "(the model needs a newer runtime, or a recipe that avoids that operator "
                                   "version)") from exc
        raise
    return interp
