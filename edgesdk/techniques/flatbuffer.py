"""What the weight-space techniques share on a .tflite flatbuffer, for models without a training graph.

Magnitude pruning, clustering, Wanda, SparseGPT and low-rank factorization each have a flatbuffer apply
in their own module, with no fine-tuning (the pruning masks here serve their Keras applies too). They
edit the weights of FULLY_CONNECTED (``(out, in)``), CONV_2D (``(out, kh, kw, in)``) and
DEPTHWISE_CONV_2D (``(1, kh, kw, channels x multiplier)``); the batch norms of the source are already
folded into them. Other ops, custom ones included, stay as they are. An op's input on the calibration
samples is read by running LiteRT's interpreter with every intermediate tensor kept. An integer model's
int8 weights are edited in their own integer values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._native import quiet
from ..errors import RecipeError
from ..tflite import ptq
from ..tflite.graph import DTYPES, FLOAT32, INT8, UINT8, WEIGHTED, Graph

log = logging.getLogger(__name__)
ACTIVATION_SAMPLES = 128  # calibration samples whose activations a one-shot method reads per layer


@dataclass(frozen=True)
class Layer:
    """An op with a stored weight matrix: where it is, its kind and its weight tensor."""

    position: int
    kind: str
    weight: int
    options: Any

    @property
    def spatial(self) -> tuple[tuple[int, int], tuple[int, int], str]:
        o = self.options
        return ((o.strideH, o.strideW), (o.dilationHFactor, o.dilationWFactor), "SAME" if o.padding == 0 else "VALID")


def lowest(score: np.ndarray, fraction: float) -> np.ndarray:
    """Mask of the ``fraction`` lowest scores of the whole array."""
    count = int(round(fraction * score.size))
    out = np.zeros(score.size, dtype=bool)
    if count:
        out[np.argpartition(score.ravel(), count - 1)[:count]] = True
    return out.reshape(score.shape)


def nm_keep(score: np.ndarray, n: int, m: int) -> np.ndarray:
    """Keep-mask of the N highest scores in each run of M along the last axis (N:M sparsity)."""
    blocks = score.reshape(*score.shape[:-1], -1, m)
    keep = np.ones_like(blocks, dtype=bool)
    np.put_along_axis(keep, np.argsort(blocks, axis=-1)[..., : m - n], False, axis=-1)
    return keep.reshape(score.shape)


def layers(graph: Graph) -> list[Layer]:
    found = []
    for position, op in graph.ops(*WEIGHTED):
        weight = int(op.inputs[1])
        if graph.constant(weight) is not None and graph.tensor(weight).type in (FLOAT32, INT8, UINT8):
            found.append(Layer(position, graph.op_name(op), weight, op.builtinOptions))
    if not found:
        raise RecipeError("the model has no fully connected or convolution op with stored float, int8 or uint8 weights")
    return found


def values(graph: Graph, layer: Layer) -> tuple[np.ndarray, bool]:
    """The weight as floats (int8 and uint8 ones through their scales and zero points), and whether it is
    stored as integers."""
    integer = graph.tensor(layer.weight).type in (INT8, UINT8)
    values = graph.dequantized(layer.weight) if integer else graph.constant(layer.weight)
    assert values is not None
    return values.astype(np.float32), integer


def store(graph: Graph, layer: Layer, values: np.ndarray, integer: bool) -> None:
    """Write the weight back; an integer one (int8, or the uint8 of TF1-style models) is re-quantized on its
    own grid (its scales and zero points do not change)."""
    if not integer:
        graph.set_constant(layer.weight, values.astype(np.float32))
        return
    q = graph.tensor(layer.weight).quantization
    scale = np.asarray(q.scale, np.float32)
    zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0] * len(scale), np.float32)
    view = [1] * values.ndim
    if len(scale) > 1:
        view[int(q.quantizedDimension or 0)] = len(scale)
    dtype = DTYPES[graph.tensor(layer.weight).type]
    ints = np.clip(np.round(values / scale.reshape(view) + zero.reshape(view)), np.iinfo(dtype).min,
                   np.iinfo(dtype).max)
    ints = np.where(values == 0, zero.reshape(view), ints)  # a pruned weight is exactly the zero point
    graph.set_constant(layer.weight, ints.astype(dtype))


def activations(content: bytes, calibration: Any, tensor: int) -> np.ndarray:
    """What tensor ``tensor`` holds for each calibration sample (every intermediate tensor kept)."""
    from ai_edge_litert.interpreter import Interpreter

    with quiet():
        interp = Interpreter(model_content=content, experimental_preserve_all_tensors=True)
        interp.allocate_tensors()
    details = interp.get_input_details()
    arrays = ptq.per_input(calibration)
    out = []
    for i in range(min(ACTIVATION_SAMPLES, len(arrays[0]))):
        for d, a in zip(details, arrays, strict=True):
            interp.set_tensor(d["index"], a[i][None, ...].astype(d["dtype"]).reshape(d["shape"]))
        interp.invoke()
        out.append(interp.get_tensor(tensor)[0])
    return np.stack(out).astype(np.float64)
