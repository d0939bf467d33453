"""The runtime interface of the agent, and the runtimes it finds on a device.

A :class:`Runtime` opens a model as a :class:`Session` that the benchmark drives (inputs, invoke,
outputs). :class:`InterpreterRuntime` is the TFLite interpreter of ai_edge_litert, tflite_runtime or
tensorflow.lite, whichever imports first. A new runtime (ONNX Runtime, a vendor's NPU runtime) is a
:class:`Runtime` subclass with its :class:`Session` plus one :func:`register_runtime` line: the agent
tries it in registration order, and ``edgesdk devices setup`` installs it where it names its packages.
"""

from __future__ import annotations

import abc
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

from .protocol import OFFLOADED
from .registry import Registry
from .session import NoAccelerator, Session, UnsupportedModel

__all__ = ["RUNTIMES", "DeviceRuntime", "InterpreterRuntime", "LiteRtRuntime", "NoAccelerator", "NoRuntimeError",
           "Runtime", "Session", "UnsupportedModel", "installable", "load", "register_runtime"]

INSTALL_HINT = ("no TFLite runtime found: install one on the device, e.g. "
                "`python3 -m pip install numpy ai-edge-litert` (or `tflite-runtime 'numpy<2'` where "
                "LiteRT has no wheel)")


UNSUPPORTED_OP = re.compile(r"Didn't find (?:op for builtin opcode|custom op for name) '([^']+)'"
                             r"(?: version '(\d+)')?")


class NoRuntimeError(RuntimeError):
    """No TFLite runtime could be imported."""


def _version(dist: str) -> str:
    try:
        from importlib import metadata
        return metadata.version(dist)
    except Exception:  # noqa: BLE001 - any metadata failure just means "unknown"
        return "unknown"


class Runtime(abc.ABC):
    """A runtime on the device: its name and version, and how it opens a model."""

    name: str
    version: str

    @abc.abstractmethod
    def open(self, model_path: str, threads: Optional[int] = None, delegate: Optional[str] = None,
             accelerator: Optional[str] = None) -> Session:
        """Load ``model_path`` for ``accelerator`` (one of ``ACCELERATORS``; None: the runtime's default, the CPU).

        Raises:
            UnsupportedModel: the runtime cannot run this model (an operator or version it lacks).
            NoAccelerator: the device or runtime has no such accelerator.
        """


class InterpreterSession(Session):
    """A TFLite interpreter as a session."""

    def __init__(self, interp: Any) -> None:
        self.interp = interp

    def input_details(self) -> list[dict]:
        return list(self.interp.get_input_details())

    def set_inputs(self, arrays: list[Any]) -> None:
        for detail, array in zip(self.interp.get_input_details(), arrays):
            self.interp.set_tensor(detail["index"], array)

    def invoke(self) -> None:
        self.interp.invoke()

    def outputs(self) -> list[Any]:
        return [self.interp.get_tensor(d["index"]) for d in self.interp.get_output_details()]


class InterpreterRuntime(Runtime):
    """The classic TFLite interpreter API, from whichever module provides it."""

    def __init__(self, name: str, version: str, interpreter_cls: Any) -> None:
        self.name, self.version, self.interpreter_cls = name, version, interpreter_cls

    def open(self, model_path: str, threads: Optional[int] = None, delegate: Optional[str] = None,
             accelerator: Optional[str] = None) -> Session:
        if accelerator in OFFLOADED:
            raise NoAccelerator(f"{self.name} {self.version} has no {accelerator.upper()} accelerator (LiteRT's "
                                "CompiledModel is in ai-edge-litert 2 or newer: `edgesdk devices setup DEVICE "
                                "--runtime ai-edge-litert`), or give --delegate with the path of a delegate library")
        session = InterpreterSession(open_interpreter(self.interpreter_cls, self.name, self.version, model_path,
                                                      threads, delegate))
        if accelerator == "auto":
            session.doc = {**session.doc, "requested": "auto", "note": f"{self.name} has no accelerator API: "
                           "the CPU ran it"}
        elif accelerator == "cpu":
            session.doc = {**session.doc, "requested": "cpu"}
        return session


def _interpreter(module: Any, name: str, version: str) -> Runtime:
    return InterpreterRuntime(name, version, module.Interpreter)


class LiteRtRuntime(InterpreterRuntime):
    """ai_edge_litert: the interpreter for the CPU, CompiledModel (:mod:`.accelerated`) for the GPU and NPU."""

    def open(self, model_path: str, threads: Optional[int] = None, delegate: Optional[str] = None,
             accelerator: Optional[str] = None) -> Session:
        from . import accelerated

        if accelerator in (None, "cpu"):
            return super().open(model_path, threads, delegate, accelerator)
        if accelerator == "auto" and delegate:  # the delegate library is the accelerator
            session = super().open(model_path, threads, delegate)
            session.doc = {**session.doc, "requested": "auto", "used": "delegate"}
            return session
        if delegate:
            raise NoAccelerator(f"--delegate and --accelerator {accelerator} exclude each other: a delegate library "
                                "is the accelerator")
        if not accelerated.available():
            raise NoAccelerator(f"{self.name} {self.version} has no CompiledModel API (accelerators need "
                                "ai-edge-litert 2 or newer)")
        why = []
        for choice in (["npu", "gpu"] if accelerator == "auto" else [accelerator]):
            try:
                return accelerated.open_compiled(model_path, choice, accelerator, threads)
            except (NoAccelerator, UnsupportedModel) as exc:  # auto: the next one, in the end the CPU
                if accelerator != "auto":
                    raise
                why.append(str(exc))
        session = super().open(model_path, threads, delegate)
        session.doc = {**session.doc, "requested": "auto", "note": f"auto: the CPU ran it ({'; '.join(why)})"}
        return session


def _litert(module: Any, name: str, version: str) -> Runtime:
    return LiteRtRuntime(name, version, module.Interpreter)


@dataclass(frozen=True)
class DeviceRuntime:
    """A runtime the agent may find on a device.

    Attributes:
        name: its key (the agent's ``--runtime``; ``runtime.name`` in measurements).
        module: the module whose import says it is installed.
        dist: its distribution name (for its version, and ``devices setup --runtime``).
        factory: makes the :class:`Runtime` from the imported module, its name and version.
        install: what ``devices setup`` installs for it with pip (empty: never installed by edgesdk).
    """

    name: str
    module: str
    dist: str
    factory: Callable[[Any, str, str], Runtime]
    install: tuple[str, ...] = ()


RUNTIMES: Registry[DeviceRuntime] = Registry("device runtime", NoRuntimeError)


def installable() -> dict[str, DeviceRuntime]:
    """The runtimes ``devices setup`` can install (those naming their packages), by distribution name, in
    the order the agent prefers them."""
    return {r.dist: r for r in RUNTIMES.values() if r.install}


def register_runtime(runtime: DeviceRuntime) -> DeviceRuntime:
    """Add a runtime; the agent tries them in registration order (a second of one name is refused)."""
    return RUNTIMES.add(runtime.name, runtime)


# Preference order: LiteRT is the maintained runtime; tflite_runtime is what older boards carry (its last
# wheels, 2.14, were built against numpy 1); full TensorFlow is a last resort (its interpreter is deprecated).
register_runtime(DeviceRuntime("ai_edge_litert", "ai_edge_litert.interpreter", "ai-edge-litert", _litert,
                               ("numpy", "ai-edge-litert")))
register_runtime(DeviceRuntime("tflite_runtime", "tflite_runtime.interpreter", "tflite-runtime", _interpreter,
                               ("numpy<2", "tflite-runtime")))
register_runtime(DeviceRuntime("tensorflow", "tensorflow.lite.python.interpreter", "tensorflow", _interpreter))


def load(preferred: Optional[str] = None) -> Runtime:
    """The first runtime of :data:`RUNTIMES` that imports.

    Args:
        preferred: a runtime name from :data:`RUNTIMES` to require instead of searching.

    Raises:
        NoRuntimeError: when none (or not the preferred one) can be imported.
    """
    if preferred:
        RUNTIMES.lookup(preferred)
    errors = []
    for entry in RUNTIMES.values():
        if preferred and entry.name != preferred:
            continue
        try:
            mod = importlib.import_module(entry.module)
        except Exception as exc:  # noqa: BLE001 - a broken install is reported, not raised
            errors.append(f"{entry.name}: {exc}")
            continue
        return entry.factory(mod, entry.name, _version(entry.dist))
    raise NoRuntimeError(INSTALL_HINT + ("; tried " + "; ".join(errors) if errors else ""))


def open_interpreter(interpreter_cls: Any, name: str, version: str, model_path: str,
                     threads: Optional[int] = None, delegate: Optional[str] = None) -> Any:
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
