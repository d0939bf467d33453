"""One-shot pruning from calibration activations: activation-aware (Wanda) and second-order (SparseGPT).

Magnitude pruning ranks a weight by |W| alone. With calibration inputs X of a layer (the im2col patches
of a convolution, the rows of a dense layer's input), two better rankings need no training:

- **Activation-aware** (``wanda=S``; Sun et al., 2023): score |W_ij| * ||X_j||_2, no weight changes
  (for a convolution, X_j is input channel j over every sample and position).
  The paper compares scores within each output's weights (right for LLMs); on the small CNNs here that
  lost accuracy (digits, 50 %: 0.53 vs 0.76 across the layer), so a fraction compares across the whole
  layer, as magnitude pruning does; N:M compares within each block of M.
- **Second-order** (``sparsegpt=S``; Frantar & Alistarh, Optimal Brain Compression 2022 and SparseGPT
  2023): H = X^T X + lambda I; columns are pruned in order, choosing by w^2 / [H^-1]_jj over each block
  of columns (times the square of a following batch norm's gain, which scales that output's error) and
  moving each pruned weight's error onto the columns not yet visited, which keeps the outputs close.

Layers are pruned in the model's order, each with the inputs produced by the layers already pruned, so
later layers compensate earlier errors. Dense, Conv2D (groups 1) and DepthwiseConv2D are handled; other
layers (Conv1D, transposed convolutions) are left dense. Sparsity is per layer (a fraction, or N:M along
input channels). With fine-tuning data the masks are kept fixed while the remaining weights train.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..errors import RecipeError
from ..kinds import StepKind
from ..tflite.graph import Graph
from . import flatbuffer
from .base import WEIGHT_SPACE, Context, Step, Technique, register, sparsity, sparsity_of
from .flatbuffer import lowest
from .training import FineTune, batch_norm_gains, fine_tune, fresh_copy

log = logging.getLogger(__name__)

METHODS = ("wanda", "sparsegpt")
KINDS = ("Dense", "Conv2D", "DepthwiseConv2D")
MAX_ROWS = 16384        # calibration rows (samples x positions) kept per layer
DAMP = 0.01             # lambda as a fraction of the mean of diag(H)
BLOCK = 128             # columns per lazy-update block (SparseGPT)


def apply(model: Any, method: str, value: Any, calibration: np.ndarray | None, tune: FineTune | None) -> Any:
    """Prune ``model`` by ``method`` to ``value`` (a sparsity in (0, 1) or an (N, M) tuple).

    Raises:
        RecipeError: no calibration inputs, nothing to prune, or N:M that does not divide the inputs.
    """
    if method not in METHODS:
        raise RecipeError(f"unknown one-shot pruning method {method!r}; expected: {', '.join(METHODS)}")
    if calibration is None or len(calibration) == 0:
        raise RecipeError(f"{method} scores weights with calibration activations: give --data or --train-data")
    model = fresh_copy(model)
    layers = [layer for layer in model.layers if _kind(layer) is not None]
    if not layers:
        raise RecipeError(f"{method} found no Dense, Conv2D or DepthwiseConv2D layer to prune in this model")
    rng = np.random.default_rng(0)
    masks: dict[str, np.ndarray] = {}
    if isinstance(value, tuple):  # N:M runs along input channels: layers without whole blocks stay dense
        fits = [layer for layer in layers if _nm_fits(layer, value[1])]
        skipped = [layer.name for layer in layers if layer not in fits]
        if not fits:
            raise RecipeError(f"{method}={value[0]}:{value[1]}: no layer has a multiple of {value[1]} input channels")
        if skipped:
            log.info("%s: %s left dense (input channels not a multiple of %d, or depthwise)", method,
                     ", ".join(skipped), value[1])
        layers = fits
    gains = batch_norm_gains(model)  # a batch norm rescales each output: its gain is part of a weight's effect
    for layer in layers:
        x = _layer_inputs(model, layer, calibration)
        kernel, *rest = layer.get_weights()
        pruned = _prune_kernel(layer, kernel, x, method, value, rng, gains.get(layer.name))
        layer.set_weights([pruned, *rest])
        masks[layer.name] = pruned != 0
        log.debug("%s: %s %.0f%% zeros", method, layer.name, 100 * (1 - masks[layer.name].mean()))
    if tune is not None and tune.epochs > 0:
        _fine_tune(model, masks, tune)
    return model


def _nm_fits(layer: Any, m: int) -> bool:
    kind = _kind(layer)
    return kind in ("Dense", "Conv2D") and layer.get_weights()[0].shape[-2] % m == 0


def _kind(layer: Any) -> str | None:
    kind = type(layer).__name__
    if kind not in KINDS or not layer.get_weights():
        return None
    if kind == "Conv2D" and (getattr(layer, "groups", 1) != 1 or layer.data_format != "channels_last"):
        return None
    if kind == "DepthwiseConv2D" and layer.data_format != "channels_last":
        return None
    return kind


def _layer_inputs(model: Any, layer: Any, calibration: np.ndarray) -> np.ndarray:
    """What ``layer`` receives on the calibration inputs, through the model as pruned so far."""
    import tf_keras

    probe = tf_keras.Model(model.inputs, layer.get_input_at(0))
    return np.asarray(probe.predict(calibration, batch_size=32, verbose=0), dtype=np.float64)


def _patches(layer: Any, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return patches(x, tuple(layer.kernel_size), tuple(layer.strides), tuple(layer.dilation_rate),
                   layer.padding.upper(), rng)


def patches(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int], rates: tuple[int, int],
            padding: str, rng: np.random.Generator) -> np.ndarray:
    """im2col rows (positions, kh*kw*C) of inputs ``x`` (N, H, W, C), ordered as a kernel's first three
    axes (SAME or VALID ``padding``); subsampled."""
    import tensorflow as tf

    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, rates
    cols = tf.image.extract_patches(x.astype(np.float32), sizes=[1, kh, kw, 1], strides=[1, sh, sw, 1],
                                    rates=[1, dh, dw, 1], padding=padding).numpy()
    rows = cols.reshape(-1, kh * kw * x.shape[-1]).astype(np.float64)
    return subsample(rows, rng)


def subsample(rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if len(rows) > MAX_ROWS:
        rows = rows[rng.choice(len(rows), MAX_ROWS, replace=False)]
    return rows


def _prune_kernel(layer: Any, kernel: np.ndarray, x: np.ndarray, method: str, value: Any,
                  rng: np.random.Generator, gain: np.ndarray | None = None) -> np.ndarray:
    kind = _kind(layer)
    if kind == "Dense":
        rows = subsample(x.reshape(-1, x.shape[-1]), rng)
        return prune_matrix(kernel.T, rows, method, value, layer.name, gain).T
    if kind == "Conv2D":
        kh, kw, cin, cout = kernel.shape
        if isinstance(value, tuple) and cin % value[1]:
            raise RecipeError(f"layer {layer.name!r}: {cin} input channels are not a multiple of {value[1]}, so "
                              f"{value[0]}:{value[1]} sparsity cannot apply")
        # (outputs, kh*kw*cin): the input channels of one kernel position are consecutive columns, so
        # blocks of M columns are M input channels, as N:M sparsity is defined.
        w = kernel.reshape(kh * kw * cin, cout).T
        if method == "wanda":  # ||X_j|| of each input channel, the same at every kernel position
            rows = np.tile(np.sqrt((x.reshape(-1, cin) ** 2).sum(axis=0)), kh * kw)[None, :]
        else:
            rows = _patches(layer, x, rng)
        return prune_matrix(w, rows, method, value, layer.name, gain).T.reshape(kernel.shape)
    # DepthwiseConv2D: each channel is its own small layer with kh*kw inputs.
    if isinstance(value, tuple):
        raise RecipeError(f"layer {layer.name!r}: N:M sparsity does not apply to depthwise convolutions "
                          "(each filter has one input channel); use a fraction")
    kh, kw, channels, mult = kernel.shape
    out = kernel.copy()
    patches = _patches(layer, x, rng).reshape(-1, kh * kw, channels)
    for c in range(channels):
        w = kernel[:, :, c, :].reshape(kh * kw, mult).T              # (mult, kh*kw)
        g = None if gain is None else gain[c * mult:(c + 1) * mult]
        out[:, :, c, :] = prune_matrix(w, patches[:, :, c], method, value, layer.name, g).T.reshape(kh, kw, mult)
    return out


def prune_matrix(w: np.ndarray, x: np.ndarray, method: str, value: Any, name: str,
                  gain: np.ndarray | None = None) -> np.ndarray:
    """Prune ``w`` (outputs, inputs) given the layer's input rows ``x`` (samples, inputs); ``gain``: a
    scale applied to each output afterwards (a following batch norm), which weighs its errors."""
    dtype = w.dtype
    w = w.astype(np.float64)
    if isinstance(value, tuple) and w.shape[1] % value[1]:
        raise RecipeError(f"layer {name!r}: {w.shape[1]} inputs are not a multiple of {value[1]}, so "
                          f"{value[0]}:{value[1]} sparsity cannot apply")
    if method == "wanda":
        score = np.abs(w) * np.sqrt((x * x).sum(axis=0))[None, :]
        keep = _mask(score, value) if isinstance(value, tuple) else ~lowest(score, value)
        return (w * keep).astype(dtype)
    return _sparsegpt(w, x, value, gain).astype(dtype)


def _mask(score: np.ndarray, value: Any) -> np.ndarray:
    """Keep-mask pruning the lowest scores of each row (a fraction), or M-N of each block of M."""
    if isinstance(value, tuple):
        return flatbuffer.nm_keep(score, *value)
    count = int(round(value * score.shape[1]))
    keep = np.ones_like(score, dtype=bool)
    if count:
        np.put_along_axis(keep, np.argsort(score, axis=1)[:, :count], False, axis=1)
    return keep


def _sparsegpt(w: np.ndarray, x: np.ndarray, value: Any, gain: np.ndarray | None = None) -> np.ndarray:
    """SparseGPT's column-wise prune-and-compensate (Frantar & Alistarh 2023, Algorithm 1)."""
    w = w.copy()
    cols = w.shape[1]
    h = x.T @ x
    dead = np.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    h[np.diag_indices(cols)] += DAMP * float(np.mean(np.diag(h)))
    try:
        hinv = np.linalg.cholesky(np.linalg.inv(h)).T                # upper Cholesky factor of H^-1
    except np.linalg.LinAlgError:
        h[np.diag_indices(cols)] += float(np.mean(np.diag(h)))
        hinv = np.linalg.cholesky(np.linalg.inv(h)).T
    nm = value if isinstance(value, tuple) else None
    for i1 in range(0, cols, BLOCK):
        i2 = min(i1 + BLOCK, cols)
        w1 = w[:, i1:i2].copy()
        q1 = np.zeros_like(w1)
        err1 = np.zeros_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        d = np.diag(hinv1)
        # Within each block of columns, the lowest w^2 / [H^-1]_jj of the whole block go (SparseGPT's
        # adaptive mask selection): rows that matter keep more weights than rows that do not.
        saliency = w1 ** 2 / d[None, :] ** 2 * (1.0 if gain is None else gain[:, None] ** 2)
        prune1 = None if nm else lowest(saliency, value)
        for i in range(i2 - i1):
            if nm is not None and i % nm[1] == 0:
                span = slice(i, i + nm[1])
                score = w1[:, span] ** 2 / d[None, span] ** 2
                block = np.zeros_like(w1, dtype=bool)
                block[:, span] = ~_mask(score, nm)
                prune1 = block if prune1 is None else prune1 | block
            assert prune1 is not None
            col = w1[:, i]
            q = np.where(prune1[:, i], 0.0, col)
            q1[:, i] = q
            e = (col - q) / hinv1[i, i]
            w1[:, i:] -= np.outer(e, hinv1[i, i:])
            err1[:, i] = e
        w[:, i1:i2] = q1
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    return w


def _fine_tune(model: Any, masks: dict[str, np.ndarray], tune: FineTune) -> None:
    """Train the kept weights; pruned ones are zeroed again after every batch, so the masks stay."""
    import tf_keras

    layers = [layer for layer in model.layers if layer.name in masks]

    class KeepMasks(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            for layer in layers:  # weights[0]: kernel, or depthwise_kernel
                layer.weights[0].assign(layer.weights[0] * masks[layer.name].astype(np.float32))

    fine_tune(model, tune, callbacks=[KeepMasks()])
    KeepMasks().on_train_batch_end(0)


def one_shot_flatbuffer(content: bytes, method: str, value: Any, calibration: Any) -> bytes:
    """Wanda or SparseGPT on every weighted op, in the model's order."""
    if calibration is None:
        raise RecipeError(f"{method} scores weights with calibration activations: give --data or --train-data")
    custom = Graph(content).custom_ops()
    if custom:
        raise RecipeError(f"{method} runs the model on calibration data, and its custom operators "
                          f"({', '.join(custom)}) have no kernel here; use prune=S (magnitude) instead")
    rng = np.random.default_rng(0)
    done = 0
    for k in range(len(flatbuffer.layers(Graph(content)))):  # each layer sees the inputs of the model pruned so far
        graph = Graph(content)
        layer = flatbuffer.layers(graph)[k]
        w, integer = flatbuffer.values(graph, layer)
        if integer:
            raise RecipeError(f"{method} needs float weights; this model's are int8 (an integer model): use "
                              "prune=S, which prunes integer weights")
        if isinstance(value, tuple) and (layer.kind == "DEPTHWISE_CONV_2D" or w.shape[-1] % value[1]):
            continue
        x = flatbuffer.activations(content, calibration, int(graph.sub.operators[layer.position].inputs[0]))
        flatbuffer.store(graph, layer, _prune_flat(layer, w, x, method, value, rng), integer)
        content = graph.to_bytes()
        done += 1
    if not done:
        raise RecipeError(f"{method}={value[0]}:{value[1]}: no layer has a multiple of {value[1]} input channels")
    return content


def _prune_flat(layer: flatbuffer.Layer, w: np.ndarray, x: np.ndarray, method: str, value: Any,
                rng: np.random.Generator) -> np.ndarray:
    name = f"{layer.kind.lower()} {layer.position}"
    if layer.kind == "FULLY_CONNECTED":
        rows = subsample(x.reshape(-1, w.shape[1]), rng)
        return prune_matrix(w, rows, method, value, name)
    strides, rates, padding = layer.spatial
    if layer.kind == "CONV_2D":
        cout, kh, kw, cin = w.shape
        m = w.reshape(cout, -1)
        if method == "wanda":
            rows = np.tile(np.sqrt((x.reshape(-1, cin) ** 2).sum(axis=0)), kh * kw)[None, :]
        else:
            rows = patches(x, (kh, kw), strides, rates, padding, rng)
        return prune_matrix(m, rows, method, value, name).reshape(w.shape)
    _, kh, kw, total = w.shape  # depthwise: each channel its own small layer of kh*kw inputs
    channels = x.shape[-1]
    mult = total // channels
    cols = patches(x, (kh, kw), strides, rates, padding, rng).reshape(-1, kh * kw, channels)
    out = w.copy()
    for c in range(channels):
        span = slice(c * mult, (c + 1) * mult)
        m = w[0, :, :, span].reshape(kh * kw, mult).T
        out[0, :, :, span] = prune_matrix(m, cols[:, :, c], method, value, name).T.reshape(kh, kw, mult)
    return out


def _flat(content: bytes, step: Step, ctx: Context) -> bytes:
    return one_shot_flatbuffer(content, step.name, step.value, ctx.calibration)


register(Technique(
    "wanda", StepKind.KERAS, "activation-aware one-shot pruning: |W| x input norm from calibration data, no weight "
    "update (wanda=0.5, wanda=2:4)", sparsity("wanda"), (0.5, (2, 4)), dimension="prune", order=2,
    forms=WEIGHT_SPACE, flatbuffer=_flat, runs_model=True,
    strength=sparsity_of, improves=frozenset(),
    apply=lambda model, step, ctx: apply(model, step.name, step.value, ctx.calibration, ctx.tune)))
register(Technique(
    "sparsegpt", StepKind.KERAS, "second-order one-shot pruning: prunes by the inverse Hessian of the layer's inputs "
    "and updates the kept weights to compensate (sparsegpt=0.5, sparsegpt=2:4)", sparsity("sparsegpt"),
    (0.5, 0.75, (2, 4)), dimension="prune", order=2, forms=WEIGHT_SPACE, flatbuffer=_flat, runs_model=True,
    strength=sparsity_of, improves=frozenset(),
    apply=lambda model, step, ctx: apply(model, step.name, step.value, ctx.calibration, ctx.tune)))
