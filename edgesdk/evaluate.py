"""Quality of a compressed model: accuracy with labels, fidelity to the float model without.

Both models run here on the host through LiteRT, sample by sample, with quantized inputs and
outputs handled through their scale and zero point.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .quality import Quality
from .tflite.facts import ModelReport


def predict(model_bytes: bytes, x: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """Outputs (first output tensor, dequantized to float) of a .tflite model for every sample; ``x`` is
    one array (samples first) per model input, in the model's input order (an array for one input)."""
    return next(iter(predict_outputs(model_bytes, x).values()))


def predict_outputs(model_bytes: bytes, x: np.ndarray | list[np.ndarray]) -> dict[str, np.ndarray]:
    """Every output tensor of a .tflite model for every sample, dequantized to float, by output name in
    the model's output order (see :func:`predict`)."""
    from ai_edge_litert.interpreter import Interpreter

    from ._native import quiet

    with quiet():
        interp = Interpreter(model_content=model_bytes)
        interp.allocate_tensors()
    arrays = [x] if isinstance(x, np.ndarray) else list(x)
    inputs = interp.get_input_details()
    outputs = interp.get_output_details()
    results: list[list[np.ndarray]] = [[] for _ in outputs]
    for i in range(len(arrays[0])):
        for inp, array in zip(inputs, arrays, strict=True):
            interp.set_tensor(inp["index"], _fed(inp, array[i]))
        interp.invoke()
        for out, found in zip(outputs, results, strict=True):
            result = interp.get_tensor(out["index"]).astype(np.float32)
            scale, zero = out["quantization"]
            if np.issubdtype(out["dtype"], np.integer) and scale:
                result = (result - zero) * scale
            found.append(result[0])
    named: dict[str, np.ndarray] = {}
    for n, (out, found) in enumerate(zip(outputs, results, strict=True)):
        named[out["name"] if out["name"] and out["name"] not in named else f"output_{n}"] = np.stack(found)
    return named


def paired_outputs(reference: dict[str, np.ndarray],
                   test: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The outputs of two versions of one model, paired: by name where both have the same names (a
    converter may reorder outputs), else in order; pairs whose shapes differ are left out."""
    if set(reference) == set(test):
        pairs = [(name, reference[name], test[name]) for name in reference]
    else:
        pairs = [(name, ref, other) for (name, ref), other in zip(reference.items(), test.values(), strict=False)]
    return [(name, ref, other) for name, ref, other in pairs if ref.shape == other.shape]


def first_overflow(model_bytes: bytes, x: np.ndarray | list[np.ndarray]) -> str | None:
    """The first float tensor (by name, with the sample) that is not finite when the float model runs on
    ``x``: calibration statistics with an infinite range crash the converter's quantizer (a segfault,
    not an error). None when every value stays finite."""
    from ai_edge_litert.interpreter import Interpreter

    from ._native import quiet

    with quiet():
        interp = Interpreter(model_content=model_bytes, experimental_preserve_all_tensors=True)
        interp.allocate_tensors()
    arrays = [x] if isinstance(x, np.ndarray) else list(x)
    inputs = interp.get_input_details()
    tensors = [t for t in interp.get_tensor_details() if np.issubdtype(t["dtype"], np.floating)]
    for i in range(len(arrays[0])):
        for inp, array in zip(inputs, arrays, strict=True):
            interp.set_tensor(inp["index"], _fed(inp, array[i]))
        interp.invoke()
        for t in tensors:
            try:
                value = interp.get_tensor(t["index"])
            except ValueError:  # a tensor without data (an unused optional)
                continue
            if not np.isfinite(value).all():
                return f"{t['name'] or t['index']} on sample {i}"
    return None


def device_inputs(model_bytes: bytes, x: np.ndarray | list[np.ndarray], limit: int) -> dict[str, np.ndarray]:
    """Up to ``limit`` samples of ``x`` (one array per input, samples first) as the model's input tensors
    take them (shape, type, quantized through the input's scale), in the file the device agent reads with
    ``--inputs``: ``names`` (the input tensor names) and ``input_i``."""
    from ai_edge_litert.interpreter import Interpreter

    from ._native import quiet

    with quiet():
        inputs = Interpreter(model_content=model_bytes).get_input_details()
    arrays = [x] if isinstance(x, np.ndarray) else list(x)
    count = min(limit, len(arrays[0]))
    out: dict[str, np.ndarray] = {"names": np.array([inp["name"] for inp in inputs])}
    for i, (inp, array) in enumerate(zip(inputs, arrays, strict=True)):
        out[f"input_{i}"] = np.concatenate([_fed(inp, array[j]) for j in range(count)])
    return out


def _fed(inp: dict[str, Any], sample: np.ndarray) -> np.ndarray:
    """One sample as an input tensor takes it: batch of one, quantized through its scale and zero point."""
    value = sample[None, ...].reshape(inp["shape"]) if sample.size == np.prod(inp["shape"]) else sample[None, ...]
    scale, zero = inp["quantization"]
    if np.issubdtype(inp["dtype"], np.integer) and scale:
        info = np.iinfo(inp["dtype"])
        value = np.clip(np.round(value / scale + zero), info.min, info.max)
    return value.astype(inp["dtype"])


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio of ``test`` against ``reference``, in dB."""
    noise = float(np.sum((reference.astype(np.float64) - test) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    if noise == 0:
        return float("inf")
    return 10.0 * float(np.log10(signal / noise)) if signal > 0 else float("-inf")


def looks_like_classifier(report: ModelReport, y: np.ndarray | None) -> bool:
    """Integer labels, or a graph that ends in a softmax over several classes."""
    out = report.outputs[0]
    several = len(out.shape) == 2 and out.shape[1] > 1
    if y is not None:
        return several and np.issubdtype(y.dtype, np.integer)
    producers = [layer.op for layer in report.layers if layer.output == out.name]
    return several and bool(producers) and producers[-1] in ("SOFTMAX", "LOG_SOFTMAX")


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """The share of samples whose highest output is their label."""
    return float(np.mean(outputs.argmax(axis=1) == labels.reshape(-1)))


def quality(reference: np.ndarray | dict[str, np.ndarray], test: np.ndarray | dict[str, np.ndarray],
            y: np.ndarray | None, classifier: bool) -> dict[str, Any]:
    """Compare outputs: accuracy before/after with integer labels, fidelity (SQNR, and top-1
    agreement for classifiers) otherwise. The dict of a :class:`edgesdk.quality.Quality`.

    Given every output (dicts by name, from :func:`predict_outputs`), labels, accuracy and top-1
    agreement are the first output's; each output's SQNR is in ``outputs`` and ``sqnr_db`` is the lowest
    of them, so a candidate whose second output collapsed does not pass for faithful.
    """
    per_output: list[dict[str, Any]] = []
    if isinstance(reference, dict) or isinstance(test, dict):
        assert isinstance(reference, dict) and isinstance(test, dict)
        pairs = paired_outputs(reference, test)
        per_output = [{"name": name, "sqnr_db": sqnr_db(ref, other)} for name, ref, other in pairs]
        first = pairs[0] if pairs and pairs[0][0] == next(iter(reference)) else \
            (None, next(iter(reference.values())), next(iter(test.values())))
        reference, test = first[1], first[2]
    result: dict[str, Any] = {"samples": len(test), "sqnr_db": sqnr_db(reference, test)}
    if len(per_output) > 1:
        result.update(sqnr_db=min(o["sqnr_db"] for o in per_output), outputs=per_output)
    if y is not None and np.issubdtype(y.dtype, np.integer) and classifier:
        result.update(metric="accuracy", before=accuracy(reference, y), after=accuracy(test, y))
    elif y is not None:
        target = y.reshape(reference.shape).astype(np.float64)
        result.update(metric="mse", before=float(np.mean((reference - target) ** 2)),
                      after=float(np.mean((test - target) ** 2)))
    else:
        result["metric"] = "fidelity"
    if classifier:
        result["top1_agreement"] = float(np.mean(reference.argmax(axis=1) == test.argmax(axis=1)))
    checked = Quality.from_dict(result)
    assert checked is not None
    return checked.to_dict()
