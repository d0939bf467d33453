"""Low-rank factorization: each Dense and Conv2D becomes a chain of smaller layers with fewer parameters.

- Dense (in x out) by truncated SVD: W ~ A B with A (in x r) and B (r x out), two Dense layers.
- Conv2D (kh x kw x cin x cout) by Tucker-2 (HOSVD on the channel modes): a 1x1 convolution cin -> r1,
  the kh x kw core r1 -> r2 (with the original strides, padding and dilation), and a 1x1 convolution
  r2 -> cout; a 1x1 convolution is a matrix and gets the SVD as two 1x1 convolutions.

``lowrank=R`` keeps at most the fraction R of each layer's kernel parameters: the ranks are the largest
that fit (r1, r2 in proportion to cin and cout). ``lowrank=energy:E`` sets each rank by retained energy
instead: the fewest singular values whose squares sum to the fraction E of the total (of the kernel for
Dense and 1x1, of each channel mode's unfolding for Tucker-2), so a layer that is nearly low-rank is cut
further than one that is not; a layer whose ranks would save nothing stays. A layer for which no
factorization is smaller, or only one through fewer than MIN_RANK channels (a 3-channel stem), stays as
it is, and so do the layers that produce the model's outputs (a classifier head at a rank below its
class count cannot separate them). The last layer of each chain keeps the original name, bias and
activation, so the model's outputs and names stay. Optional fine-tuning follows.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Any

import numpy as np

from ..errors import RecipeError, first_line
from ..kinds import StepKind
from ..tflite.graph import FLOAT32, Graph
from . import flatbuffer
from .base import FLATBUFFER_FORMS, WEIGHT_SPACE, Context, Step, Technique, fraction, register
from .training import FineTune, batch_norm_gains, fine_tune

log = logging.getLogger(__name__)
MIN_RANK = 4  # below this a layer is squeezed through too few channels (a 3-channel stem, a bottleneck)


def parse(value: str | None) -> tuple[str, float]:
    """``0.5`` (keep half of each layer's parameters) or ``energy:0.9`` (ranks retaining 90 % of the
    energy): the rule and its fraction."""
    rule, _, raw = (value or "").rpartition(":")
    if rule not in ("", "energy"):
        raise RecipeError(f"lowrank expects a fraction of parameters (lowrank=0.5) or of energy "
                          f"(lowrank=energy:0.9). Received: lowrank={value}")
    what = "the fraction of energy each rank retains" if rule else "the fraction of each layer's parameters to keep"
    return rule or "params", fraction("lowrank", raw if value is not None else None, what, received=value)


def energy_rank(singular_values: np.ndarray, energy: float) -> int:
    """The fewest leading singular values whose squares hold ``energy`` of the total (at least MIN_RANK)."""
    power = np.asarray(singular_values, dtype=np.float64) ** 2
    total = power.sum()
    if total <= 0:
        return MIN_RANK
    r = int(np.searchsorted(np.cumsum(power) / total, energy - 1e-12) + 1)
    return max(MIN_RANK, r)


def svd_rank(n_in: int, n_out: int, ratio: float) -> int:
    """The largest rank r with r * (n_in + n_out) <= ratio * n_in * n_out (0: no gain)."""
    r = int(math.floor(ratio * n_in * n_out / (n_in + n_out)))
    return r if MIN_RANK <= r < min(n_in, n_out) else 0


def tucker_ranks(kh: int, kw: int, cin: int, cout: int, ratio: float) -> tuple[int, int]:
    """(r1, r2) = (a cin, a cout) with the largest a such that cin r1 + kh kw r1 r2 + r2 cout fits in
    ratio * kh kw cin cout; (0, 0) when no such ranks below cin and cout exist."""
    k = kh * kw
    # k a^2 cin cout + a (cin^2 + cout^2) - ratio k cin cout = 0
    qa, qb, qc = k * cin * cout, cin * cin + cout * cout, -ratio * k * cin * cout
    a = (-qb + math.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)
    r1, r2 = int(math.floor(a * cin)), int(math.floor(a * cout))
    if min(r1, r2) < MIN_RANK or r1 >= cin or r2 >= cout:
        return 0, 0
    return r1, r2


def apply(model: Any, target: float | tuple[str, float], tune: FineTune | None) -> Any:
    """Factorize every Dense and Conv2D of ``model``: ``target`` is a fraction of parameters to keep (or
    ``("params", R)``), or ``("energy", E)`` for ranks that retain that fraction of the energy.

    Raises:
        RecipeError: no layer can be factorized, or the model cannot be rebuilt.
    """
    import tf_keras

    rule, ratio = target if isinstance(target, tuple) else ("params", float(target))
    if isinstance(model, tf_keras.Sequential):
        model = tf_keras.Model(model.inputs, model.outputs)
    config = copy.deepcopy(model.get_config())
    heads = _heads(config)
    gains = batch_norm_gains(model)
    layers_out: list[dict[str, Any]] = []
    weights: dict[str, list[np.ndarray]] = {}
    factored = []
    for entry in config["layers"]:
        layer = model.get_layer(entry["name"])
        single = len(entry.get("inbound_nodes") or []) == 1
        parts = (_factor(layer, entry, (rule, ratio), gains.get(entry["name"]))
                 if single and entry["name"] not in heads else None)
        if parts is None:
            layers_out.append(entry)
            weights[entry["name"]] = layer.get_weights()
            continue
        factored.append(entry["name"])
        inbound = entry["inbound_nodes"]
        for part_entry, part_weights in parts:
            part_entry["inbound_nodes"] = inbound
            inbound = [[[part_entry["name"], 0, 0, {}]]]
            layers_out.append(part_entry)
            weights[part_entry["name"]] = part_weights
    if not factored:
        keeping = f"{ratio:.0%} of its parameters" if rule == "params" else f"{ratio:.0%} of its energy"
        shown = f"{ratio:g}" if rule == "params" else f"energy:{ratio:g}"
        raise RecipeError(f"lowrank={shown} found no Dense or Conv2D layer that a factorization keeping "
                          f"{keeping} makes smaller")
    config["layers"] = layers_out
    try:
        smaller = tf_keras.Model.from_config(config)
        for layer in smaller.layers:
            if weights.get(layer.name):
                layer.set_weights(weights[layer.name])
    except Exception as exc:  # noqa: BLE001 - odd configs raise anything
        raise RecipeError(f"lowrank: cannot rebuild the factorized model ({type(exc).__name__}: "
                          f"{first_line(exc)})") from exc
    log.info("lowrank: %d layers factorized; %d of %d parameters", len(factored), smaller.count_params(),
             model.count_params())
    if tune is not None and tune.epochs > 0:
        fine_tune(smaller, tune)
    return smaller


PASS_THROUGH = ("Activation", "Softmax", "ReLU", "Dropout", "Flatten", "Reshape", "Identity")


def _heads(config: dict[str, Any]) -> set[str]:
    """Layers that produce a model output (directly or through activations, dropout, reshapes): the
    classifier heads, which a low rank would squeeze below the number of classes; they stay."""
    entries = {e["name"]: e for e in config["layers"]}
    out: set[str] = set()
    todo = [ref[0] for ref in config["output_layers"]]
    while todo:
        name = todo.pop()
        out.add(name)
        entry = entries[name]
        nodes = entry.get("inbound_nodes") or []
        if entry["class_name"] in PASS_THROUGH and len(nodes) == 1:
            todo += [ref[0] for ref in nodes[0]]
    return out


def _part(entry: dict[str, Any], name: str, **changes: Any) -> dict[str, Any]:
    config = {**copy.deepcopy(entry["config"]), "name": name, **changes}
    return {"class_name": entry["class_name"], "config": config, "name": name}


def _matrix_rank(w: np.ndarray, rule: str, ratio: float) -> int:
    """The rank for the matrix ``w`` (in x out) under the rule; 0 when it would save nothing."""
    n_in, n_out = w.shape
    if rule == "params":
        return svd_rank(n_in, n_out, ratio)
    r = energy_rank(np.linalg.svd(w.astype(np.float64), compute_uv=False), ratio)
    return r if r * (n_in + n_out) < n_in * n_out and r < min(n_in, n_out) else 0


def _factor(layer: Any, entry: dict[str, Any], target: tuple[str, float],
            gain: np.ndarray | None = None) -> list[tuple[dict[str, Any], list[np.ndarray]]] | None:
    """The chain replacing ``layer``, or None. ``gain``: the per-output scale of a batch norm that follows;
    the factorization is of the kernel times that gain (the error that matters is after the batch norm,
    which would magnify the weak filters a plain SVD truncates first), and the gain is divided out of the
    last factor again."""
    kind = type(layer).__name__
    if kind not in ("Dense", "Conv2D"):
        return None
    kernel, *bias = layer.get_weights()
    rule, ratio = target
    g = np.ones(kernel.shape[-1]) if gain is None else np.maximum(gain, 1e-12)
    name = entry["name"]
    linear = {"activation": "linear", "use_bias": False, "kernel_regularizer": None, "bias_regularizer": None,
              "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
    if kind == "Dense":
        r = _matrix_rank(kernel * g, rule, ratio)
        if not r:
            return None
        a, b = _svd(kernel * g, r)
        return [(_part(entry, f"{name}_lowrank", units=r, **linear), [a]), (entry, [(b / g).astype(b.dtype), *bias])]
    if getattr(layer, "groups", 1) != 1 or layer.data_format != "channels_last":
        return None
    kh, kw, cin, cout = kernel.shape
    if (kh, kw) == (1, 1):
        r = _matrix_rank(kernel.reshape(cin, cout) * g, rule, ratio)
        if not r:
            return None
        a, b = _svd(kernel.reshape(cin, cout) * g, r)
        b = (b / g).astype(b.dtype)
        first = _part(entry, f"{name}_lowrank", filters=r, **linear)  # keeps strides: 1x1, so either may
        last = _part(entry, name, strides=(1, 1), padding="valid", dilation_rate=(1, 1))
        return [(first, [a.reshape(1, 1, cin, r)]), (last, [b.reshape(1, 1, r, cout), *bias])]
    weighted = kernel * g
    modes = np.moveaxis(weighted, 2, 0).reshape(cin, -1), np.moveaxis(weighted, 3, 0).reshape(cout, -1)
    if rule == "params":
        r1, r2 = tucker_ranks(kh, kw, cin, cout, ratio)
    else:
        r1, r2 = (energy_rank(np.linalg.svd(m.astype(np.float64), compute_uv=False), ratio) for m in modes)
        if r1 >= cin or r2 >= cout or cin * r1 + kh * kw * r1 * r2 + r2 * cout >= kh * kw * cin * cout:
            r1 = r2 = 0
    if not r1:
        return None
    u_in = _leading(modes[0], r1)       # (cin, r1)
    u_out = _leading(modes[1], r2)      # (cout, r2)
    core = np.einsum("hwio,ia,ob->hwab", weighted, u_in, u_out).astype(kernel.dtype)
    one = {"kernel_size": (1, 1), "strides": (1, 1), "padding": "valid", "dilation_rate": (1, 1)}
    return [
        (_part(entry, f"{name}_lowrank_in", filters=r1, **linear, **one), [u_in.reshape(1, 1, cin, r1)]),
        (_part(entry, f"{name}_lowrank_core", filters=r2, **linear), [core]),
        (_part(entry, name, **one), [(u_out.T / g).reshape(1, 1, r2, cout).astype(kernel.dtype), *bias]),
    ]


def _svd(w: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:r])
    return (u[:, :r] * root).astype(w.dtype), (root[:, None] * vt[:r]).astype(w.dtype)


def _leading(m: np.ndarray, r: int) -> np.ndarray:
    u, _, _ = np.linalg.svd(m.astype(np.float64), full_matrices=False)
    return u[:, :r].astype(np.float32)


def lowrank_flatbuffer(content: bytes, target: tuple[str, float]) -> bytes:
    """Each fully connected op whose truncated SVD is smaller becomes two: ``x -> (r x in) -> (out x r)``;
    the second keeps the bias, the activation and the output tensor. Ops that produce a model output
    stay (a classifier head below its class count cannot separate the classes)."""
    from tensorflow.lite.python import schema_py_generated as schema

    rule, ratio = target
    graph = Graph(content)
    outputs = {int(t) for t in graph.sub.outputs}
    fc = graph.opcode("FULLY_CONNECTED")
    done = 0
    for layer in reversed(flatbuffer.layers(graph)):  # from the end: inserting an op shifts the later positions
        op = graph.sub.operators[layer.position]
        if layer.kind != "FULLY_CONNECTED" or int(op.outputs[0]) in outputs or \
                graph.tensor(layer.weight).type != FLOAT32:
            continue
        w = graph.constant(layer.weight)
        assert w is not None
        n_in = w.shape[1]
        r = _matrix_rank(w.T, rule, ratio)  # the rank rules of a Dense kernel (in x out)
        if not r:
            continue
        a, b = _svd(w.T, r)                 # W^T ~ a b: x -> a^T (r x in) -> b^T (out x r)
        first, second = a.T, b.T
        out_shape = list(graph.tensor(int(op.outputs[0])).shape)
        middle = graph.add_tensor(f"lowrank_{layer.position}", [*out_shape[:-1], r])
        w1 = graph.add_tensor(f"lowrank_{layer.position}_a", [r, n_in], value=first)
        graph.set_constant(layer.weight, second)
        options = schema.FullyConnectedOptionsT()
        options.fusedActivationFunction = 0
        options.keepNumDims = layer.options.keepNumDims
        new = schema.OperatorT()
        new.opcodeIndex, new.builtinOptionsType, new.builtinOptions = fc, op.builtinOptionsType, options
        new.inputs = np.asarray([int(op.inputs[0]), w1, -1], np.int32)
        new.outputs = np.asarray([middle], np.int32)
        op.inputs = np.asarray([middle, *[int(t) for t in op.inputs[1:]]], np.int32)
        graph.insert(layer.position, new)
        done += 1
    if not done:
        shown = f"{ratio:g}" if rule == "params" else f"energy:{ratio:g}"
        raise RecipeError(f"lowrank={shown} found no fully connected op (other than an output's) that a "
                          "factorization makes smaller; on a .tflite, lowrank factorizes fully connected ops only")
    log.info("lowrank: %d fully connected ops factorized", done)
    return graph.to_bytes()
def _no_layer(handle: Any, float_tflite: bytes) -> str | None:
    """On a .tflite, lowrank factors float fully connected ops that do not produce a model output."""
    if handle.form not in FLATBUFFER_FORMS:
        return None
    graph = Graph(float_tflite)
    outputs = {int(t) for t in graph.sub.outputs}
    for layer in flatbuffer.layers(graph):
        op = graph.sub.operators[layer.position]
        if layer.kind == "FULLY_CONNECTED" and int(op.outputs[0]) not in outputs and \
                graph.tensor(layer.weight).type == FLOAT32:
            return None
    return "the model has no fully connected layer lowrank can factor (it keeps the output layer)"


def _flat(content: bytes, step: Step, ctx: Context) -> bytes:
    return lowrank_flatbuffer(content, step.value)


register(Technique(
    "lowrank", StepKind.KERAS, "low-rank factorization keeping this fraction of each layer's parameters, or ranks "
    "retaining this fraction of the energy: SVD for Dense, Tucker-2 (1x1, kxk core, 1x1) for Conv2D (lowrank=0.5, "
    "lowrank=energy:0.9); on a .tflite, fully connected ops only", parse, (0.5,), dimension="structure", tag="params",
    order=1, fine_tuned=True, forms=WEIGHT_SPACE, apply=lambda model, step, ctx: apply(model, step.value, ctx.tune),
    flatbuffer=_flat, strength=lambda value: 1.0 - value[1], model_problem=_no_layer))
