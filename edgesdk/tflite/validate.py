"""The structure of a .tflite checked before any interpreter or converter sees it: LiteRT and the
converter trust indices in the file, and a mutated file (a negative buffer index, an empty buffer table,
an operator reading a tensor that does not exist, a control-flow op whose branch is its own subgraph)
crashes them. Every problem is a ModelError naming the subgraph, operator or tensor."""

from __future__ import annotations

from typing import Any

from ..errors import ModelError

MAX_NAME = 1 << 16   # a tensor name longer than this is refused (legitimate fused names are a few hundred)


# What reading a structurally wrong file raises past the checks here (a wrong type, size or name encoding).
CORRUPT = (IndexError, KeyError, ValueError, TypeError, AttributeError, OverflowError)


def _index(value: int, size: int, what: str) -> None:
    if not 0 <= value < size:
        raise ModelError(f"{what} is {value}, outside 0..{size - 1}; the file is corrupt")


def _subgraph_refs(op: Any) -> list[int]:
    """The subgraph indices a control-flow op names in its options (IF, WHILE, CALL_ONCE, composites)."""
    options = getattr(op, "builtinOptions", None)
    if options is None:
        return []
    return [int(getattr(options, name)) for name in vars(options) if name.lower().endswith("subgraphindex")]


def _tensors(sub: Any, s: int, buffers: int) -> None:
    for t, tensor in enumerate(sub.tensors or []):
        _index(int(tensor.buffer), buffers, f"subgraph {s} tensor {t}'s buffer index")
        if tensor.name is not None and len(tensor.name) > MAX_NAME:
            raise ModelError(f"subgraph {s} tensor {t}'s name is {len(tensor.name):,} bytes long (over "
                             f"{MAX_NAME:,}); the file is corrupt or hostile")
        if tensor.shape is not None and any(int(d) < -1 for d in tensor.shape):
            raise ModelError(f"subgraph {s} tensor {t} has a negative dimension; the file is corrupt")


def _operators(model: Any, sub: Any, s: int) -> dict[int, int]:
    """Check the operators of one subgraph; the subgraphs each op calls, as {callee: op index}."""
    count, producer, calls = len(sub.tensors or []), {}, {}
    for o, op in enumerate(sub.operators or []):
        _index(int(op.opcodeIndex), len(model.operatorCodes or []), f"subgraph {s} operator {o}'s opcode index")
        for t in op.outputs if op.outputs is not None else []:
            _index(int(t), count, f"subgraph {s} operator {o}'s output")
            if int(t) in producer:
                raise ModelError(f"subgraph {s} tensor {int(t)} is written by two operators; the file is corrupt")
            producer[int(t)] = o
        for callee in _subgraph_refs(op):
            _index(callee, len(model.subgraphs), f"subgraph {s} operator {o}'s branch subgraph")
            calls[callee] = o
    for o, op in enumerate(sub.operators or []):
        for t in op.inputs if op.inputs is not None else []:
            if int(t) == -1:  # an optional input left out
                continue
            _index(int(t), count, f"subgraph {s} operator {o}'s input")
            if producer.get(int(t), -1) >= o:
                raise ModelError(f"subgraph {s} operator {o} reads tensor {int(t)}, which it or a later operator "
                                 "writes (a cycle); the file is corrupt")
    return calls


def _no_recursion(graph: dict[int, dict[int, int]]) -> None:
    state: dict[int, int] = {}   # 1: on the path, 2: done

    def visit(s: int) -> None:
        state[s] = 1
        for callee in graph.get(s, {}):
            if state.get(callee) == 1:
                raise ModelError(f"subgraph {s} calls subgraph {callee}, which leads back to it (control flow "
                                 "that never ends); the file is corrupt")
            if callee not in state:
                visit(callee)
        state[s] = 2

    for s in graph:
        if s not in state:
            visit(s)


def check(model: Any) -> int:
    """Check a parsed ``ModelT``; per-tensor quantization whose ``quantized_dimension`` is outside the
    tensor's rank (LiteRT refuses what TFLite Micro runs) is set to 0. Returns how many were set.

    Raises:
        ModelError: the structure is invalid.
    """
    if not model.subgraphs:
        raise ModelError("the model has no subgraph; the file is corrupt")
    if not model.buffers:
        raise ModelError("the model's buffer table is empty (buffer 0 must exist); the file is corrupt")
    calls, fixed = {}, 0
    for s, sub in enumerate(model.subgraphs):
        count = len(sub.tensors or [])
        _tensors(sub, s, len(model.buffers))
        for which in ("inputs", "outputs"):
            for t in getattr(sub, which) if getattr(sub, which) is not None else []:
                _index(int(t), count, f"subgraph {s}'s {which[:-1]}")
        calls[s] = _operators(model, sub, s)
        fixed += _quantized_dimensions(sub)
    _no_recursion(calls)
    return fixed


def _quantized_dimensions(sub: Any) -> int:
    fixed = 0
    for tensor in sub.tensors or []:
        q = tensor.quantization
        rank = len(tensor.shape) if tensor.shape is not None else 0
        if q is None or q.scale is None or not (q.quantizedDimension or 0) or q.quantizedDimension < rank:
            continue
        if len(q.scale) > 1:
            raise ModelError(f"tensor {tensor.name!r}: {len(q.scale)} per-channel scales on dimension "
                             f"{q.quantizedDimension} of a rank-{rank} tensor; the file is corrupt")
        q.quantizedDimension = 0
        fixed += 1
    return fixed


def new_schema_codes(model: Any) -> int:
    """Set ``builtin_code`` where only ``deprecated_builtin_code`` holds the operator (an old converter's
    file: LiteRT reads the larger of the two, ai-edge-quantizer only the new one); how many were set."""
    fixed = 0
    for code in model.operatorCodes or []:
        real = max(code.builtinCode, code.deprecatedBuiltinCode)
        if code.customCode is None and code.builtinCode != real:
            code.builtinCode = real
            fixed += 1
    return fixed
