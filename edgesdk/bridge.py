"""Rebuild a Keras 3 model as an equivalent tf_keras (Keras 2) model, weights included.

TensorFlow Model Optimization and the TFLite converter's Keras path work on tf_keras models only,
and tf_keras cannot read Keras 3 files. For models made of built-in layers the bridge rebuilds the
graph layer by layer from the Keras 3 config, translated to what tf_keras constructors accept, and
copies the weights. A layer tf_keras does not know is refused with its name.
"""

from __future__ import annotations

import inspect
from typing import Any

from .errors import ModelError

# Config keys every tf_keras layer accepts through **kwargs of the base Layer.
_BASE_KWARGS = {"name", "trainable", "dtype", "batch_input_shape", "input_shape", "batch_size",
                "input_dim", "dynamic", "autocast", "activity_regularizer"}
_POLICY_CLASSES = {"DTypePolicy", "FloatDTypePolicy", "Policy"}


def _translate(value: Any) -> Any:
    """Translate nested Keras 3 serialized objects into their tf_keras form."""
    if isinstance(value, dict):
        cls = value.get("class_name")
        if cls in _POLICY_CLASSES:
            return value.get("config", {}).get("name", "float32")
        if cls is not None and "config" in value:
            # keras 3: {"module", "class_name", "config", "registered_name"}; tf_keras wants two keys.
            return {"class_name": cls, "config": _translate(value["config"])}
        return {key: _translate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_translate(item) for item in value]
    return value


def _accepted_keys(cls: type) -> set[str]:
    keys: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        keys.update(name for name, p in params.items() if p.kind is not p.VAR_KEYWORD)
    return keys | _BASE_KWARGS


def _nested(key: str, value: Any) -> Any:
    """Initializers become their class name (the weights are copied anyway); regularizers and
    constraints keep only the arguments their tf_keras class accepts."""
    if not isinstance(value, dict) or "class_name" not in value:
        return value
    if key.endswith("_initializer"):
        return value["class_name"]
    import tf_keras

    module = tf_keras.regularizers if key.endswith("_regularizer") else tf_keras.constraints
    cls = getattr(module, value["class_name"], None)
    if cls is None:
        raise ModelError(f"{key}: {value['class_name']!r} has no tf_keras equivalent")
    accepted = _accepted_keys(cls)
    return {"class_name": value["class_name"],
            "config": {k: v for k, v in value.get("config", {}).items() if k in accepted}}


def _layer_config(layer_cls: type, class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    config = dict(config)
    if class_name == "InputLayer":
        shape = config.pop("batch_shape", None)
        if shape is not None:
            config["batch_input_shape"] = shape
        config.pop("optional", None)
    translated = {key: _nested(key, value) for key, value in _translate(config).items()}
    accepted = _accepted_keys(layer_cls)
    return {key: value for key, value in translated.items() if key in accepted}


def _tf_keras_layer_class(class_name: str, layer_name: str) -> Any:
    import tf_keras

    layer_cls = getattr(tf_keras.layers, class_name, None)
    if layer_cls is None or not isinstance(layer_cls, type):
        raise ModelError(
            f"layer {layer_name!r} of class {class_name!r} is a custom or Keras-3-only layer that the "
            "Keras 3 -> tf_keras bridge cannot rebuild; use built-in layers, or export the model to "
            "SavedModel/.tflite for quantization-only recipes")
    return layer_cls


def _history(tensor: Any) -> tuple[str, int, int]:
    """(layer name, node index, tensor index) of a serialized Keras 3 symbolic tensor."""
    if isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__":
        name, node, index = tensor["config"]["keras_history"]
        return name, int(node), int(index)
    raise ModelError(f"unsupported call argument in a Keras 3 model config. Received: {tensor!r}")


def _map_structure(fn: Any, item: Any) -> Any:
    if isinstance(item, dict) and item.get("class_name") == "__keras_tensor__":
        return fn(item)
    if isinstance(item, (list, tuple)):
        return [_map_structure(fn, x) for x in item]
    return item


def to_tf_keras(model: Any) -> Any:
    """Return a tf_keras model equivalent to the Keras 3 ``model``, with its weights.

    Raises:
        ModelError: for subclassed models or layers tf_keras does not have.
    """
    import tf_keras

    cls_name = type(model).__name__
    if cls_name not in ("Functional", "Sequential"):
        raise ModelError(f"only Functional and Sequential Keras 3 models can be bridged to tf_keras. "
                         f"Received: a subclassed model of class {cls_name!r}")
    config = model.get_config()
    made: dict[str, Any] = {}
    # outputs[(layer, node)] -> list of output tensors of that call
    outputs: dict[tuple[str, int], list[Any]] = {}

    if cls_name == "Sequential":
        seq = tf_keras.Sequential(name=config.get("name"))
        for entry in config["layers"]:
            layer_cls = _tf_keras_layer_class(entry["class_name"], entry["config"].get("name", "?"))
            if entry["class_name"] == "InputLayer":
                cfg = _layer_config(layer_cls, "InputLayer", entry["config"])
                # named as in the source: an auto name (input_1, input_2, ...) counts up in the process,
                # so converting one model twice would give two files
                seq.add(tf_keras.Input(batch_shape=cfg["batch_input_shape"], dtype=cfg.get("dtype"),
                                       name=entry["config"].get("name")))
                continue
            layer = layer_cls.from_config(_layer_config(layer_cls, entry["class_name"], entry["config"]))
            seq.add(layer)
            made[layer.name] = layer
        if not seq.built:
            shape = getattr(model, "input_shape", None)
            if shape is None:
                raise ModelError("the Sequential Keras 3 model has no input shape; build it first")
            seq.build(shape)
        result = seq
    else:
        node_counts: dict[str, int] = {}
        for entry in config["layers"]:
            name = entry["name"]
            layer_cls = _tf_keras_layer_class(entry["class_name"], name)
            cfg = _layer_config(layer_cls, entry["class_name"], entry["config"])
            if entry["class_name"] == "InputLayer":
                tensor = tf_keras.Input(batch_shape=cfg["batch_input_shape"], dtype=cfg.get("dtype"),
                                        name=name)
                outputs[(name, 0)] = [tensor]
                continue
            layer = layer_cls.from_config(cfg)
            made[name] = layer
            for node in entry.get("inbound_nodes", []):
                def resolve(t: Any) -> Any:
                    src, node_idx, idx = _history(t)
                    return outputs[(src, node_idx)][idx]

                args = _map_structure(resolve, node.get("args", []))
                kwargs = {k: _map_structure(resolve, v) for k, v in node.get("kwargs", {}).items()}
                out = layer(*args, **kwargs)
                idx = node_counts.get(name, 0)
                node_counts[name] = idx + 1
                outputs[(name, idx)] = list(out) if isinstance(out, (list, tuple)) else [out]

        def pick(refs: Any) -> list[Any]:
            # Keras 3 may write a single [name, node, index] instead of a list of them.
            if refs and isinstance(refs[0], str):
                refs = [refs]
            return [outputs[(n, int(i))][int(j)] for n, i, j in refs]

        ins, outs = pick(config["input_layers"]), pick(config["output_layers"])
        result = tf_keras.Model(ins if len(ins) > 1 else ins[0], outs if len(outs) > 1 else outs[0],
                                name=config.get("name"))

    for layer in model.layers:
        if layer.name in made:
            try:
                made[layer.name].set_weights(layer.get_weights())
            except ValueError as exc:
                raise ModelError(f"layer {layer.name!r}: weights do not fit its tf_keras twin: {exc}") from exc
    return result
