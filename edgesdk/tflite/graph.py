"""Graph surgery on a .tflite flatbuffer, through TFLite's own object API (``flatbuffer_utils``).

A :class:`Graph` reads a model once, lets a technique read and replace constant tensors (weights),
insert and remove operators, and writes the model back with the tensors and buffers nothing refers to
any more dropped. :func:`normalize` turns the models people actually have into plain float32 ones:
weights stored as fp16 or int8 behind DEQUANTIZE ops (MediaPipe's, weight-only models), dynamic-range
(hybrid) weights, and models without a signature.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _native
from ..errors import ModelError
from . import sparse, validate

# TFLite's TensorType codes and the numpy types their buffers hold.
FLOAT32, FLOAT16, INT32, UINT8, INT64, INT16, INT8 = 0, 1, 2, 3, 4, 7, 9
DTYPES = {FLOAT32: np.float32, FLOAT16: np.float16, INT32: np.int32, UINT8: np.uint8, INT64: np.int64,
          INT16: np.int16, INT8: np.int8, 10: np.float64, 6: np.bool_}
INTEGER_TYPES = (INT8, UINT8, INT16)
WEIGHTED = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")  # ops whose input 1 is a weight matrix
HYBRID = (*WEIGHTED, "BATCH_MATMUL", "EMBEDDING_LOOKUP", "TRANSPOSE_CONV", "CONV_3D", "SVDF",
          "UNIDIRECTIONAL_SEQUENCE_LSTM", "LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM", "RNN")
SIGNATURE = "serving_default"


def _schema() -> Any:
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


class Graph:
    """A mutable .tflite model: ``model`` is TFLite's ``ModelT``; subgraph 0 is the one techniques edit.

    Raises:
        ModelError: the bytes are not a .tflite flatbuffer, or keep buffers outside it (over 2 GB).
    """

    def __init__(self, content: bytes) -> None:
        _native.import_tensorflow()
        from tensorflow.lite.tools import flatbuffer_utils

        try:
            self.model = flatbuffer_utils.read_model_from_bytearray(bytearray(content))
        except Exception as exc:  # noqa: BLE001 - the flatbuffer reader raises anything on garbage
            raise ModelError(f"corrupt TFLite flatbuffer: {type(exc).__name__}: {str(exc)[:200]}") from exc
        if any(getattr(b, "offset", 0) for b in self.model.buffers or []):
            raise ModelError("the model keeps its weights outside the flatbuffer (a model over 2 GB); "
                             "edgesdk edits models whose weights are inside the file")
        if not self.model.subgraphs:
            raise ModelError("the model has no subgraph; the file is corrupt")
        self.sub = self.model.subgraphs[0]

    # --- reading ---------------------------------------------------------------------------------------

    def op_name(self, op: Any) -> str:
        from tensorflow.lite.tools import flatbuffer_utils

        return str(flatbuffer_utils.opcode_to_name(self.model, op.opcodeIndex))

    def ops(self, *names: str) -> Iterator[tuple[int, Any]]:
        """(index, operator) of subgraph 0, of the named kinds (all without names)."""
        for i, op in enumerate(self.sub.operators or []):
            if not names or self.op_name(op) in names:
                yield i, op

    def custom_ops(self) -> list[str]:
        return sorted({str(c.customCode.decode() if isinstance(c.customCode, bytes) else c.customCode)
                       for c in self.model.operatorCodes if c.customCode})

    def tensor(self, index: int, sub: Any = None) -> Any:
        return (sub or self.sub).tensors[index]

    def constant(self, index: int, sub: Any = None) -> np.ndarray | None:
        """The stored value of tensor ``index`` (None: not a constant, or a type numpy has no view of)."""
        if index < 0:
            return None
        t = self.tensor(index, sub)
        data = self.model.buffers[t.buffer].data if t.buffer else None
        if data is None or len(data) == 0 or t.type not in DTYPES:
            return None
        array: np.ndarray = np.frombuffer(bytes(np.asarray(data, dtype=np.uint8)), dtype=DTYPES[t.type])
        shape = list(t.shape) if t.shape is not None else []
        return array.reshape(shape) if int(np.prod(shape)) == array.size else array

    def dequantized(self, index: int, sub: Any = None) -> np.ndarray | None:
        """A constant as float32: fp16 widened, integers through their scale and zero point."""
        value = self.constant(index, sub)
        if value is None:
            return None
        t = self.tensor(index, sub)
        q = t.quantization
        if t.type in (INT8, UINT8, INT16, INT32) and q is not None and q.scale is not None and len(q.scale):
            scale, zero = np.asarray(q.scale, np.float32), np.asarray(q.zeroPoint if q.zeroPoint is not None
                                                                     else [0] * len(q.scale), np.float32)
            axis = int(q.quantizedDimension or 0)
            view = [1] * value.ndim
            if len(scale) > 1:
                view[axis] = len(scale)
            return ((value.astype(np.float32) - zero.reshape(view)) * scale.reshape(view)).astype(np.float32)
        return value.astype(np.float32)

    def consumers(self, sub: Any = None) -> dict[int, list[int]]:
        uses: dict[int, list[int]] = {}
        for i, op in enumerate((sub or self.sub).operators or []):
            for t in op.inputs if op.inputs is not None else []:
                uses.setdefault(int(t), []).append(i)
        return uses

    # --- writing ---------------------------------------------------------------------------------------

    def set_constant(self, index: int, value: np.ndarray, sub: Any = None, tensor_type: int | None = None) -> None:
        """Store ``value`` in tensor ``index`` (in a buffer of its own: buffers may be shared)."""
        schema = _schema()
        t = self.tensor(index, sub)
        if tensor_type is not None:
            t.type = tensor_type
        value = np.ascontiguousarray(value, dtype=DTYPES[t.type])
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(value.tobytes(), dtype=np.uint8)
        self.model.buffers.append(buffer)
        t.buffer = len(self.model.buffers) - 1
        t.shape = np.asarray(value.shape, dtype=np.int32)
        t.shapeSignature = None

    def add_tensor(self, name: str, shape: list[int], tensor_type: int = FLOAT32, value: np.ndarray | None = None,
                   sub: Any = None) -> int:
        schema = _schema()
        sub = sub or self.sub
        t = schema.TensorT()
        t.name, t.type, t.buffer = name, tensor_type, 0
        t.shape = np.asarray(shape, dtype=np.int32)
        sub.tensors.append(t)
        index = len(sub.tensors) - 1
        if value is not None:
            self.set_constant(index, value, sub)
        return index

    def opcode(self, builtin: str, version: int = 1) -> int:
        """The index of a builtin operator's code (raised to ``version``), added when the model has none."""
        schema = _schema()
        code = getattr(schema.BuiltinOperator, builtin)
        for i, c in enumerate(self.model.operatorCodes):
            if max(c.builtinCode, c.deprecatedBuiltinCode) == code and not c.customCode:
                c.version = max(c.version, version)
                return i
        c = schema.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), version
        self.model.operatorCodes.append(c)
        return len(self.model.operatorCodes) - 1

    def insert(self, position: int, op: Any) -> None:
        self.sub.operators.insert(position, op)

    def to_bytes(self) -> bytes:
        """The model as a flatbuffer, without the tensors, operator codes and buffers nothing refers to
        any more. They are dropped from this graph too: tensor indices read before may change (operator
        positions do not)."""
        from tensorflow.lite.tools import flatbuffer_utils

        _compact(self.model)
        if not self.model.subgraphs:
            raise ModelError("the model has no subgraph; the file is corrupt")
        self.sub = self.model.subgraphs[0]
        return bytes(flatbuffer_utils.convert_object_to_bytearray(self.model))


def _compact(model: Any) -> None:
    """Drop unreferenced tensors of every subgraph, operator codes and buffers (buffer 0 stays: empty)."""
    schema = _schema()
    for s, sub in enumerate(model.subgraphs):
        used: set[int] = set()
        for op in sub.operators or []:
            for group in (op.inputs, op.outputs, op.intermediates):
                used.update(int(t) for t in (group if group is not None else []) if t >= 0)
        used.update(int(t) for t in (sub.inputs if sub.inputs is not None else []))
        used.update(int(t) for t in (sub.outputs if sub.outputs is not None else []))
        for sig in model.signatureDefs or []:
            if sig.subgraphIndex == s:
                used.update(m.tensorIndex for m in [*(sig.inputs or []), *(sig.outputs or [])])
        kept = sorted(used)
        new = {old: i for i, old in enumerate(kept)}
        sub.tensors = [sub.tensors[i] for i in kept]

        def remap(group: Any, new: dict[int, int] = new) -> Any:
            return None if group is None else np.asarray([new[int(t)] if t >= 0 else -1 for t in group],
                                                         dtype=np.int32)
        for op in sub.operators or []:
            op.inputs, op.outputs, op.intermediates = remap(op.inputs), remap(op.outputs), remap(op.intermediates)
        sub.inputs, sub.outputs = remap(sub.inputs), remap(sub.outputs)
        for sig in model.signatureDefs or []:
            if sig.subgraphIndex == s:
                for m in [*(sig.inputs or []), *(sig.outputs or [])]:
                    m.tensorIndex = new[m.tensorIndex]
    codes = sorted({op.opcodeIndex for sub in model.subgraphs for op in sub.operators or []})
    new_code = {old: i for i, old in enumerate(codes)}
    model.operatorCodes = [model.operatorCodes[i] for i in codes]  # a code no op uses still needs a kernel
    for sub in model.subgraphs:
        for op in sub.operators or []:
            op.opcodeIndex = new_code[op.opcodeIndex]
    referenced = {0} | {t.buffer for sub in model.subgraphs for t in sub.tensors}
    referenced |= {m.buffer for m in model.metadata or []}
    order = [i for i in range(len(model.buffers)) if i in referenced]
    new_buffer = {old: i for i, old in enumerate(order)}
    model.buffers = [model.buffers[i] for i in order] or [schema.BufferT()]
    for sub in model.subgraphs:
        for t in sub.tensors:
            t.buffer = new_buffer[t.buffer]
    for m in model.metadata or []:
        m.buffer = new_buffer[m.buffer]


@dataclass
class Normalized:
    """What :func:`normalize` made of a model: the float32 flatbuffer, and what it changed."""

    content: bytes
    integer: bool = False                      # activations are quantized: the model stays as it is
    changes: list[str] = field(default_factory=list)
    custom_ops: list[str] = field(default_factory=list)


def normalize(content: bytes) -> Normalized:
    """The model with float32 weights and a signature, ready for the converter's quantizers.

    - A DEQUANTIZE of a stored fp16 or integer constant is folded: its output becomes the float32
      constant and the op goes (MediaPipe's fp16 files, weight-only int8).
    - A weight stored as int8 and fed straight into a float op (dynamic-range, "hybrid") is dequantized.
    - A model without signatures gets one, ``serving_default``, over subgraph 0's inputs and outputs.
    - Old-schema operator codes get their ``builtin_code`` (ai-edge-quantizer read such a CONV_2D as ADD).
    - Sparse-encoded weights are decoded to dense ones (:mod:`.sparse`).

    A model whose activations are quantized (a full-integer model, e.g. Coral's) is returned unchanged
    with ``integer`` set: its float values are gone, so it cannot be re-quantized.
    """
    graph = Graph(content)
    result = Normalized(content)
    result.custom_ops = graph.custom_ops()
    codes, dims = validate.new_schema_codes(graph.model), validate.check(graph.model)
    if codes:
        result.changes.append(f"{codes} operator code(s) of the old schema given their builtin_code")
    if dims:
        result.changes.append(f"{dims} per-tensor quantization(s) with a quantized_dimension past the rank set to 0")
    if decoded := sparse.densify(graph, DTYPES):
        result.changes.append(f"{decoded} sparse-encoded weight(s) decoded to dense (their DENSIFY ops folded)")
    if quantized_activations(graph):
        result.integer = True
        if codes or dims or decoded:
            result.content = graph.to_bytes()
        return result
    folded = hybrid = 0
    for sub in graph.model.subgraphs:
        uses = graph.consumers(sub)
        keep = []
        for op in sub.operators or []:
            name = graph.op_name(op)
            source = int(op.inputs[0]) if name == "DEQUANTIZE" and op.inputs is not None else -1
            out = int(op.outputs[0]) if op.outputs is not None and len(op.outputs) else -1
            value = graph.dequantized(source, sub) if source >= 0 else None
            if value is not None and out >= 0 and out not in set(_ints_ordered(sub.outputs)):
                graph.set_constant(out, value.reshape(graph.tensor(out, sub).shape), sub, FLOAT32)
                graph.tensor(out, sub).quantization = None
                folded += 1
                continue
            keep.append(op)
        sub.operators = keep
        for op in keep:
            if graph.op_name(op) not in HYBRID or op.inputs is None:
                continue
            for index in (int(t) for t in op.inputs[1:] if t >= 0):
                t = graph.tensor(index, sub)
                if t.type in INTEGER_TYPES and graph.constant(index, sub) is not None and len(uses.get(index, [])):
                    graph.set_constant(index, graph.dequantized(index, sub), sub, FLOAT32)  # type: ignore[arg-type]
                    t.quantization = None
                    hybrid += 1
    if folded:
        result.changes.append(f"{folded} DEQUANTIZE op(s) of stored weights folded into float32 constants")
    if hybrid:
        result.changes.append(f"{hybrid} int8 weight(s) of dynamic-range ops dequantized to float32")
    if not graph.model.signatureDefs:
        _add_signature(graph)
        result.changes.append(f"a {SIGNATURE!r} signature added (the model had none)")
    if result.changes:
        result.content = graph.to_bytes()
    return result


def quantized_activations(graph: Graph) -> bool:
    """Does any op of subgraph 0 compute on integer activations (a tensor that is not stored)?"""
    for _, op in graph.ops():
        if graph.op_name(op) in ("QUANTIZE", "DEQUANTIZE"):
            continue
        for index in (int(t) for t in [*(op.inputs if op.inputs is not None else []),
                                        *(op.outputs if op.outputs is not None else [])] if t >= 0):
            t = graph.tensor(index)
            if t.type in INTEGER_TYPES and graph.constant(index) is None and t.quantization is not None \
                    and t.quantization.scale is not None and len(t.quantization.scale):
                return True
    return False


def io_name(name: Any) -> str:
    """A tensor's name as a signature would call it: ``serving_default_image:0`` -> ``image``."""
    text = name.decode() if isinstance(name, bytes) else str(name or "")
    text = re.sub(r":\d+$", "", text)
    return re.sub(rf"^{SIGNATURE}_", "", text) or "input"


def _add_signature(graph: Graph) -> None:
    schema = _schema()

    def maps(indices: Any, prefix: str) -> list[Any]:
        out, seen = [], set()
        for n, index in enumerate(_ints_ordered(indices)):
            name = io_name(graph.tensor(index).name)
            name = name if name not in seen else f"{prefix}_{n}"
            seen.add(name)
            m = schema.TensorMapT()
            m.name, m.tensorIndex = name, index
            out.append(m)
        return out
    sig = schema.SignatureDefT()
    sig.signatureKey, sig.subgraphIndex = SIGNATURE, 0
    sig.inputs, sig.outputs = maps(graph.sub.inputs, "input"), maps(graph.sub.outputs, "output")
    graph.model.signatureDefs = [sig]


def _ints_ordered(group: Any) -> list[int]:
    return [int(t) for t in (group if group is not None else [])]


def cast_fp16(content: bytes) -> bytes:
    """Float32 weights stored as fp16, each behind a DEQUANTIZE op, as the converter's fp16 mode and
    MediaPipe's files store them (the GPU delegate reads the fp16 values directly)."""
    graph = Graph(content)
    dequantize = graph.opcode("DEQUANTIZE", 3)  # version 3 reads fp16
    schema = _schema()
    uses = graph.consumers()
    added = []
    for index, t in enumerate(list(graph.sub.tensors)):
        value = graph.constant(index)
        if value is None or t.type != FLOAT32 or not uses.get(index) or value.size < 2:
            continue
        half = graph.add_tensor(f"{io_name(t.name)}_fp16", list(value.shape), FLOAT16, value.astype(np.float16))
        t.buffer = 0  # the float32 tensor is now what DEQUANTIZE produces
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = dequantize, np.asarray([half], np.int32), np.asarray([index], np.int32)
        added.append(op)
    if not added:
        raise ModelError("fp16: the model has no float32 weights to store as fp16")
    graph.sub.operators = [*added, *graph.sub.operators]
    return graph.to_bytes()


def int8_interface(content: bytes) -> bytes:
    """An integer model's inputs and outputs as int8: a float input that only feeds a QUANTIZE to int8
    becomes that op's output, and a float output made by a DEQUANTIZE of int8 becomes its input.

    Raises:
        ModelError: an input or output that is neither int8 nor such a float one (uint8, int16, ...).
    """
    graph = Graph(content)
    ops = graph.sub.operators
    uses = graph.consumers()
    made = {int(t): i for i, op in enumerate(ops) for t in (op.outputs if op.outputs is not None else [])}
    drop: set[int] = set()
    moved: dict[int, int] = {}
    for kind, group, wrapper in (("input", graph.sub.inputs, "QUANTIZE"), ("output", graph.sub.outputs, "DEQUANTIZE")):
        for index in _ints_ordered(group):
            t = graph.tensor(index)
            if t.type == INT8:
                continue
            near = uses.get(index, []) if kind == "input" else [made[index]] if index in made else []
            op = ops[near[0]] if len(near) == 1 else None
            other = None if op is None else int(op.outputs[0] if kind == "input" else op.inputs[0])
            if op is None or other is None or graph.op_name(op) != wrapper or t.type != FLOAT32 \
                    or graph.tensor(other).type != INT8:
                dtype = np.dtype(DTYPES.get(t.type, np.uint8)).name
                raise ModelError(f"int8=io: {kind} {io_name(t.name)!r} is {dtype}, "
                                 f"not a float {kind} behind a {wrapper} of int8, so it cannot become int8 without "
                                 "re-quantizing the model")
            drop.add(near[0])
            moved[index] = other
    if not moved:
        return content
    graph.sub.operators = [op for i, op in enumerate(ops) if i not in drop]
    graph.sub.inputs = np.asarray([moved.get(t, t) for t in _ints_ordered(graph.sub.inputs)], np.int32)
    graph.sub.outputs = np.asarray([moved.get(t, t) for t in _ints_ordered(graph.sub.outputs)], np.int32)
    for sig in graph.model.signatureDefs or []:
        for m in [*(sig.inputs or []), *(sig.outputs or [])]:
            m.tensorIndex = moved.get(m.tensorIndex, m.tensorIndex)
    return graph.to_bytes()
