"""Run by runnable.py in a child process: load a .tflite in the host's LiteRT interpreter, allocate it
and invoke it once on zeros. A broken model can take the interpreter down (a segfault), so this runs
apart from the host process. Prints one JSON object: {"error": null} or {"error": "...", "custom": bool}.
Usage: python -m edgesdk.tflite._smoke_worker MODEL.tflite
"""

from __future__ import annotations

import json
import sys

_CUSTOM = ("unresolved custom op", "didn't find custom op", "custom op")


def _feed(interp: object) -> None:
    import numpy as np

    for detail in interp.get_input_details():  # type: ignore[attr-defined]
        shape = [d if d > 0 else 1 for d in detail.get("shape_signature", detail["shape"])]
        if list(detail["shape"]) != shape:
            interp.resize_tensor_input(detail["index"], shape)  # type: ignore[attr-defined]
    interp.allocate_tensors()  # type: ignore[attr-defined]
    for detail in interp.get_input_details():  # type: ignore[attr-defined]
        interp.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))  # type: ignore[attr-defined]


def main(path: str) -> dict[str, object]:
    from ai_edge_litert.interpreter import Interpreter

    try:
        interp = Interpreter(model_path=path, experimental_preserve_all_tensors=False)
        interp.allocate_tensors()
        _feed(interp)
        interp.invoke()
    except Exception as exc:  # noqa: BLE001 - the runtime says why in any exception it raises
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        return {"error": text[:600] or type(exc).__name__, "custom": any(c in text.lower() for c in _CUSTOM)}
    return {"error": None}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])), flush=True)
