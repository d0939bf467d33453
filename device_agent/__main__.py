"""`python3 -m device_agent bench MODEL.tflite ...` or `... info`: print one JSON document on stdout.

Anything the runtime prints is sent to stderr so that stdout carries exactly one JSON document.
On failure the document has schema ``edgesdk.error/1`` (error: no_runtime, no_accelerator, unsupported_model,
not_found, missing_dependency or failed) and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from . import runtime, sysinfo
from .protocol import ACCELERATORS, ERROR_SCHEMA, INFO_SCHEMA, BenchSettings

EXIT_ERROR = 3
DEFAULT = BenchSettings()


def parser() -> argparse.ArgumentParser:
    """The agent's command line (the adb transport reads it too, to speak for a device without python)."""
    p = argparse.ArgumentParser(prog="device_agent", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="measure a .tflite model")
    b.add_argument("model")
    b.add_argument("--runs", type=int, default=DEFAULT.runs, help=f"minimum timed runs (default {DEFAULT.runs})")
    b.add_argument("--warmup", type=int, default=DEFAULT.warmup, help=f"untimed runs first (default {DEFAULT.warmup})")
    b.add_argument("--min-time", type=float, default=DEFAULT.min_time_s, help="minimum seconds of timed runs")
    b.add_argument("--threads", type=int, default=None, help="interpreter threads (default: runtime's)")
    b.add_argument("--max-cv", type=float, default=DEFAULT.max_cv, help="re-measure above this variation")
    b.add_argument("--retries", type=int, default=DEFAULT.retries, help="re-measurements allowed")
    b.add_argument("--windows", type=int, default=DEFAULT.windows, help="split the timed runs into this many "
                   "windows; if their medians differ by over 10%% (the device changed speed), report the quietest "
                   f"(default {DEFAULT.windows})")
    b.add_argument("--seed", type=int, default=DEFAULT.seed, help="seed of the generated inputs")
    b.add_argument("--power-cmd", default=None, help="a command that prints the power in watts (external meter)")
    b.add_argument("--no-power", action="store_true", help="skip the energy measurement")
    b.add_argument("--delegate", default=None, help="'none' to run without the runtime's default delegate "
                   "(XNNPACK), or the path of a delegate library to load (default: the runtime's own)")
    b.add_argument("--accelerator", default=None, choices=ACCELERATORS, help="run the model on the cpu (the "
                   "interpreter), gpu or npu (LiteRT's CompiledModel, with the CPU for what they cannot run), or auto "
                   "(the NPU, else the GPU, else the CPU); the outputs of an accelerator are checked against the CPU's")
    b.add_argument("--inputs", default=None, help="an .npz of samples (arrays input_0, input_1 ... batch first, and "
                   "'names': the input tensor names) to feed instead of generated inputs")
    b.add_argument("--runtime", default=None, help="require this runtime module")
    b.add_argument("--lock", default=None, help="hold an exclusive lock on this file while measuring, so that "
                   "measurements on one device never overlap")
    i = sub.add_parser("info", help="describe the device and its TFLite runtime")
    i.add_argument("--check", default=None, metavar="PROBE",
                   help="also report whether the runtime has a kernel for every operator (and version) of this "
                        "model; the host sends a tiny probe with the real model's operator table")
    return p


def _lock(path: str) -> Any:
    import fcntl

    handle = open(path, "a")  # noqa: SIM115 - held open for the whole measurement
    fcntl.flock(handle, fcntl.LOCK_EX)  # waits while another measurement runs
    return handle


def _info(check: str | None = None) -> dict[str, Any]:
    from . import power

    source, note = power.discover()
    doc: dict[str, Any] = {"schema": INFO_SCHEMA, "device": sysinfo.describe(),
                           "power": {"source": source.name if source else None, "reason": None if source else note}}
    try:
        found = runtime.load()
        doc["runtime"] = {"name": found.name, "version": found.version}
    except runtime.NoRuntimeError as exc:
        doc["runtime"] = None
        doc["runtime_error"] = str(exc)
        return doc
    if check is not None:
        try:
            found.open(check)
            doc["model_check"] = {"ok": True, "message": None}
        except runtime.UnsupportedModel as exc:
            doc["model_check"] = {"ok": False, "message": str(exc)}
    return doc


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # C-level prints from runtimes land on stderr, not in our JSON
    sys.stdout = sys.stderr
    try:
        if args.command == "info":
            doc = _info(args.check)
        else:
            from . import bench  # numpy is only needed to measure

            lock = _lock(args.lock) if args.lock else None
            settings = BenchSettings(runs=args.runs, warmup=args.warmup, min_time_s=args.min_time,
                                     threads=args.threads, max_cv=args.max_cv, retries=args.retries,
                                     windows=args.windows, seed=args.seed, power=not args.no_power,
                                     power_cmd=args.power_cmd, delegate=args.delegate,
                                     accelerator=args.accelerator, inputs=args.inputs)
            try:
                doc = bench.run(args.model, settings, args.runtime)
            finally:
                if lock is not None:
                    lock.close()  # closing the descriptor releases the flock
        code = 0
    except runtime.UnsupportedModel as exc:
        doc, code = {"schema": ERROR_SCHEMA, "error": "unsupported_model", "message": str(exc)}, EXIT_ERROR
    except runtime.NoRuntimeError as exc:
        doc, code = {"schema": ERROR_SCHEMA, "error": "no_runtime", "message": str(exc)}, EXIT_ERROR
    except runtime.NoAccelerator as exc:
        doc, code = {"schema": ERROR_SCHEMA, "error": "no_accelerator", "message": str(exc)}, EXIT_ERROR
    except FileNotFoundError as exc:
        doc, code = {"schema": ERROR_SCHEMA, "error": "not_found", "message": str(exc)}, EXIT_ERROR
    except ImportError as exc:
        doc, code = {"schema": ERROR_SCHEMA, "error": "missing_dependency", "message": str(exc)}, EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the host must get a document, never a bare traceback
        doc = {"schema": ERROR_SCHEMA, "error": "failed", "message": f"{type(exc).__name__}: {exc}"}
        code = EXIT_ERROR
    real_stdout.write(json.dumps(doc) + "\n")
    real_stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
