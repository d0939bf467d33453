"""LiteRT's CompiledModel: a model on the device's GPU or NPU, with the CPU for what they cannot run.

``ai_edge_litert.compiled_model.CompiledModel.from_file(path, hardware_accel=GPU | CPU)`` hands the
operators the accelerator supports to it and the rest to XNNPACK. What actually happened is only in
what LiteRT prints while it compiles (C-level stderr): the GPU adapter Dawn selected, the operators
the GPU delegate refused and why, "N operations will run on the GPU, and the remaining M ... on the
CPU", "No adapters found", "NPU accelerator could not be loaded". The session reads that text and
reports it; a request the device cannot serve is :class:`NoAccelerator`, never a silent CPU run.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any, Optional

from .session import NoAccelerator, Session, UnsupportedModel

ADAPTER = re.compile(r"Selected adapter: (?P<name>.+?), arch=(?P<arch>[^,]*), vendor=(?P<vendor>[^,]*), "
                     r"backend=(?P<backend>[^,]*), adapterType=(?P<type>[^\n]+)")
REFUSED_HEAD = "Following operations are not supported by GPU delegate:"
REFUSED_LINE = re.compile(r"^(?P<op>[A-Z][A-Z0-9_]*): (?P<reason>.+)$")
SPLIT = re.compile(r"(\d+) operations will run on the GPU, and the remaining (\d+) operations? will run on the CPU")
NO_GPU = ("No adapters found", "Failed to initialize WebGPU environment", "Failed to create GPU environment")
NO_NPU = "NPU accelerator could not be loaded"


@contextlib.contextmanager
def c_stderr() -> Iterator[dict[str, str]]:
    """Capture what native code writes to file descriptor 2 (and pass it on to stderr afterwards)."""
    sys.stderr.flush()
    saved = os.dup(2)
    box = {"text": ""}
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield box
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            data = tmp.read()
            os.write(2, data)
            box["text"] = data.decode("utf-8", errors="replace")


def refused_operators(log: str) -> list[dict[str, str]]:
    """The operators the GPU delegate said it cannot run, each with its reason (one entry per op)."""
    lines = log.splitlines()
    found: dict[str, str] = {}
    for i, line in enumerate(lines):
        if REFUSED_HEAD not in line:
            continue
        for follow in lines[i + 1:]:
            match = REFUSED_LINE.match(follow.strip())
            if not match:
                break
            found.setdefault(match["op"], match["reason"].strip())
    return [{"op": op, "reason": reason} for op, reason in found.items()]


def adapter(log: str) -> Optional[dict[str, Any]]:
    """The GPU adapter Dawn selected: name, vendor, backend, type, and whether it is software."""
    match = ADAPTER.search(log)
    if not match:
        return None
    kind = match["type"].strip()
    software = "software" in kind.lower() or match["arch"].strip().lower() == "software" or \
        any(name in match["name"].lower() for name in ("llvmpipe", "swiftshader", "lavapipe"))
    return {"name": match["name"].strip(), "vendor": match["vendor"].strip(), "backend": match["backend"].strip(),
            "type": kind, "software": software}


def _first_line(exc: BaseException) -> str:
    lines = [line.strip(" └") for line in str(exc).splitlines() if line.strip(" └")]
    return lines[-1] if lines else type(exc).__name__


class CompiledSession(Session):
    """A CompiledModel as a session; ``invoke`` returns when the outputs are back on the host."""

    def __init__(self, model: Any, accelerator: dict[str, Any], model_path: str, threads: Optional[int]) -> None:
        import numpy as np

        self.np = np
        self.model = model
        self.doc = accelerator
        self.model_path, self.threads = model_path, threads
        signatures = model.get_signature_list()
        self.key = next(iter(signatures))
        ins, outs = model.get_input_tensor_details(self.key), model.get_output_tensor_details(self.key)
        self._inputs = [ins[name] for name in signatures[self.key]["inputs"]]
        self._outputs = [outs[name] for name in signatures[self.key]["outputs"]]
        self._in_buffers = model.create_input_buffers(0)
        self._out_buffers = model.create_output_buffers(0)
        self._results: list[Any] = []

    def input_details(self) -> list[dict]:
        return [{"name": d["name"], "shape": list(d["shape"]), "dtype": self.np.dtype(d["dtype"])}
                for d in self._inputs]

    def set_inputs(self, arrays: list[Any]) -> None:
        for buffer, array in zip(self._in_buffers, arrays):
            buffer.write(self.np.ascontiguousarray(array))

    def invoke(self) -> None:
        self.model.run_by_index(0, self._in_buffers, self._out_buffers)
        # A GPU run may be queued, not finished: reading the outputs back is what waits for it.
        self._results = [buffer.read(int(self.np.prod(d["shape"])), d["dtype"]).reshape(d["shape"])
                         for buffer, d in zip(self._out_buffers, self._outputs)]

    def outputs(self) -> list[Any]:
        return list(self._results)

    def accelerator(self) -> dict[str, Any]:
        return dict(self.doc)

    def cpu_twin(self) -> Optional[Session]:
        model = _compile(self.model_path, "cpu", self.threads)[0]
        return CompiledSession(model, {"requested": "cpu", "used": "cpu"}, self.model_path, self.threads)


def _compile(model_path: str, accelerator: str, threads: Optional[int]) -> tuple[Any, str]:
    """(CompiledModel, what LiteRT printed) for ``accelerator`` with the CPU beside it."""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator

    flags = {"cpu": HardwareAccelerator.CPU, "gpu": HardwareAccelerator.GPU | HardwareAccelerator.CPU,
             "npu": HardwareAccelerator.NPU | HardwareAccelerator.CPU}[accelerator]
    kwargs: dict[str, Any] = {"hardware_accel": flags}
    try:
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.options import Options

        kwargs = {"options": Options(hardware_accelerators=flags, cpu_options=CpuOptions(num_threads=threads or 0))}
    except ImportError:  # an older LiteRT: the shortcut (one CPU thread for what falls back)
        pass
    # Dawn's Vulkan loader wants a runtime directory; a login over SSH or ADB may have none.
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.gettempdir())
    failure: Optional[BaseException] = None
    model = None
    with c_stderr() as log:
        try:
            model = CompiledModel.from_file(model_path, **kwargs)
        except (RuntimeError, ValueError) as exc:
            failure = exc
    text = log["text"]
    if accelerator == "gpu" and any(sign in text for sign in NO_GPU):
        raise NoAccelerator("no GPU for LiteRT here: no adapter was found (a Vulkan, OpenCL or Metal driver; "
                            "on a machine without a GPU, Mesa's software Vulkan driver lavapipe 25+ works)")
    if accelerator == "npu" and NO_NPU in text:
        raise NoAccelerator("no NPU for LiteRT here: no vendor NPU dispatch library was found (the device "
                            "needs its vendor's LiteRT NPU runtime, e.g. libLiteRtDispatch_*.so)")
    if failure is not None or model is None:
        raise UnsupportedModel(f"LiteRT's {accelerator.upper()} accelerator cannot take this model: "
                               f"{_first_line(failure) if failure else 'no model was compiled'}")
    return model, text


def available() -> bool:
    """Whether this ai_edge_litert has the CompiledModel API."""
    try:
        from ai_edge_litert.compiled_model import CompiledModel  # noqa: F401
    except ImportError:
        return False
    return True


def open_compiled(model_path: str, accelerator: str, requested: str, threads: Optional[int]) -> CompiledSession:
    """``model_path`` compiled for ``accelerator`` (gpu or npu) with the CPU for the rest, as a session.

    Raises:
        NoAccelerator: the device has no such accelerator. UnsupportedModel: the accelerator refused the model.
    """
    model, log = _compile(model_path, accelerator, threads)
    return CompiledSession(model, _describe(model, log, accelerator, requested), model_path, threads)


def _describe(model: Any, log: str, used: str, requested: str) -> dict[str, Any]:
    # LiteRT's is_fully_accelerated() alone is not enough: on a model whose 5-D RESHAPE the GPU delegate
    # refused ("2 operations will run on the GPU, and the remaining 1 ... on the CPU") it still said True.
    # Fully accelerated is what both say: the API, and the delegate's own account of what it left.
    said = bool(model.is_fully_accelerated())
    refused = refused_operators(log) if used == "gpu" else []
    split = SPLIT.search(log)
    on_cpu = int(split.group(2)) if split else None
    full = said and not refused and not on_cpu
    doc: dict[str, Any] = {
        "requested": requested, "used": used, "api": "litert-compiled-model", "fully_accelerated": full,
        "api_fully_accelerated": said,
        "fallback_ops": sorted({r["op"] for r in refused}), "fallback_reasons": refused,
        "ops_on_accelerator": int(split.group(1)) if split else None,
        "ops_on_cpu": on_cpu if split else (0 if full else None),
        "adapter": adapter(log) if used == "gpu" else None,
    }
    if not full and not refused:
        doc["note"] = f"the {used.upper()} accelerator did not say which operators it left to the CPU"
    return doc
