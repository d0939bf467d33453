"""Sparse-encoded weights (TFLite's ``SparsityParameters``: the converter's EXPERIMENTAL_SPARSITY, MediaPipe's
``*_sparse`` models) decoded into dense constants, so the quantizers and the weight-space steps see plain
weights. A DENSIFY of such a constant is folded: its output becomes the dense constant.

The format (``tensorflow/lite/schema/schema.fbs``): the stored values are the tensor traversed in
``traversal_order`` (the original dimensions, then the block dimensions of ``block_map``); each traversed
level is DENSE (all ``dense_size`` positions stored) or SPARSE_CSR (``array_segments`` and ``array_indices``
name the stored positions under each parent position)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ModelError

DENSE, SPARSE_CSR = 0, 1
MAX_DENSE = 1 << 28   # elements of one decoded weight; a larger claim is a corrupt file


def _vector(union: Any) -> np.ndarray:
    values = getattr(union, "values", None)
    return np.zeros(0, np.int64) if values is None else np.asarray(values, dtype=np.int64)


def decode(values: np.ndarray, shape: list[int], sparsity: Any, name: str = "") -> np.ndarray:
    """The dense tensor of ``shape`` whose stored ``values`` (in traversal order) ``sparsity`` describes.

    Raises:
        ModelError: the sparsity parameters do not describe ``values`` (a corrupt file), naming the tensor.
    """
    def bad(why: str) -> ModelError:
        return ModelError(f"weight {name!r}: its sparse encoding is corrupt ({why})")

    rank = len(shape)
    order = [int(d) for d in (sparsity.traversalOrder if sparsity.traversalOrder is not None else range(rank))]
    block_map = [int(d) for d in (sparsity.blockMap if sparsity.blockMap is not None else [])]
    levels = list(sparsity.dimMetadata or [])
    if sorted(order) != list(range(rank + len(block_map))) or len(levels) != len(order) or sorted(order[:rank]) \
            != list(range(rank)) or any(not 0 <= d < rank for d in block_map):
        raise bad("its traversal order, block map and dimension metadata disagree")
    if any(s <= 0 for s in shape) or int(np.prod(shape, dtype=np.int64)) > MAX_DENSE:
        raise bad(f"shape {shape}")
    block_size = {}
    for level, dim in enumerate(order[rank:], start=rank):
        block_size[dim - rank] = int(levels[level].denseSize)
    parents = np.zeros(1, np.int64)             # the position of each partial path at the level above
    indices: list[np.ndarray] = []             # each path's index at every level so far
    for level, meta in enumerate(levels):
        if meta.format == DENSE:
            size = int(meta.denseSize)
            if size <= 0 or len(parents) * size > MAX_DENSE:
                raise bad(f"dense size {size} at level {level}")
            indices = [np.repeat(i, size) for i in indices] + [np.tile(np.arange(size), len(parents))]
            parents = (np.repeat(parents, size) * size + indices[-1])
        elif meta.format == SPARSE_CSR:
            segments, stored = _vector(meta.arraySegments), _vector(meta.arrayIndices)
            if len(segments) < int(parents.max(initial=0)) + 2 or np.any(np.diff(segments) < 0) or \
                    (len(segments) and (segments[0] < 0 or segments[-1] > len(stored))):
                raise bad(f"array segments at level {level}")
            counts = segments[parents + 1] - segments[parents]
            starts = np.repeat(segments[parents] - np.cumsum(counts) + counts, counts)
            positions = starts + np.arange(int(counts.sum()))
            indices = [np.repeat(i, counts) for i in indices] + [stored[positions]]
            parents = positions
        else:
            raise bad(f"unknown dimension format {meta.format}")
    if not indices or len(indices[0]) != values.size:
        raise bad(f"{values.size} stored values for {0 if not indices else len(indices[0])} positions")
    original = [np.zeros(values.size, np.int64) for _ in range(rank)]
    for level, dim in enumerate(order[:rank]):
        original[dim] = indices[level]
    for level, dim in enumerate(order[rank:], start=rank):
        block = dim - rank
        original[block_map[block]] = original[block_map[block]] * block_size[block] + indices[level]
    for dim, index in enumerate(original):
        if index.size and (index.min() < 0 or index.max() >= shape[dim]):
            raise bad(f"an index past dimension {dim} of size {shape[dim]}")
    dense = np.zeros(shape, dtype=values.dtype)
    dense[tuple(original)] = values.reshape(-1)
    return dense


def densify(graph: Any, dtypes: dict[int, Any]) -> int:
    """Decode every sparse constant of every subgraph in place and fold the DENSIFY ops that read one;
    the number of weights decoded. ``graph`` is a :class:`edgesdk.tflite.graph.Graph`, ``dtypes`` its
    numpy type per TFLite type (passed in: graph imports this module).

    Raises:
        ModelError: a corrupt sparse encoding.
    """
    decoded = 0
    for sub in graph.model.subgraphs:
        dense: dict[int, int] = {}
        for index, t in enumerate(sub.tensors or []):
            if t.sparsity is None:
                continue
            value = graph.constant(index, sub)
            if value is None:   # no stored values: an all-zero weight (or a type numpy has no view of)
                if t.type not in dtypes:
                    raise ModelError(f"weight {t.name!r} is sparse-encoded in type {t.type}, which edgesdk cannot "
                                     "decode")
                value = np.zeros(0, dtypes[t.type])
            graph.set_constant(index, decode(value.reshape(-1), [int(s) for s in t.shape], t.sparsity,
                                             str(t.name)), sub)
            t.sparsity = None
            dense[index] = index
            decoded += 1
        if not dense:
            continue
        keep = []
        for op in sub.operators or []:
            source = int(op.inputs[0]) if op.inputs is not None and len(op.inputs) else -1
            if graph.op_name(op) == "DENSIFY" and source in dense and op.outputs is not None:
                out = int(op.outputs[0])
                value = graph.constant(source, sub)
                if value is not None and value.size == int(np.prod(graph.tensor(out, sub).shape)):
                    graph.set_constant(out, value.reshape(graph.tensor(out, sub).shape), sub,
                                       graph.tensor(source, sub).type)
                    continue
            keep.append(op)
        sub.operators = keep
    return decoded
