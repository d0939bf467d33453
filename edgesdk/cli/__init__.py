"""The `edgesdk` command line: parse arguments, call the API, print with rich. One module per command
group over the API (:mod:`.model`, :mod:`.search`, :mod:`.bench`, :mod:`.devices`, :mod:`.profiles`,
:mod:`.suite`); :mod:`.common` holds the consoles and shared options. Nothing else lives here."""

from __future__ import annotations

import logging
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

from .. import _native, interrupt
from ..errors import EdgeSdkError

# isort: off
from . import model, search, bench, profiles, devices, suite  # noqa: F401 - each registers its commands, in --help order
# isort: on
from .app import app
from .common import brief, err, os_error, tag

log = logging.getLogger(__name__)

INTERRUPTED = 130   # the shell's code for SIGINT


def main(argv: list[str] | None = None) -> int:
    """Entry point: every error becomes one line on stderr and a non-zero exit code, never a traceback.

    Usage errors are click's (exit 2 with the usage line); edgesdk's own errors print their message.
    """
    _native.quiet_tensorflow_imports()
    try:
        with interrupt.watch():  # an error raised after Ctrl-C (a converter that wrapped it) is the interrupt
            app(args=argv, prog_name="edgesdk", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if code and (code == INTERRUPTED or interrupt.requested()):
            err.print("interrupted; nothing half-written was kept")
            return INTERRUPTED
        return code
    except EdgeSdkError as exc:
        err.print(tag("error:", "red"), brief(str(exc)), highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted; nothing half-written was kept")
        return INTERRUPTED
    except OSError as exc:  # a file system said no: a directory, /proc, read-only, full, no permission
        err.print(tag("error:", "red"), brief(os_error(exc)), highlight=False)
        log.debug("file system error", exc_info=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - last resort: a one-line report, traceback on request
        if os.environ.get("EDGESDK_DEBUG"):
            raise
        err.print(tag("internal error:", "red"),
                  f"{type(exc).__name__}: {brief(str(exc))} (set EDGESDK_DEBUG=1 for a traceback)", highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

