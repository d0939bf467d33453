"""Post-training quantization of a float32 .tflite, for models that come without their source.

Two tools, each where it is the better one:

- The converter's own calibration wrapper (``Calibrator`` and ``mlir_quantize``, the code behind
  ``TFLiteConverter``'s int8 and int16x8 modes and its QuantizationDebugger) for ``int8``, ``int8=io``,
  ``int16x8`` and ``mixed=F``: given the float .tflite, it produces what the converter produces from the
  source, op for op.
- ai-edge-quantizer for ``dynamic``, weight-only int8/int4 and the per-layer ``mixed=int16x8:F`` and
  ``mixed=int4:F``, which the converter cannot do on a flatbuffer.

The model is first :func:`edgesdk.tflite.graph.normalize`-d (float32 weights, a signature). Calibration
samples come as one array per model input (an ndarray for a single input).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._native import quiet
from ..errors import RecipeError

log = logging.getLogger(__name__)
DEBUG_SAMPLES = 32          # calibration samples the per-layer error is measured on
DYNAMIC_MIN_ELEMENTS = 1024  # the converter leaves smaller weights float in dynamic-range mode


def per_input(calibration: Any) -> list[np.ndarray]:
    """Calibration samples as one array (samples first) per model input."""
    if isinstance(calibration, np.ndarray):
        return [calibration]
    return [np.asarray(a) for a in calibration]


def input_types(model: bytes) -> list[Any]:
    """The numpy type of each model input (token ids are integers, images float)."""
    from ai_edge_litert.interpreter import Interpreter

    with quiet():
        return [d["dtype"] for d in Interpreter(model_content=model).get_input_details()]


def generator(calibration: Any, types: Sequence[Any], limit: int | None = None,
              ) -> Callable[[], Iterator[list[np.ndarray]]]:
    """A representative dataset: for each sample, one array (batch of one, of the input's type) per input."""
    arrays = per_input(calibration)

    def gen() -> Iterator[list[np.ndarray]]:
        for i in range(len(arrays[0]) if limit is None else min(limit, len(arrays[0]))):
            yield [a[i][None, ...].astype(kind) for a, kind in zip(arrays, types, strict=True)]
    return gen


def last_line(exc: BaseException) -> str:
    """The line of a converter or quantizer error that says what went wrong (its last), or its type."""
    lines = str(exc).strip().splitlines()
    return lines[-1][:300] if lines else type(exc).__name__


def _fail(what: str, exc: BaseException, custom: Sequence[str]) -> RecipeError:
    hint = (f"; the model has custom operators ({', '.join(custom)}) that this runtime has no kernel for, so it "
            "cannot run on calibration data") if custom else ""
    return RecipeError(f"{what}: {last_line(exc)}{hint}")


def calibrate(float_model: bytes, calibration: Any, custom: Sequence[str] = ()) -> bytes:
    """The model with each tensor's range from the samples recorded in it (the converter's first half)."""
    from tensorflow.lite.python.optimize import calibrator

    try:
        with quiet():
            model = calibrator.add_intermediate_tensors(float_model)
            return bytes(calibrator.Calibrator(model).calibrate(generator(calibration, input_types(float_model))))
    except Exception as exc:  # noqa: BLE001 - the calibration wrapper raises many types
        raise _fail("calibration failed", exc, custom) from exc


def int8(float_model: bytes, calibration: Any, io: bool, custom: Sequence[str] = ()) -> bytes:
    """Full-integer int8, as ``TFLiteConverter`` makes it (dense layers with one scale per tensor)."""
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    calibrated = calibrate(float_model, calibration, custom)
    kind = tf.int8 if io else tf.float32
    try:
        with quiet():
            return bytes(mlir_quantize(calibrated, False, input_data_type=kind, output_data_type=kind,
                                       disable_per_channel_for_dense_layers=True))
    except Exception as exc:  # noqa: BLE001
        raise _fail("int8 quantization failed", exc, custom) from exc


def int16x8(float_model: bytes, calibration: Any, custom: Sequence[str] = ()) -> bytes:
    """int16 activations with int8 weights (the converter's 16x8 mode)."""
    import tensorflow as tf
    from tensorflow.lite.python.optimize import calibrator

    try:
        with quiet():
            model = calibrator.add_intermediate_tensors(float_model)
            return bytes(calibrator.Calibrator(model).calibrate_and_quantize(
                generator(calibration, input_types(float_model)), tf.float32, tf.float32, False, tf.int16, tf.int64,
                disable_per_channel=False, disable_per_channel_quantization_for_dense_layers=True))
    except Exception as exc:  # noqa: BLE001
        raise _fail("int16x8 quantization failed", exc, custom) from exc


@dataclass(frozen=True)
class LayerError:
    """One layer's error when quantized to int8: its operator, its output tensor, and the RMSE of its
    output over its quantization step (how many steps of its own grid it is off: the converter
    documentation's measure of sensitivity)."""

    op: str
    tensor: str
    rmse_per_step: float


def statistics(debugger: Any) -> list[LayerError]:
    """The QuantizationDebugger's per-layer rows, worst first by RMSE over the quantization step."""
    text = io.StringIO()
    debugger.layer_statistics_dump(text)
    rows = []
    for row in csv.DictReader(io.StringIO(text.getvalue())):
        scale, mse = float(row["scale"]), float(row["mean_squared_error"])
        if row["op_name"] in ("QUANTIZE", "DEQUANTIZE") or scale <= 0:
            continue
        rows.append(LayerError(row["op_name"], row["tensor_name"], float(np.sqrt(mse)) / scale))
    return sorted(rows, key=lambda r: -r.rmse_per_step)


def layer_errors(float_model: bytes, calibration: Any, custom: Sequence[str] = (),
                 calibrated: bytes | None = None) -> list[LayerError]:
    """Each layer's int8 error on the samples (see :func:`statistics`); ``calibrated``: the model as
    :func:`calibrate` gave it, when the caller has it already."""
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    calibrated = calibrated or calibrate(float_model, calibration, custom)
    try:
        with quiet():
            debug_model = mlir_quantize(calibrated, enable_numeric_verify=True)
            debugger = tf.lite.experimental.QuantizationDebugger(
                quant_debug_model_content=debug_model, float_model_content=float_model,
                debug_dataset=generator(calibration, input_types(float_model), DEBUG_SAMPLES))
            debugger.run()
            return statistics(debugger)
    except Exception as exc:  # noqa: BLE001
        raise _fail("the quantization debugger failed", exc, custom) from exc


def mixed_float(float_model: bytes, fraction: float, calibration: Any, custom: Sequence[str] = ()) -> bytes:
    """int8 with the ceil(fraction x layers) most sensitive layers left float."""
    from tensorflow.lite.python.convert import mlir_quantize

    calibrated = calibrate(float_model, calibration, custom)
    errors = layer_errors(float_model, calibration, custom, calibrated)
    keep = [r.tensor for r in errors[:max(1, int(np.ceil(fraction * len(errors))))]]
    log.info("mixed: %d of %d layers kept float", len(keep), len(errors))
    try:
        with quiet():
            return bytes(mlir_quantize(calibrated, denylisted_nodes=keep))
    except Exception as exc:  # noqa: BLE001
        raise _fail("mixed precision failed", exc, custom) from exc


# --- ai-edge-quantizer ----------------------------------------------------------------------------------

def signature(model: bytes) -> tuple[str, list[str]]:
    """The model's signature key and its input names, in the order the calibration arrays come."""
    from ai_edge_litert.interpreter import Interpreter

    with quiet():
        interp = Interpreter(model_content=model)
    signatures = interp.get_signature_list()
    if not signatures:
        raise RecipeError("the model has no signature (normalize it first)")
    name = next(iter(signatures))
    runner = interp.get_signature_runner(name)
    by_index = {d["index"]: key for key, d in runner.get_input_details().items()}
    order = [by_index[d["index"]] for d in interp.get_input_details() if d["index"] in by_index]
    return name, order or list(signatures[name]["inputs"])


def aeq(float_model: bytes, configure: Callable[[Any], None], calibration: Any, what: str) -> bytes:
    """Quantize with ai-edge-quantizer: ``configure(quantizer)`` adds the rules; calibrated when samples
    are given (static rules need them)."""
    from absl import logging as absl_logging
    from ai_edge_quantizer import quantizer

    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)  # it logs a warning for every config it overrides
    try:
        with quiet():
            q = quantizer.Quantizer(float_model)
            configure(q)
            if calibration is None:
                return bytes(q.quantize(enable_progress_report=False).quantized_model)
            key, names = signature(float_model)
            samples = [dict(zip(names, sample, strict=True))
                       for sample in generator(calibration, input_types(float_model))()]
            result = q.calibrate({key: samples}, num_threads=1)
            return bytes(q.quantize(result, enable_progress_report=False).quantized_model)
    except RecipeError:
        raise
    except Exception as exc:  # noqa: BLE001 - ai-edge-quantizer raises many types
        raise _fail(f"{what} failed in ai-edge-quantizer", exc, ()) from exc
    finally:
        absl_logging.set_verbosity(verbosity)


def _rules(q: Any, dynamic: bool, bits: int) -> None:
    """int-N weights for every op ai-edge-quantizer supports; a fully connected layer gets one scale per
    tensor, as the converter gives it (per-channel scales cost 12 bytes per output unit)."""
    from ai_edge_quantizer import qtyping

    add = q.add_dynamic_config if dynamic else q.add_weight_only_config
    add(".*", "*", bits)
    add(".*", "FULLY_CONNECTED", bits, granularity=qtyping.QuantGranularity.TENSORWISE)
    if dynamic:  # as the converter: small weights stay float (their int8 kernels cost more than they save)
        recipe = q.get_quantization_recipe()
        for rule in recipe:
            rule["op_config"]["min_weight_elements"] = DYNAMIC_MIN_ELEMENTS
        q.load_quantization_recipe(recipe)


def dynamic(float_model: bytes) -> bytes:
    """Dynamic-range: int8 weights, activations quantized on the fly by the kernels, as the converter
    makes it: the weights of fully connected ops (one scale), convolutions (one per output channel) and
    depthwise convolutions (one per channel) with at least DYNAMIC_MIN_ELEMENTS values, stored as int8
    and read by the hybrid kernels.
    ai-edge-quantizer's dynamic recipe leaves convolutions float, so it only serves models with
    neither (its other ops: batch matmul, embedding lookup)."""
    from tensorflow.lite.python import schema_py_generated as schema

    from .graph import FLOAT32, INT8, Graph

    graph = Graph(float_model)
    uses = graph.consumers()
    done = 0
    for _, op in graph.ops("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"):
        index = int(op.inputs[1])
        w = graph.constant(index)
        if w is None or graph.tensor(index).type != FLOAT32 or w.size < DYNAMIC_MIN_ELEMENTS \
                or len(uses.get(index, [])) != 1:
            continue
        axis = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3}.get(graph.op_name(op))  # None: one scale
        view = [1] * w.ndim
        if axis is None:
            peak = np.array([np.abs(w).max()])
        else:
            peak = np.abs(np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)).max(axis=1)
            view[axis] = -1
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        graph.set_constant(index, np.clip(np.round(w / scale.reshape(view)), -127, 127).astype(np.int8),
                           tensor_type=INT8)
        q = schema.QuantizationParametersT()
        q.scale, q.zeroPoint, q.quantizedDimension = scale, np.zeros(len(scale), np.int64), axis or 0
        graph.tensor(index).quantization = q
        done += 1
    if not done:
        return aeq(float_model, lambda q: _rules(q, True, 8), None, "dynamic")
    return graph.to_bytes()


def weight_only(float_model: bytes, bits: int) -> bytes:
    """int-N weights behind DEQUANTIZE ops; the arithmetic stays float."""
    return aeq(float_model, lambda q: _rules(q, False, bits), None, f"weight-only int{bits}")


def mixed_aeq(float_model: bytes, errors: list[LayerError], kind: str, fraction: float, calibration: Any) -> bytes:
    """int8 throughout, and per layer either int16 activations (``int16x8``: the most sensitive layers) or
    int4 weights (``int4``: the least sensitive convolutions and fully connected layers); inputs and
    outputs stay float. ai-edge-quantizer inserts the QUANTIZE ops between int8 and int16."""
    from ai_edge_quantizer import default_policy

    chosen = chosen_layers(errors, kind, fraction)
    if not chosen:
        raise RecipeError(f"mixed={kind}:{fraction:g}: the model has no convolution or fully connected layer "
                          "for int4 weights")
    log.info("mixed: %d of %d layers get %s", len(chosen), len(errors), kind)
    policy = json.loads(default_policy.DEFAULT_JSON_POLICY)["ops_per_config"]
    int8_ops = sorted({op for op in policy["static_wi8_ai8"] if op not in ("INPUT", "OUTPUT")})

    def configure(q: Any) -> None:
        for op in int8_ops:
            q.add_static_config(".*", op, 8, 8)
        for row in chosen:
            regex = f"^{re.escape(row.tensor)};$"  # an op's scope: its output names, each ended by ';'
            if kind == "int16x8":
                q.add_static_config(regex, row.op, 16, 8)
            else:
                q.add_static_config(regex, row.op, 8, 4)
    return aeq(float_model, configure, calibration, f"mixed={kind}:{fraction:g}")


def chosen_layers(errors: list[LayerError], kind: str, fraction: float) -> list[LayerError]:
    """The layers that get ``kind``: for int16x8 the most sensitive ones; for int4 weights the least
    sensitive convolutions and fully connected layers (the ones LiteRT runs with int4 weights)."""
    if kind == "int16x8":
        return errors[:max(1, int(np.ceil(fraction * len(errors))))]
    candidates = [r for r in reversed(errors) if r.op in ("CONV_2D", "FULLY_CONNECTED")]
    return candidates[:max(1, int(np.ceil(fraction * len(candidates))))] if candidates else []
