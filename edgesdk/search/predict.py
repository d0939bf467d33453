"""A latency predictor per profile: a roofline cost per operator, calibrated on the device.

Features of a .tflite (from :mod:`edgesdk.tflite.facts`), each divided by the profile's peak rate or
bandwidth for the model's precision: MACs of convolutions, of fully connected layers and of depthwise
convolutions, counted on the whole tiles the kernels compute (the profile's ``quantized_k_tile`` and
``depthwise_channel_tile``); bytes moved (activations written plus weights read); the operator count;
and a constant. On a GPU (a profile with ``accelerator: gpu``) every precision is costed as float at the
fp16 peak and weights are read as fp16: the GPU dequantizes integer weights when it compiles the model.
Fully connected layers stand apart because at batch 1 they are a matrix-vector product,
bound by reading the weights rather than by arithmetic: an int8 one runs 3x faster than its fp32 twin
where an int8 convolution runs slower. Uncalibrated, the prediction is the roofline alone (MACs over
peak plus bytes over bandwidth), which a CPU rarely reaches. ``edgesdk calibrate`` measures generated
micro-models on the device and fits non-negative coefficients that minimize the relative error; they
are saved beside the profile (for a shipped profile, in the user data directory). Every predicted
figure is flagged ``estimated``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs

from device_agent.protocol import typical_ms

from ..errors import MeasurementError, ProfileError
from ..profiles import Profile, load_profile
from ..progress import Event, Progress
from ..techniques import REGISTRY
from ..tflite.facts import ModelReport, analyze

log = logging.getLogger(__name__)

# Kernels differ by precision far more than a roofline says (on x86, XNNPACK's float kernels beat its
# int8 ones on some layers; int16x8 runs reference kernels): compute is costed per precision class.
# Each precision names its class (PrecisionSpec.cost; mixed, mostly int8, is costed as int8: an approximation).
CLASSES = {t.name: t.precision.cost for t in REGISTRY.values() if t.precision is not None}
COST_CLASSES = tuple(dict.fromkeys(CLASSES.values()))  # float, dynamic, int8, int16x8
KINDS = ("conv", "fc", "depthwise")
FEATURES = ("fixed_ms", "per_op_ms", "memory", *(f"{c}_{kind}" for c in COST_CLASSES for kind in KINDS))
_KIND = {"CONV_2D": "conv", "BATCH_MATMUL": "conv", "TRANSPOSE_CONV": "conv", "CONV_3D": "conv",
         "FULLY_CONNECTED": "fc", "DEPTHWISE_CONV_2D": "depthwise"}
_TILED = {"dynamic", "int8"}  # the classes whose kernels pack the reduction in tiles (XNNPACK's qs8/qd8)


def on_gpu(profile: Profile | None) -> bool:
    """Whether ``profile``'s models run on a GPU: fp16 compute, and no integer kernels (an int8 or
    dynamic-range model is dequantized when it is compiled, so it costs what a float one does)."""
    return profile is not None and (profile.accelerator == "gpu" or profile.compute_class == "gpu")


def roofline(profile: Profile) -> dict[str, float]:
    """Uncalibrated coefficients (ms per unit): MACs at the profile's peak rate times the share of it its
    kernels reach (``kernel_efficiency``), bytes at its bandwidth, its per-operator and per-inference costs."""
    roof = profile.roofline
    coefficients = {"fixed_ms": roof.fixed_us / 1e3, "per_op_ms": roof.per_op_us / 1e3,
                    "memory": 1e3 / roof.memory_bandwidth_bytes_per_s}
    fallback = max(roof.peak_macs_per_s.values())
    if on_gpu(profile):  # every precision computes as fp16 on the GPU
        peak = roof.peak_macs_per_s.get("fp16", fallback)
        coefficients.update({f"float_{kind}": 1e3 / (peak * efficiency(profile, "float", kind)) for kind in KINDS})
    for precision, klass in CLASSES.items():
        peak = roof.peak_macs_per_s.get(precision, fallback)
        for kind in KINDS:
            coefficients.setdefault(f"{klass}_{kind}", 1e3 / (peak * efficiency(profile, klass, kind)))
    return coefficients


def efficiency(profile: Profile, klass: str, kind: str) -> float:
    """The share of the peak ``profile``'s kernels of a class and kind reach: ``int8_depthwise`` if the
    profile names it, else the product of what it says of ``int8`` and of ``depthwise`` (1 where silent)."""
    facts = profile.roofline.kernel_efficiency
    return facts.get(f"{klass}_{kind}", facts.get(klass, 1.0) * facts.get(kind, 1.0))


def dram_bytes(traffic: float, profile: Profile | None) -> float:
    """Bytes moved per inference, in DRAM bytes: what fits in the profile's last-level cache moves at the
    cache's bandwidth (weights stay there from one inference to the next), only the rest at DRAM's."""
    roof = profile.roofline if profile is not None else None
    if roof is None or not roof.cache_bytes or not roof.cache_bandwidth_bytes_per_s:
        return traffic
    cached = min(traffic, float(roof.cache_bytes))
    return traffic - cached + cached * roof.memory_bandwidth_bytes_per_s / roof.cache_bandwidth_bytes_per_s


def _up(n: int, tile: int) -> int:
    return -(-n // tile) * tile


def tiled_macs(layer: Any, shapes: dict[int, list[int]], klass: str, profile: Profile | None) -> float:
    """The MACs a kernel computes for ``layer``, counting the padding of its last partial tile.

    A quantized convolution or fully connected layer reduces over input channels in blocks of the
    profile's ``quantized_k_tile``; a depthwise convolution runs ``depthwise_channel_tile`` channels at a
    time. Without a profile (or with tiles of 1) these are the plain MACs.
    """
    macs = float(layer.macs)
    if profile is None or not macs:
        return macs
    k_tile = profile.roofline.quantized_k_tile if klass in _TILED else 1
    weights = shapes.get(layer.inputs[1], []) if len(layer.inputs) > 1 and layer.inputs[1] >= 0 else []
    if layer.op in ("CONV_2D", "FULLY_CONNECTED") and weights and weights[-1] > 0 and k_tile > 1:
        return macs * _up(weights[-1], k_tile) / weights[-1]  # [.., input channels] is the reduction
    channels = layer.output_shape[-1] if layer.output_shape else 0
    if layer.op == "DEPTHWISE_CONV_2D" and channels > 0:
        return macs * _up(channels, profile.roofline.depthwise_channel_tile) / channels
    return macs


def features(report: ModelReport, profile: Profile | None = None) -> dict[str, float]:
    """The predictor's inputs for one model: MACs by precision class and kind (on whole kernel tiles
    where a ``profile`` gives them), bytes moved, operators.

    A DEQUANTIZE of a constant (the fp16 weights of an fp16 model) runs once, when the interpreter is
    prepared, not at each inference: it is no operator of the per-inference cost, and the weights it
    writes are read as float32 at each inference.
    """
    out = dict.fromkeys(FEATURES, 0.0)
    gpu = on_gpu(profile)
    klass = "float" if gpu else CLASSES.get(report.precision, "float")
    constant = {t.index for t in report.tensors if t.constant}
    folded = [layer for layer in report.layers
              if layer.op == "DEQUANTIZE" and layer.inputs and all(j in constant for j in layer.inputs if j >= 0)]
    unpacked = {j for layer in folded for j in layer.inputs}
    once = {layer.index for layer in folded}
    layers = [layer for layer in report.layers if layer.index not in once]
    shapes = {t.index: t.shape for t in report.tensors}
    for layer in layers:
        if layer.op in _KIND:
            out[f"{klass}_{_KIND[layer.op]}"] += tiled_macs(layer, shapes, klass, profile)
    weights = sum(t.bytes for t in report.tensors if t.constant and t.index not in unpacked) + \
        sum(layer.output_bytes for layer in folded)
    if gpu:  # the GPU holds every weight as fp16, whatever the file stores
        held = [t for t in report.tensors if t.constant and t.index not in unpacked]
        weights = sum(2 * int(np.prod(t.shape or [1])) for t in held) + sum(layer.output_bytes // 2 for layer in folded)
    out["memory"] = dram_bytes(float(sum(layer.output_bytes for layer in layers) + weights), profile)
    out["fixed_ms"], out["per_op_ms"] = 1.0, float(len(layers))
    return out


@dataclass
class Predictor:
    """Coefficients for one profile; ``calibrated`` says whether a device fitted them."""

    profile: str
    coefficients: dict[str, float] = field(default_factory=dict)
    calibrated: bool = False
    precisions: list[str] = field(default_factory=list)  # calibrated on the device; others use the roofline
    accelerator: str | None = None                       # what the device ran the micro-models on
    device: str | None = None
    device_fingerprint: str | None = None
    runtime: dict[str, str] | None = None
    samples: int = 0
    fit_mape: float | None = None
    # How far an uncalibrated estimate can be off (the profile's ``uncalibrated_error``): within this factor.
    within: float | None = None

    def uncertainty(self) -> str:
        """How far this predictor's estimates can be off, in words."""
        if self.calibrated and self.fit_mape is not None:
            return (f"calibrated on {self.device}: a median error of {100 * self.fit_mape:.0f} % on the "
                    "micro-models it was fitted to")
        within = f"expect within {self.within:g}× of the device's latency either way" if self.within else \
            "its error is unknown"
        return f"uncalibrated: {within}; `edgesdk calibrate -p {self.profile} --device D` measures it"

    def predict_ms(self, model: str | os.PathLike[str] | ModelReport, profile: Profile) -> float:
        report = model if isinstance(model, ModelReport) else analyze(Path(model))
        coefficients = {**roofline(profile), **self.coefficients}
        f = features(report, profile)
        return float(sum(coefficients[k] * f[k] for k in FEATURES))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def calibration_path(profile: Profile) -> Path:
    """Beside the profile's YAML for a user's profile; in the data directory for a shipped one."""
    shipped = Path(__file__).resolve().parent.parent / "profiles"
    source = Path(profile.path) if profile.path else None
    if source is None or source.resolve().parent == shipped:
        return Path(platformdirs.user_data_dir("edgesdk")) / "calibration" / f"{profile.name}.json"
    return source.with_suffix(".calibration.json")


def load(profile: Profile) -> Predictor:
    """The calibrated predictor for ``profile`` if one was saved (and fits these features), else the
    plain roofline; either knows how far the profile's uncalibrated estimates can be off."""
    predictor = _load(profile)
    predictor.within = profile.roofline.uncalibrated_error
    return predictor


def _load(profile: Profile) -> Predictor:
    path = calibration_path(profile)
    if not path.is_file():
        return Predictor(profile.name, roofline(profile))
    try:
        doc = json.loads(path.read_text())
        predictor = Predictor(**doc)
    except (ValueError, TypeError) as exc:
        raise ProfileError(f"{path}: not a calibration file ({exc}); delete it or run `edgesdk calibrate`") from exc
    if set(predictor.coefficients) != set(FEATURES):
        # Written by an earlier edgesdk whose predictor had other features: unusable, but no reason to stop
        # a search that measures on a device. Estimates fall back to the roofline (flagged as ever).
        log.warning("%s was fitted for an earlier predictor's features; using the uncalibrated roofline. "
                    "Run `edgesdk calibrate --profile %s` again", path, profile.name)
        return Predictor(profile.name, roofline(profile))
    if profile.accelerator and predictor.accelerator != profile.accelerator:
        # Fitted on another processor (an earlier edgesdk measured mobile-gpu on the CPU): not this one's costs.
        log.warning("%s was fitted on the %s, but %s runs on the %s; using the uncalibrated roofline. Run "
                    "`edgesdk calibrate --profile %s` again", path, predictor.accelerator or "cpu", profile.name,
                    profile.accelerator, profile.name)
        return Predictor(profile.name, roofline(profile))
    return predictor


def fit_coefficients(rows: list[tuple[dict[str, float], float]],
                     base: dict[str, float]) -> tuple[dict[str, float], float]:
    """Non-negative coefficients minimizing the relative error over (features, measured ms) rows.

    A feature no row exercises (a precision not calibrated) keeps its ``base`` (roofline) coefficient.
    """
    from scipy.optimize import nnls

    a = np.array([[f[k] for k in FEATURES] for f, _ in rows], dtype=np.float64)
    y = np.array([ms for _, ms in rows], dtype=np.float64)
    scale = a.max(axis=0)
    scale[scale == 0] = 1.0
    coef, _ = nnls((a / scale) / y[:, None], np.ones_like(y))
    coef = coef / scale
    predicted = a @ coef
    mape = float(np.median(np.abs(predicted - y) / y))
    used = a.max(axis=0) > 0
    return {k: float(c) if u else base[k] for k, c, u in zip(FEATURES, coef, used, strict=True)}, mape


def micro_models(count: int, seed: int = 0) -> list[tuple[str, Any]]:
    """``count`` small tf_keras models spanning dense and depthwise convolutions, dense layers, widths
    and resolutions: the calibration set (generated, so nothing is downloaded)."""
    import tf_keras as k

    rng = np.random.default_rng(seed)
    out = []
    kinds = ["conv", "depthwise", "dense", "mixed"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        size = int(rng.choice([16, 24, 32, 48]))
        width = int(rng.choice([8, 16, 32, 64]))
        depth = int(rng.integers(1, 5))
        inp = k.Input((size * 8,)) if kind == "dense" else k.Input((size, size, 3))
        x = inp
        for _ in range(depth):
            if kind == "conv" or (kind == "mixed" and rng.random() < 0.5):
                x = k.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
            elif kind in ("depthwise", "mixed"):
                x = k.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
                x = k.layers.Conv2D(width, 1, activation="relu")(x)
            else:
                x = k.layers.Dense(width * 8, activation="relu")(x)
        if kind != "dense":
            x = k.layers.GlobalAveragePooling2D()(x)
        x = k.layers.Dense(10)(x)
        out.append((f"micro{i:02d}-{kind}-{size}px-{width}w-{depth}d", k.Model(inp, x)))
    return out


def calibrate(profile: str | Profile, device: str = "local", *, count: int = 16, precisions: list[str] | None = None,
              settings: Any = None, store: Any = None, save: bool = True,
              progress: Progress | None = None) -> Predictor:
    """Measure generated micro-models on ``device`` and fit the profile's predictor; save it.

    Raises:
        ProfileError: no precision of the profile can be calibrated. DeployError, MeasurementError: the
            device failed (nothing is saved).
    """
    from device_agent.protocol import BenchSettings

    from ..measure import bench
    from ..techniques import Step
    from ..techniques.conversion import convert

    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    # One precision per class is enough: fp16 runs as fp32 on CPUs, and a GPU computes everything as fp16.
    firsts: dict[str, str] = {}
    for name, klass in CLASSES.items():  # the first precision of each class (fp32, dynamic, int8, int16x8)
        firsts.setdefault(klass, name)
    classes = [firsts["float"]] if on_gpu(prof) else list(firsts.values())
    wanted = precisions or [p for p in classes if p in prof.precisions]
    if not wanted:
        raise ProfileError(f"profile {prof.name} runs none of {', '.join(classes or COST_CLASSES)}")
    from ..measure import with_accelerator

    settings = with_accelerator(settings or BenchSettings(runs=30, warmup=3, min_time_s=0.3), prof)
    say = progress or (lambda event: log.info(event.text))
    rows: list[tuple[dict[str, float], float]] = []
    first: Any = None
    with tempfile.TemporaryDirectory(prefix="edgesdk-calibrate-") as tmp:
        models = micro_models(count)
        for n, (name, model) in enumerate(models):
            for precision in wanted:
                shape = [1, *model.input_shape[1:]]
                calibration = np.random.default_rng(n).standard_normal([16, *shape[1:]]).astype(np.float32)
                path = Path(tmp) / f"{name}-{precision}.tflite"
                path.write_bytes(convert(model, Step(precision), calibration))
                done = n * len(wanted) + wanted.index(precision)
                say(Event(path.stem, done=done, total=len(models) * len(wanted)))
                m = bench(path, device, settings, store=store)
                first = first or m
                ms = typical_ms(m.latency)
                rows.append((features(analyze(path), prof), float(ms)))
    exercised = sum(1 for k in FEATURES if any(f[k] for f, _ in rows))  # one unknown per feature measured
    if len(rows) < exercised:
        raise MeasurementError(f"calibration needs at least {exercised} measurements; got {len(rows)}")
    coefficients, mape = fit_coefficients(rows, roofline(prof))
    predictor = Predictor(prof.name, coefficients, calibrated=True, precisions=wanted, device=device,
                          device_fingerprint=first.document["device"]["fingerprint"],
                          runtime=first.document["runtime"], samples=len(rows), fit_mape=mape,
                          accelerator=(first.document.get("accelerator") or {}).get("used"))
    if save:
        from ..fileio import write_atomic

        write_atomic(calibration_path(prof), json.dumps(predictor.to_dict(), indent=2).encode())
    return predictor
