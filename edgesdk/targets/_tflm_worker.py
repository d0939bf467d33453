"""Run by tflm.py in a child process: find the smallest tensor arena a model allocates in.

TFLite Micro reports why an allocation failed only on the C stderr, and a broken model could take
the interpreter down, so this runs apart from the host process. Prints one JSON object.
Usage: python -m edgesdk.targets._tflm_worker MODEL.tflite
"""

from __future__ import annotations

import json
import sys

ALIGN = 16           # TFLite Micro aligns arena allocations to 16 bytes
LIMIT = 1 << 30      # no MCU has a gigabyte of SRAM: past this the model does not allocate at all


def main(path: str) -> dict[str, object]:
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    data = open(path, "rb").read()

    def allocates(size: int) -> bool:
        try:
            runtime.Interpreter.from_bytes(data, arena_size=size)
            return True
        except RuntimeError:
            return False

    high = 1 << 14
    while not allocates(high):
        if high >= LIMIT:
            return {"arena_bytes": None, "error": "TFLite Micro could not allocate the model at any arena size"}
        high = min(high * 4, LIMIT)
    low = 0  # does not allocate (an empty arena never does)
    while high - low > ALIGN:
        mid = (low + high) // 2 // ALIGN * ALIGN
        if mid <= low:
            break
        if allocates(mid):
            high = mid
        else:
            low = mid
    interpreter = runtime.Interpreter.from_bytes(data, arena_size=high)
    index = 0
    while True:  # zeros in every input, then one inference: every kernel's Eval runs at this arena size
        try:
            details = interpreter.get_input_details(index)
        except Exception:  # noqa: BLE001 - the wrapper raises on an index past the last input
            break
        interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), index)
        index += 1
    interpreter.invoke()
    return {"arena_bytes": high, "error": None}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])), flush=True)
