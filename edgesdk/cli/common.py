"""What every command shares: the two consoles, the common options, JSON and number printing."""

from __future__ import annotations

import errno
import itertools
import sys
from typing import Annotated, Any, Optional

import typer
from rich.console import Console, ConsoleDimensions
from rich.text import Text

from ..fileio import dumps

LOG_WIDTH = 1000   # columns when the output is not a terminal


class _Console(Console):
    """A console that squeezes nothing into 80 columns (or COLUMNS) when it writes to a pipe or a log (CI):
    run ids, recipes and numbers stay whole. A terminal keeps its own width."""

    @property
    def size(self) -> ConsoleDimensions:
        dims = Console.size.fget(self)  # type: ignore[attr-defined]
        if not self.is_terminal:  # a pipe has no width, whatever COLUMNS says
            return ConsoleDimensions(LOG_WIDTH, dims.height)
        return dims

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


# No console markup: every string printed may hold a file name, tensor name or message from a file, and
# "[/]" in one must print as it is, not crash or restyle the output. Style goes through `tag` (Text).
out = _Console(markup=False)
err = _Console(stderr=True, soft_wrap=True, markup=False)  # one error, one line


def tag(text: str, style: str) -> Text:
    """``text`` in ``style`` (e.g. "red", "bold"), printed as it is."""
    return Text(text, style=style)

StoreOpt = Annotated[Optional[str], typer.Option("--store", help="results store URL (SQLAlchemy); default: "
                                                 "EDGESDK_STORE or an SQLite file in your data directory")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON instead of tables")]
TrustOpt = Annotated[bool, typer.Option("--trust-model-code", help="load Keras layers that carry Python code "
                                        "(Lambda layers): loading runs that code, so only for "
                                        "files you trust; refused by default")]

def _accelerator(value: Optional[str]) -> Optional[str]:
    from device_agent.protocol import ACCELERATORS

    if value is not None and value.lower() not in ACCELERATORS:
        raise typer.BadParameter(f"expected one of {', '.join(ACCELERATORS)}. Received: {value!r}")
    return value.lower() if value else None


AcceleratorOpt = Annotated[Optional[str], typer.Option(
    "--accelerator", metavar="cpu|gpu|npu|auto", callback=_accelerator,
    help="run the model on the device's cpu (the TFLite interpreter), gpu or npu (LiteRT's CompiledModel; "
         "operators they cannot run go to the CPU, and the outputs are checked against the CPU's), or auto "
         "(the best one the device has); default: the profile's (mobile-gpu: gpu), else cpu")]


def print_json(doc: Any) -> None:
    sys.stdout.write(dumps(doc, indent=2, default=str) + "\n")


def human_bytes(n: int | None) -> str:
    """A byte count in the unit that fits (the one formatter, :func:`edgesdk.search.cells.size`)."""
    from ..search.cells import size

    return "n/a" if n is None else size(n)


def warn(messages: list[str]) -> None:
    for message in messages:
        err.print(tag("warning:", "yellow"), brief(message), highlight=False)


MAX_MESSAGE = 1200   # characters of one error message shown; an input echoed whole (100 KB) is cut


def brief(text: str) -> str:
    """A message as the user reads it, on one line: a line repeated in a row (a runtime's reporter says the
    same thing for every node) said once with its count, the lines joined, and at most ``MAX_MESSAGE``
    characters (the middle cut)."""
    parts = []
    for line, group in itertools.groupby(line.strip() for line in text.splitlines() if line.strip()):
        count = sum(1 for _ in group)
        parts.append(line if count == 1 else f"{line} (x{count})")
    text = " ".join(parts)
    if len(text) > MAX_MESSAGE:
        head, tail = MAX_MESSAGE * 3 // 4, MAX_MESSAGE // 4
        text = f"{text[:head]} … ({len(text) - head - tail:,} characters left out) … {text[-tail:]}"
    return text


def os_error(exc: OSError) -> str:
    """An OSError as a user reads it: the file, what the system said, and what usually helps."""
    where = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    hint = {errno.ENOSPC: "the disk is full; free space or write elsewhere",
            errno.EROFS: "the file system is read-only; write elsewhere",
            errno.EACCES: "permission denied; write elsewhere or fix the permissions",
            errno.EISDIR: "it is a directory; name a file",
            errno.ENOTDIR: "a part of the path is a file, not a directory",
            errno.EDQUOT: "the disk quota is exceeded"}.get(exc.errno or 0)
    text = exc.strerror or str(exc)
    return f"{where + ': ' if where else ''}{text}" + (f" ({hint})" if hint else "")

