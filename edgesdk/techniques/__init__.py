"""Compression techniques and recipes.

A recipe is a comma-separated list of steps, e.g. ``prune=0.5,cluster=16,int8``. Keras-level steps
(prune, cluster, qat) transform the model in that order; one conversion step (fp32, dynamic, fp16,
int8, int16x8) fixes the precision of the .tflite (fp32 if none is named, int8 after qat); post steps
(strip) rewrite the flatbuffer. Each technique declares the values a search may try.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import RecipeError


@dataclass(frozen=True)
class Technique:
    """What a recipe step may be: its kind, how its value is parsed, and its search values."""

    name: str
    kind: str                           # "keras" (model), "convert" (final precision) or "post" (flatbuffer)
    help: str
    search_values: tuple[Any, ...] = ()
    order: int = 0                      # keras steps run in ascending order


def _sparsity_of(name: str) -> Any:
    def parse(value: str | None) -> Any:
        if value is None:
            raise RecipeError(f"{name} needs a value: a sparsity in (0, 1) such as {name}=0.5, or {name}=2:4")
        if ":" in value:
            n, m = value.split(":", 1)
            if not (n.isdigit() and m.isdigit()) or not 0 < int(n) < int(m):
                raise RecipeError(f"{name}=N:M needs 0 < N < M, e.g. {name}=2:4. Received: {name}={value}")
            return (int(n), int(m))
        try:
            sparsity = float(value)
        except ValueError:
            raise RecipeError(f"{name} expects a sparsity in (0, 1) or N:M. Received: {name}={value}") from None
        if not 0.0 < sparsity < 1.0:
            raise RecipeError(f"{name} sparsity must be in (0, 1). Received: {name}={value}")
        return sparsity
    return parse


_sparsity = _sparsity_of("prune")
PRUNING = ("prune", "wanda", "sparsegpt")  # one per recipe: each sets the sparsity its own way


def _channels(value: str | None) -> Any:
    from .channels import parse

    return parse(value)


def _temperature(value: str | None) -> float:
    if value is None:
        return 4.0
    try:
        t = float(value)
    except ValueError:
        raise RecipeError(f"distill expects a temperature, e.g. distill=4. Received: distill={value}") from None
    if not 0.0 < t <= 100.0:
        raise RecipeError(f"distill temperature must be in (0, 100]. Received: distill={value}")
    return t


def fraction(name: str, raw: str | None, what: str, received: str | None = None) -> float:
    """``raw`` as a number in (0, 1) for the step ``name``, or a RecipeError that says what it means
    (``received``: the whole value as written, when ``raw`` is a part of it)."""
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        value = None
    if value is None or not 0.0 < value < 1.0:
        shown = name if raw is None else f"{name}={received if received is not None else raw}"
        raise RecipeError(f"{name} expects {what}, a fraction in (0, 1), e.g. {name}=0.5. Received: {shown}")
    return value


MIXED = ("float", "int16x8", "int4")


def _mixed(value: str | None) -> tuple[str, float]:
    """``0.1`` (the most sensitive tenth of the layers kept float), ``int16x8:0.1`` (given int16
    activations) or ``int4:0.5`` (the least sensitive half of the convolutions and fully connected
    layers given int4 weights)."""
    kind, _, raw = (value or "").rpartition(":")
    kind = kind or "float"
    if kind not in MIXED:
        raise RecipeError(f"mixed expects F, int16x8:F or int4:F (F a fraction of the layers), e.g. mixed=0.1. "
                          f"Received: mixed={value}")
    what = {"float": "the fraction of layers kept float", "int16x8": "the fraction of layers given int16 "
            "activations", "int4": "the fraction of convolutions and fully connected layers given int4 weights"}
    return kind, fraction("mixed", raw if value is not None else None, what[kind], received=value)


def _lowrank(value: str | None) -> Any:
    from .lowrank import parse

    return parse(value)


def _clusters(value: str | None) -> int:
    if value is None or not value.isdigit() or not 2 <= int(value) <= 256:
        raise RecipeError(f"cluster expects a number of clusters from 2 to 256, e.g. cluster=16. "
                          f"Received: cluster={value}")
    return int(value)


def _int8(value: str | None) -> bool:
    if value not in (None, "io"):
        raise RecipeError(f"int8 takes no value, or int8=io for int8 inputs and outputs. Received: int8={value}")
    return value == "io"


def _none(name: str) -> Any:
    def parse(value: str | None) -> None:
        if value is not None:
            raise RecipeError(f"{name} takes no value. Received: {name}={value}")
    return parse


REGISTRY: dict[str, Technique] = {
    t.name: t for t in (
        Technique("channels", "keras", "structured pruning: remove this fraction of the channels of every "
                  "convolution and dense layer (coupled through residual adds, concatenations, depthwise and "
                  "batch norm) and rebuild a smaller dense model; by filter L2 norm (channels=0.5), L1 "
                  "(channels=l1:0.5) or activations on the data (channels=act:0.5)", (0.25, 0.5), order=0),
        Technique("lowrank", "keras", "low-rank factorization keeping this fraction of each layer's parameters, or "
                  "ranks retaining this fraction of the energy: SVD for Dense, Tucker-2 (1x1, kxk core, 1x1) "
                  "for Conv2D (lowrank=0.5, lowrank=energy:0.9)", (0.5,), order=1),
        Technique("prune", "keras", "magnitude pruning to a sparsity (prune=0.5) or N:M (prune=2:4)",
                  (0.25, 0.5, 0.75, (2, 4)), order=2),
        Technique("wanda", "keras", "activation-aware one-shot pruning: |W| x input norm from calibration data, "
                  "no weight update (wanda=0.5, wanda=2:4)", (0.5, (2, 4)), order=2),
        Technique("sparsegpt", "keras", "second-order one-shot pruning: prunes by the inverse Hessian of the "
                  "layer's inputs and updates the kept weights to compensate (sparsegpt=0.5, sparsegpt=2:4)",
                  (0.5, 0.75, (2, 4)), order=2),
        Technique("cluster", "keras", "weight clustering into N shared values (cluster=16)",
                  (8, 16, 32), order=3),
        Technique("distill", "keras", "knowledge distillation: the fine-tuning of the other steps fits the float "
                  "model's outputs softened at temperature T (distill=4), labels unused: unlabeled data is "
                  "enough", order=5),
        Technique("qat", "keras", "quantization-aware training, then int8 conversion", (True,), order=4),
        Technique("fp32", "convert", "plain float32 conversion"),
        Technique("dynamic", "convert", "dynamic-range: int8 weights, float activations"),
        Technique("fp16", "convert", "float16 weights (GPU delegates compute in fp16)"),
        Technique("int8", "convert", "full-integer int8, calibrated; int8=io also makes inputs/outputs int8",
                  (False, True)),
        Technique("int16x8", "convert", "int16 activations, int8 weights, calibrated"),
        Technique("mixed", "convert", "mixed precision, int8 with per-layer exceptions chosen by each layer's "
                  "sensitivity on the calibration data: mixed=F keeps the fraction F most sensitive layers "
                  "float; mixed=int16x8:F gives them int16 activations; mixed=int4:F gives the F least sensitive "
                  "convolutions and fully connected layers int4 weights (the last two through ai-edge-quantizer)",
                  (0.1, 0.25)),
        Technique("strip", "post", "drop tensor names and signatures: a smaller file for flash-limited targets",
                  (False, True)),
    )
}
PARSERS = {"channels": _channels, "lowrank": _lowrank, "distill": _temperature, "prune": _sparsity,
           "wanda": _sparsity_of("wanda"), "sparsegpt": _sparsity_of("sparsegpt"), "cluster": _clusters,
           "int8": _int8, "qat": _none("qat"),
           "fp32": _none("fp32"), "dynamic": _none("dynamic"), "fp16": _none("fp16"),
           "int16x8": _none("int16x8"), "mixed": _mixed, "strip": _none("strip")}


# Steps whose value is (tag, fraction), written TAG:F, or plain F for the default tag.
_TAGGED = {"channels": "l2", "lowrank": "params", "mixed": "float"}


@dataclass(frozen=True)
class Step:
    name: str
    value: Any = None

    def __str__(self) -> str:
        if self.value is None or self.value is False:
            return self.name
        if self.value is True:
            return f"{self.name}=io" if self.name == "int8" else self.name
        if self.name in _TAGGED:
            tag, share = self.value
            return f"{self.name}={share:g}" if tag == _TAGGED[self.name] else f"{self.name}={tag}:{share:g}"
        if isinstance(self.value, tuple):
            return f"{self.name}={self.value[0]}:{self.value[1]}"
        if isinstance(self.value, float):
            return f"{self.name}={self.value:g}"
        return f"{self.name}={self.value}"


@dataclass(frozen=True)
class Recipe:
    """A parsed, validated recipe: keras steps in order, then exactly one conversion step."""

    keras_steps: tuple[Step, ...]
    convert: Step
    post_steps: tuple[Step, ...] = ()

    @property
    def precision(self) -> str:
        return "int8" if self.convert.name == "int8" else self.convert.name

    def __str__(self) -> str:
        return ",".join(str(s) for s in (*self.keras_steps, self.convert, *self.post_steps))


def parse_recipe(text: str) -> Recipe:
    """Parse ``text`` such as ``prune=0.5,cluster=16,int8`` into a :class:`Recipe`.

    Raises:
        RecipeError: unknown technique, bad value, repeated step, or several conversion steps.
    """
    if not text or not text.strip():
        raise RecipeError(f"empty recipe; expected steps such as 'int8' or 'prune=0.5,int8' "
                          f"from: {', '.join(REGISTRY)}")
    keras_steps: list[Step] = []
    converts: list[Step] = []
    post_steps: list[Step] = []
    for token in (t.strip() for t in text.split(",")):
        name, _, raw = token.partition("=")
        name = name.strip().lower()
        if name not in REGISTRY:
            raise RecipeError(f"unknown technique {name!r} in recipe {text!r}; expected one of "
                              f"{', '.join(REGISTRY)}")
        step = Step(name, PARSERS[name](raw.strip() if raw else None))
        if any(s.name == name for s in (*keras_steps, *converts, *post_steps)):
            raise RecipeError(f"technique {name!r} appears twice in recipe {text!r}")
        {"keras": keras_steps, "convert": converts, "post": post_steps}[REGISTRY[name].kind].append(step)
    pruning = [s.name for s in keras_steps if s.name in PRUNING]
    if len(pruning) > 1:
        raise RecipeError(f"a recipe prunes once; {text!r} has {', '.join(pruning)}")
    if len(converts) > 1:
        raise RecipeError(f"a recipe has one conversion step; {text!r} has "
                          f"{', '.join(s.name for s in converts)}")
    has_qat = any(s.name == "qat" for s in keras_steps)
    if has_qat and converts and converts[0].name != "int8":
        raise RecipeError(f"qat produces an int8 model; it cannot be combined with {converts[0].name} "
                          "(16x8 conversion of QAT models is not supported by the TFLite converter)")
    if any(s.name == "distill" for s in keras_steps) and not any(
            REGISTRY[s.name].kind == "keras" and s.name != "distill" for s in keras_steps):
        raise RecipeError("distill is how the other steps are fine-tuned: combine it with channels, lowrank, "
                          "prune, wanda, sparsegpt, cluster or qat (e.g. channels=0.5,distill=4,int8)")
    convert = converts[0] if converts else Step("int8", False) if has_qat else Step("fp32")
    keras_steps.sort(key=lambda s: REGISTRY[s.name].order)
    return Recipe(tuple(keras_steps), convert, tuple(post_steps))
