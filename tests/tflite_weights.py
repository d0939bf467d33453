"""Test helper: read the kernels of CONV_2D / FULLY_CONNECTED ops straight from a .tflite flatbuffer."""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as fb

_NP = {fb.TensorType.FLOAT32: np.float32, fb.TensorType.INT8: np.int8, fb.TensorType.FLOAT16: np.float16,
       fb.TensorType.UINT8: np.uint8}
_OPS = {fb.BuiltinOperator.CONV_2D: "CONV_2D", fb.BuiltinOperator.FULLY_CONNECTED: "FULLY_CONNECTED"}


def kernels(content: bytes) -> list[tuple[str, np.ndarray]]:
    model = fb.ModelT.InitFromPackedBuf(content, 0)
    graph = model.subgraphs[0]
    found = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        name = _OPS.get(max(code.builtinCode, code.deprecatedBuiltinCode))
        if name is None:
            continue
        tensor = graph.tensors[op.inputs[1]]
        data = model.buffers[tensor.buffer].data
        if data is None or tensor.type not in _NP:
            continue  # a float16 kernel behind a DEQUANTIZE, for example
        found.append((name, np.frombuffer(bytes(bytearray(data)), dtype=_NP[tensor.type]).reshape(tensor.shape)))
    return found
