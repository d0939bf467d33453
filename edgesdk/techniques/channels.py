"""Structured channel pruning: remove whole filters and rebuild a smaller dense model.

Unstructured sparsity leaves every multiply in place on a CPU runtime; removing channels makes each
convolution and dense layer smaller, so XNNPACK really does less work. Channels are coupled: a
convolution's output channels are the input channels of its consumers, pass through batch norm,
activations, pooling and per-channel depthwise convolutions, and every tensor added (residual adds,
multiplies) must keep the *same* channels. So the model's graph is walked once to find the channel
*spaces* (one per set of tensors that must keep the same channels), and each space is cut as a whole:

- a Conv2D or Dense starts a space with its filters/units (and consumes its input's channels);
- BatchNormalization, activations, pooling, dropout, padding, DepthwiseConv2D (multiplier 1) and PReLU
  carry their input's space, with their per-channel weights sliced;
- Add, Subtract, Multiply, Average, Maximum and Minimum merge their inputs' spaces into one;
- Concatenate (on channels) lays its inputs' spaces side by side; Flatten repeats them per position;
- anything else (Reshape, custom layers, shared layers) and the model's inputs and outputs freeze the
  spaces they touch: their channels stay.

Importance of a channel: the L2 (default) or L1 norm of the filters that produce it, each producer
normalized, summed over the space; or (``act``) the mean absolute activation on calibration data.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import RecipeError, first_line
from ..kinds import StepKind
from .base import Technique, dimension, fraction, register
from .training import FineTune, batch_norm_gains, fine_tune

log = logging.getLogger(__name__)

CRITERIA = ("l2", "l1", "act")
FINE_TUNE_RATE = 1e-3
PRODUCERS = ("Conv2D", "Dense")
PASS = ("BatchNormalization", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "SpatialDropout2D",
        "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "ZeroPadding2D",
        "UpSampling2D", "PReLU", "LayerNormalization", "GaussianNoise", "ActivityRegularization", "Cropping2D")
MERGE = ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")


@dataclass
class ChannelSpace:
    """Channels that must be kept or removed together."""

    size: int
    frozen: bool = False
    producers: list[str] = field(default_factory=list)
    keep: np.ndarray | None = None          # boolean mask, once chosen


class _Spaces:
    """Union-find over channel spaces."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.spaces: list[ChannelSpace] = []

    def new(self, size: int, frozen: bool = False, producer: str | None = None) -> int:
        self.parent.append(len(self.parent))
        self.spaces.append(ChannelSpace(size, frozen, [producer] if producer else []))
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def get(self, i: int) -> ChannelSpace:
        return self.spaces[self.find(i)]

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        sa, sb = self.spaces[ra], self.spaces[rb]
        if sa.size != sb.size:  # cannot happen for a model that runs; be safe
            sa.frozen = sb.frozen = True
            return
        self.parent[rb] = ra
        sa.frozen = sa.frozen or sb.frozen
        sa.producers += sb.producers

    def freeze(self, layout: list[int]) -> None:
        for i in layout:
            self.get(i).frozen = True

    def mask(self, layout: list[int]) -> np.ndarray:
        parts = []
        for i in layout:
            space = self.get(i)
            parts.append(space.keep if space.keep is not None else np.ones(space.size, dtype=bool))
        return np.concatenate(parts) if parts else np.ones(0, dtype=bool)


def parse(value: str | None) -> tuple[str, float]:
    """``0.5`` (L2 norm), ``l1:0.5`` or ``act:0.5``: the criterion and the fraction of channels removed."""
    if value is None:
        raise RecipeError("channels needs a value: the fraction of channels to remove, e.g. channels=0.5, "
                          "or with a criterion: channels=l1:0.5, channels=act:0.5")
    criterion, _, raw = value.rpartition(":")
    criterion = criterion or "l2"
    if criterion not in CRITERIA:
        raise RecipeError(f"channels criterion must be one of {', '.join(CRITERIA)}. Received: channels={value}")
    return criterion, fraction("channels", raw, "the fraction of channels to remove", received=value)


def plan(model: Any) -> tuple[_Spaces, dict[str, list[int]], dict[str, list[int]]]:
    """Walk the functional graph: the spaces, and each layer's input and output channel layouts."""
    config = model.get_config()
    spaces = _Spaces()
    outputs: dict[str, list[int]] = {}     # layer name -> layout of its output (list of space ids)
    inputs: dict[str, list[int]] = {}      # layer name -> layout of its (first) input
    layers = {layer.name: layer for layer in model.layers}
    for entry in config["layers"]:
        name, kind = entry["name"], entry["class_name"]
        layer = layers[name]
        nodes = entry.get("inbound_nodes") or []
        if kind == "InputLayer":
            outputs[name] = [spaces.new(_channels(layer.output_shape), frozen=True)]
            continue
        if len(nodes) != 1 or any(len(ref) < 3 or ref[1] != 0 or ref[2] != 0 for ref in nodes[0]):
            # a shared layer, or one reading a later output of a layer: keep it and what touches it
            for ref in (ref for node in nodes for ref in node if ref[0] in outputs):
                spaces.freeze(outputs[ref[0]])
            outputs[name] = [spaces.new(_channels(_shape(layer.output_shape)), frozen=True)]
            continue
        layouts = [outputs[ref[0]] for ref in nodes[0]]
        inputs[name] = layouts[0]
        if kind in PRODUCERS and len(layouts) == 1 and _producer_ok(layer):
            outputs[name] = [spaces.new(_channels(layer.output_shape), producer=name)]
        elif kind == "DepthwiseConv2D" and layer.depth_multiplier == 1:
            outputs[name] = layouts[0]
        elif kind in PASS and len(layouts) == 1 and _per_channel_ok(kind, layer):
            outputs[name] = layouts[0]
        elif kind in MERGE and _same_layout(layouts, spaces):
            for layout in layouts[1:]:
                for a, b in zip(layouts[0], layout, strict=True):
                    spaces.union(a, b)
            outputs[name] = layouts[0]
        elif kind == "Concatenate" and layer.axis in (-1, len(_shape(layer.output_shape)) - 1):
            outputs[name] = [i for layout in layouts for i in layout]
        elif kind == "Flatten" and len(layouts) == 1:
            shape = _shape(layer.input_shape)
            positions = int(np.prod(shape[1:-1])) if len(shape) > 2 else 1
            outputs[name] = layouts[0] * positions
        else:
            for layout in layouts:
                spaces.freeze(layout)
            outputs[name] = [spaces.new(_channels(_shape(layer.output_shape)), frozen=True)]
    for ref in config["output_layers"]:
        spaces.freeze(outputs[ref[0]])
    return spaces, inputs, outputs


def apply(model: Any, value: tuple[str, float], calibration: np.ndarray | None, tune: FineTune | None) -> Any:
    """Remove the fraction ``value[1]`` of the channels of every prunable space, by criterion ``value[0]``,
    and return the smaller model (fine-tuned when ``tune`` is given).

    Raises:
        RecipeError: no space can be pruned; ``act`` without calibration data; the model cannot be rebuilt.
    """
    import tf_keras

    criterion, ratio = value
    if criterion == "act" and (calibration is None or len(calibration) == 0):
        raise RecipeError("channels=act:… ranks channels by their activations: give --data or --train-data")
    if not isinstance(model, tf_keras.Model) or not hasattr(model, "get_config"):
        raise RecipeError("channels needs a Keras model")
    if isinstance(model, tf_keras.Sequential):
        model = tf_keras.Model(model.inputs, model.outputs)  # the same layers, as a functional graph
    try:
        spaces, inputs, outputs = plan(model)
    except (KeyError, TypeError, ValueError, NotImplementedError) as exc:
        raise RecipeError(f"channels: cannot follow this model's graph ({type(exc).__name__}: {exc})") from exc
    roots = sorted({spaces.find(i) for i in range(len(spaces.spaces))})
    prunable = [r for r in roots if not spaces.spaces[r].frozen and spaces.spaces[r].producers
                and spaces.spaces[r].size > 1]
    if not prunable:
        raise RecipeError("channels found no channels it can remove in this model (every Conv2D/Dense output "
                          "is a model output, or feeds layers whose channels must stay)")
    activations = _activations(model, prunable, spaces, calibration) if criterion == "act" else {}
    gains = batch_norm_gains(model) if criterion != "act" else {}
    for root in prunable:
        space = spaces.spaces[root]
        score = activations.get(root)
        if score is None:
            score = _norm_score(model, space, criterion, gains)
        keep_count = max(1, int(round(space.size * (1 - ratio))))
        keep = np.zeros(space.size, dtype=bool)
        keep[np.argsort(-score, kind="stable")[:keep_count]] = True
        space.keep = keep
    smaller = _rebuild(model, spaces, inputs, outputs)
    log.info("channels: %d of %d parameters kept", smaller.count_params(), model.count_params())
    if tune is not None and tune.epochs > 0:
        # A smaller network, not a perturbed one: it learns back at a full rate, not a pruning nudge.
        fine_tune(smaller, dataclasses.replace(tune, learning_rate=max(tune.learning_rate, FINE_TUNE_RATE)))
    return smaller


def _shape(shape: Any) -> tuple[Any, ...]:
    return tuple(shape[0]) if isinstance(shape, list) else tuple(shape)


def _channels(shape: Any) -> int:
    shape = _shape(shape)
    return int(shape[-1]) if shape and shape[-1] is not None else 1


def _producer_ok(layer: Any) -> bool:
    """A Conv2D or Dense whose kernel is (..., inputs, outputs) over the last axis of its input."""
    return getattr(layer, "groups", 1) == 1 and getattr(layer, "data_format", "channels_last") == "channels_last"


def _per_channel_ok(kind: str, layer: Any) -> bool:
    """Pass-through layers whose weights (if any) are per channel of the last axis."""
    if kind == "BatchNormalization":
        axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
        return axis in (-1, len(_shape(layer.input_shape)) - 1)
    if kind == "LayerNormalization":  # normalizes over channels: removing some changes the statistics
        return False
    if kind == "PReLU":
        return all(s == 1 for s in layer.get_weights()[0].shape[:-1])
    return True


def _same_layout(layouts: list[list[int]], spaces: _Spaces) -> bool:
    sizes = [[spaces.get(i).size for i in layout] for layout in layouts]
    return all(s == sizes[0] for s in sizes)


def _norm_score(model: Any, space: ChannelSpace, criterion: str, gains: dict[str, np.ndarray]) -> np.ndarray:
    """Norm of each output channel's filter, scaled by the batch norm that follows it, if one does (its
    gamma / sqrt(var + eps) is the filter's real gain); normalized per producer, summed over the space."""
    score = np.zeros(space.size)
    for name in space.producers:
        kernel = model.get_layer(name).get_weights()[0]
        flat = np.abs(kernel.reshape(-1, kernel.shape[-1]))
        norms = flat.sum(axis=0) if criterion == "l1" else np.sqrt((flat ** 2).sum(axis=0))
        if name in gains:
            norms = norms * gains[name]
        score += norms / (norms.max() or 1.0)
    return score


def _activations(model: Any, roots: list[int], spaces: _Spaces, calibration: Any) -> dict[int, np.ndarray]:
    """Mean |activation| of each channel at its producers' outputs, summed over producers (normalized)."""
    import tf_keras

    names = sorted({n for r in roots for n in spaces.spaces[r].producers})
    probe = tf_keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    values = probe.predict(calibration, batch_size=32, verbose=0)
    values = values if isinstance(values, list) else [values]
    per_layer = {}
    for n, v in zip(names, values, strict=True):
        mean = np.abs(v).reshape(-1, v.shape[-1]).mean(axis=0)
        per_layer[n] = mean / (mean.max() or 1.0)
    return {r: sum(per_layer[n] for n in spaces.spaces[r].producers) for r in roots}


def _rebuild(model: Any, spaces: _Spaces, inputs: dict[str, list[int]], outputs: dict[str, list[int]]) -> Any:
    """The smaller model: filters/units set to the kept counts, every weight sliced by its masks."""
    import tf_keras

    config = copy.deepcopy(model.get_config())
    for entry in config["layers"]:
        kept = int(spaces.mask(outputs[entry["name"]]).sum())
        if entry["class_name"] == "Conv2D" and entry["name"] in inputs:
            entry["config"]["filters"] = kept
        elif entry["class_name"] == "Dense" and entry["name"] in inputs:
            entry["config"]["units"] = kept
    try:
        smaller = tf_keras.Model.from_config(config)
    except Exception as exc:  # noqa: BLE001 - custom layers and odd configs raise anything
        raise RecipeError(f"channels: cannot rebuild the smaller model ({type(exc).__name__}: "
                          f"{first_line(exc)})") from exc
    try:
        _copy_weights(model, smaller, spaces, inputs, outputs)
    except (ValueError, IndexError) as exc:
        raise RecipeError(f"channels: the pruned weights do not fit the rebuilt model ({exc})") from exc
    return smaller


def _copy_weights(model: Any, smaller: Any, spaces: _Spaces, inputs: dict[str, list[int]],
                  outputs: dict[str, list[int]]) -> None:
    for layer in smaller.layers:
        old = model.get_layer(layer.name)
        weights = old.get_weights()
        if not weights:
            continue
        kind = type(old).__name__
        out_mask = spaces.mask(outputs[layer.name])
        in_mask = spaces.mask(inputs[layer.name]) if layer.name in inputs else None
        if kind in PRODUCERS and in_mask is not None:
            kernel = weights[0][..., out_mask][..., in_mask, :]
            weights = [kernel, *(w[out_mask] for w in weights[1:])]
        elif kind == "DepthwiseConv2D" and in_mask is not None:
            weights = [weights[0][:, :, in_mask, :], *(w[in_mask] for w in weights[1:])]
        elif kind in PASS:
            weights = [w[..., out_mask] if w.shape and w.shape[-1] == out_mask.size else w for w in weights]
        layer.set_weights(weights)


dimension("structure", "architecture changes", option=True)

register(Technique(
    "channels", StepKind.KERAS, "structured pruning: remove this fraction of the channels of every convolution and "
    "dense layer (coupled through residual adds, concatenations, depthwise and batch norm) and rebuild a smaller "
    "dense model; by filter L2 norm (channels=0.5), L1 (channels=l1:0.5) or activations on the data "
    "(channels=act:0.5)", parse, (0.25, 0.5), dimension="structure", tag="l2", order=0, fine_tuned=True,
    apply=lambda model, step, ctx: apply(model, step.value, ctx.calibration, ctx.tune),
    strength=lambda value: value[1]))
