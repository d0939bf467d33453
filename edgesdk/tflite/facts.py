"""Facts about a .tflite flatbuffer: operators and versions, parameters, MACs, tensor sizes, memory.

Parsed with the flatbuffer schema that ships with ai-edge-litert; no interpreter is created, so this
is fast and works for models no local runtime can run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from . import validate

# Operators whose input 1 is a weight matrix/filter (and input 2 a bias).
WEIGHT_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D",
              "BATCH_MATMUL", "EMBEDDING_LOOKUP"}
_BOUNDARY_OPS = {"QUANTIZE", "DEQUANTIZE"}
_DTYPE_BYTES = {"FLOAT32": 4, "FLOAT16": 2, "INT32": 4, "UINT8": 1, "INT64": 8, "BOOL": 1,
                "INT16": 2, "INT8": 1, "FLOAT64": 8, "UINT32": 4, "UINT16": 2}  # INT4: two to a byte


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


@dataclass(frozen=True)
class OpInfo:
    index: int
    op: str
    version: int
    output: str
    output_shape: list[int]
    dtype: str
    output_bytes: int
    macs: int
    inputs: tuple[int, ...] = ()          # tensor indices (-1: an optional input left out)


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: list[int]
    dtype: str
    bytes: int
    constant: bool


@dataclass(frozen=True)
class ModelReport:
    """What `edgesdk inspect` prints; JSON-serializable through ``to_dict``."""

    path: str
    model_bytes: int
    operators: dict[str, int]            # "CONV_2D" -> highest version used
    op_counts: dict[str, int]
    params: int
    weight_bytes: int
    macs: int
    peak_activation_bytes: int
    precision: str                        # fp32 | fp16 | dynamic | int8 | int16x8 | mixed
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    layers: list[OpInfo] = field(repr=False)
    tensors: list[TensorInfo] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _elems(shape: list[int]) -> int:
    return math.prod(max(int(s), 1) for s in shape) if shape else 1


def _macs(op: str, ins: list[TensorInfo | None], outs: list[TensorInfo]) -> int:
    if not outs or not ins:
        return 0
    out = _elems(outs[0].shape)
    weight = ins[1] if len(ins) > 1 else None
    if op == "CONV_2D" and weight is not None and len(weight.shape) == 4:
        _, kh, kw, cin = weight.shape
        return out * kh * kw * cin
    if op == "DEPTHWISE_CONV_2D" and weight is not None and len(weight.shape) == 4:
        return out * weight.shape[1] * weight.shape[2]
    if op == "FULLY_CONNECTED" and weight is not None and weight.shape:
        return out * weight.shape[-1]
    if op == "TRANSPOSE_CONV" and weight is not None and len(ins) > 2 and ins[2] is not None:
        cout, kh, kw, _ = weight.shape
        return _elems(ins[2].shape) * kh * kw * cout
    if op == "BATCH_MATMUL" and ins[0] is not None and ins[0].shape:
        return out * ins[0].shape[-1]
    return 0


def _precision(layers: list[OpInfo], tensors: list[TensorInfo], weight_types: set[str]) -> str:
    act = {layer.dtype for layer in layers if layer.op not in _BOUNDARY_OPS}
    if "INT16" in act:
        return "int16x8"
    if act and act <= {"INT8", "UINT8", "INT32", "INT64", "BOOL"}:
        return "int8"
    if act & {"INT8", "UINT8"} and "FLOAT32" in act:
        return "mixed"
    if weight_types & {"INT8", "UINT8"}:
        return "dynamic"
    if any(t.constant and t.dtype == "FLOAT16" for t in tensors):
        return "fp16"
    return "fp32"


def _unpack(path: str | Path, buf: bytes) -> Any:
    """The flatbuffer as the schema's object API (ModelT).

    Raises:
        ModelError: not a TFLite flatbuffer, or a corrupt one.
    """
    from ai_edge_litert import schema_py_generated as fb

    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ModelError(f"{path}: not a TFLite flatbuffer (no TFL3 identifier)")
    try:
        return fb.ModelT.InitFromPackedBuf(buf, 0)
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises anything on garbage
        raise ModelError(f"{path}: corrupt TFLite flatbuffer: {type(exc).__name__}: {exc}") from exc


def analyze(path: str | Path, data: bytes | None = None) -> ModelReport:
    """Parse a .tflite file (or its bytes) and compute the report; its structure is checked first
    (:func:`edgesdk.tflite.validate.check`), so a mutated file is a ModelError, never an IndexError.

    Raises:
        ModelError: the bytes are not a readable TFLite flatbuffer, or its structure is invalid.
    """
    buf = Path(path).read_bytes() if data is None else data
    model = _unpack(path, buf)
    try:
        validate.check(model)
        return _report(path, buf, model)
    except ModelError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    except validate.CORRUPT as exc:
        raise ModelError(f"{path}: the model's structure is invalid ({type(exc).__name__}: {str(exc)[:200]}); "
                         "the file is corrupt") from exc


def _report(path: str | Path, buf: bytes, model: Any) -> ModelReport:
    from ai_edge_litert import schema_py_generated as fb

    op_names = _enum_names(fb.BuiltinOperator)
    type_names = _enum_names(fb.TensorType)
    graph = model.subgraphs[0]

    def const(t: Any) -> bool:
        b = model.buffers[t.buffer] if t.buffer < len(model.buffers) else None
        return b is not None and ((b.data is not None and len(b.data) > 0) or (b.size or 0) > 0)

    tensors: list[TensorInfo] = []
    for i, t in enumerate(graph.tensors):
        shape = [int(s) for s in (t.shape if t.shape is not None else [])]
        dtype = type_names.get(t.type, str(t.type))
        name = t.name.decode() if isinstance(t.name, bytes) else ""  # None once stripped
        size = -(-_elems(shape) // 2) if dtype == "INT4" else _elems(shape) * _DTYPE_BYTES.get(dtype, 4)  # packed
        tensors.append(TensorInfo(i, name, shape, dtype, size, const(t)))

    layers: list[OpInfo] = []
    operators: dict[str, int] = {}
    counts: dict[str, int] = {}
    param_tensors: set[int] = set()
    weight_types: set[str] = set()
    for i, op in enumerate(graph.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = op_names.get(builtin, str(builtin))
        if name == "CUSTOM":
            custom = code.customCode
            name = "CUSTOM:" + (custom.decode() if isinstance(custom, bytes) else str(custom))
        operators[name] = max(operators.get(name, 0), int(code.version))
        counts[name] = counts.get(name, 0) + 1
        ins = [tensors[j] if j >= 0 else None for j in (op.inputs if op.inputs is not None else [])]
        outs = [tensors[j] for j in (op.outputs if op.outputs is not None else [])]
        for pos, t in enumerate(ins):
            if t is None or not t.constant:
                continue
            # int32 constants are shapes/axes, except biases of weight ops.
            if t.dtype not in ("INT32", "INT64") or (name in WEIGHT_OPS and pos == 2):
                param_tensors.add(t.index)
            if name in WEIGHT_OPS and pos == 1:
                weight_types.add(t.dtype)
        first = outs[0] if outs else None
        layers.append(OpInfo(i, name, int(code.version), first.name if first else "", first.shape if first else [],
                             first.dtype if first else "", first.bytes if first else 0, _macs(name, ins, outs),
                             tuple(int(j) for j in (op.inputs if op.inputs is not None else []))))

    peak = _peak_activation_bytes(graph, tensors)

    return ModelReport(
        path=str(path),
        model_bytes=len(buf),
        operators=dict(sorted(operators.items())),
        op_counts=dict(sorted(counts.items())),
        params=sum(_elems(tensors[j].shape) for j in param_tensors),
        weight_bytes=sum(t.bytes for t in tensors if t.constant),
        macs=sum(layer.macs for layer in layers),
        peak_activation_bytes=peak,
        precision=_precision(layers, tensors, weight_types),
        inputs=[tensors[j] for j in (graph.inputs if graph.inputs is not None else [])],
        outputs=[tensors[j] for j in (graph.outputs if graph.outputs is not None else [])],
        layers=layers,
        tensors=tensors,
    )


def _peak_activation_bytes(graph: Any, tensors: list[TensorInfo]) -> int:
    """The most bytes of activations alive at once, running the operators in their stored order.

    Liveness: a non-constant tensor lives from the op that writes it to its last reader.
    """
    last_use: dict[int, int] = {}
    n_ops = len(graph.operators or [])
    for i, op in enumerate(graph.operators or []):
        for j in op.inputs if op.inputs is not None else []:
            if j >= 0:
                last_use[j] = i
    for j in graph.outputs if graph.outputs is not None else []:
        last_use[j] = n_ops
    live = {j: tensors[j].bytes for j in (graph.inputs if graph.inputs is not None else [])}
    peak = sum(live.values())
    for i, op in enumerate(graph.operators or []):
        for j in op.outputs if op.outputs is not None else []:
            if not tensors[j].constant:
                live[j] = tensors[j].bytes
        peak = max(peak, sum(live.values()))
        for j in [j for j in live if last_use.get(j, -1) <= i]:
            del live[j]

    return peak


_VALUE_TYPES = {"FLOAT32": "<f4", "FLOAT16": "<f2", "INT8": "i1", "UINT8": "u1", "INT16": "<i2", "INT32": "<i4",
                "INT64": "<i8", "BOOL": "u1"}


def weight_entropy_bytes(path: str | Path, data: bytes | None = None) -> tuple[int, int]:
    """(raw bytes, ideal entropy-coded bytes) of the model's weights (every constant tensor).

    The ideal size of a tensor is its element count times the empirical entropy of its values, in bits,
    plus the table of its distinct values (at most its raw size): what an entropy coder over each
    tensor's values (Huffman, arithmetic, ANS) approaches. Clustering (few distinct values) and sparsity
    (many zeros) leave the raw .tflite bytes as they are, but show here, as the storage or over-the-air
    download they would save. Types without a known element size
    (int4, strings) count at their raw size.
    """
    from ai_edge_litert import schema_py_generated as fb

    buf = Path(path).read_bytes() if data is None else data
    model = _unpack(path, buf)
    type_names = _enum_names(fb.TensorType)
    raw = ideal = 0
    for t, b in _stored(model):
        content = bytes(bytearray(b.data))
        raw += len(content)
        dtype = _VALUE_TYPES.get(type_names.get(t.type, ""))
        if dtype is None or len(content) % np.dtype(dtype).itemsize:
            ideal += len(content)
            continue
        values = np.frombuffer(content, dtype=dtype)
        # distinct bit patterns (so -0.0 and 0.0, or NaNs, count apart, as a coder would see them)
        _, counts = np.unique(values.view(f"u{np.dtype(dtype).itemsize}"), return_counts=True)
        p = counts / counts.sum()
        coded = math.ceil(float(-(counts * np.log2(p)).sum()) / 8) + len(counts) * np.dtype(dtype).itemsize
        ideal += min(len(content), int(coded))  # the table of distinct values is paid for; never above raw
    return raw, ideal


def operator_probe(path: str | Path) -> bytes:
    """A tiny .tflite with ``path``'s operator table (every builtin/custom code and version) and no operators.

    A TFLite runtime resolves a kernel for every entry of the operator table when it loads a model, so the
    device can load this probe to say whether it runs the real model, before the model is uploaded.

    Raises:
        ModelError: the file is not a readable TFLite flatbuffer.
    """
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    model = _unpack(path, Path(path).read_bytes())
    tensor = fb.TensorT()
    tensor.shape, tensor.type, tensor.buffer, tensor.name = [1], fb.TensorType.FLOAT32, 0, b"probe"
    graph = fb.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators, graph.name = [tensor], [0], [0], [], b"probe"
    probe = fb.ModelT()
    probe.version, probe.description = model.version or 3, b"edgesdk operator probe"
    probe.operatorCodes, probe.subgraphs, probe.buffers = model.operatorCodes or [], [graph], [fb.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(probe.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def weight_storage(data: bytes) -> dict[str, int]:
    """Bytes of stored constants by their type (``{"float32": 40960, "float16": 1728}``)."""
    from ai_edge_litert import schema_py_generated as fb

    model = _unpack("model", data)
    type_names = _enum_names(fb.TensorType)
    found: dict[str, int] = {}
    for t, b in _stored(model):
        kind = type_names.get(t.type, str(t.type)).lower()
        found[kind] = found.get(kind, 0) + len(b.data)
    return found


def _stored(model: Any) -> Iterator[tuple[Any, Any]]:
    """(tensor, buffer) of every stored constant, each buffer once (tensors may share one)."""
    seen: set[int] = set()
    for graph in model.subgraphs:
        for t in graph.tensors:
            b = model.buffers[t.buffer] if 0 < t.buffer < len(model.buffers) else None
            if b is None or b.data is None or len(b.data) == 0 or t.buffer in seen:
                continue
            seen.add(t.buffer)
            yield t, b
