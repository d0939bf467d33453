"""Whether the host's runtime can run a model: every model edgesdk writes or crowns is loaded and invoked
once first (:func:`check`), in a child process (``_smoke_worker``), since a broken model can crash the
interpreter. A model whose custom operators have no kernel here cannot be run on this host; that is said,
not taken for a failure."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 300


@dataclass(frozen=True)
class Smoke:
    """What one load-and-invoke on the host's interpreter gave."""

    ran: bool
    error: str | None = None       # the runtime's reason when it did not run
    custom: bool = False            # it did not run because a custom operator has no kernel here

    @property
    def broken(self) -> bool:
        """The runtime refused or crashed on the model for a reason other than a missing custom kernel."""
        return not self.ran and not self.custom


def check(model: bytes) -> Smoke:
    """Load ``model`` in the host's LiteRT interpreter, allocate it and invoke it once on zeros."""
    with tempfile.TemporaryDirectory(prefix="edgesdk-smoke-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(model)
        try:
            proc = subprocess.run([sys.executable, "-m", "edgesdk.tflite._smoke_worker", str(path)],
                                  capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
                                  env=_quiet_env())
        except subprocess.TimeoutExpired:
            return Smoke(False, f"one inference took over {TIMEOUT_S} s on the host")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
        return Smoke(False, f"the interpreter crashed loading or running it ({how})")
    doc = json.loads(lines[-1])
    if doc["error"] is None:
        return Smoke(True)
    return Smoke(False, str(doc["error"]), bool(doc.get("custom")))


def _quiet_env() -> dict[str, str]:
    import os

    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
