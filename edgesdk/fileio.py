"""Files written whole or not at all: a temporary file (or folder) beside the target, renamed into place."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any


def make_dirs(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` and its parents; a file standing where a folder must be is said so (mkdir would
    only say "File exists").

    Raises:
        OSError: the folder cannot be made (NotADirectoryError naming the path for a file in the way).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder)) from exc
    return folder


def _mode(path: Path) -> int:
    """The permissions a file written in place of ``path`` gets: the old file's, else what the umask gives
    a new file (mkstemp's own 0600 would hide a report from everyone else)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mask = os.umask(0o022)
        os.umask(mask)
        return 0o666 & ~mask


def write_atomic(path: str | os.PathLike[str], content: bytes) -> None:
    """Write ``content`` to ``path`` through a temporary file in the same folder; on any failure (a full
    disk, an interrupt) the old file is untouched and no temporary file is left."""
    path = Path(path)
    make_dirs(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            os.fchmod(fh.fileno(), _mode(path))
        os.replace(tmp, path)
    except OSError as exc:  # name the file the user asked for, not the temporary one
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_set(folder: str | os.PathLike[str], files: dict[str, bytes]) -> list[Path]:
    """Write several files that belong together: all of them are written into a temporary folder first,
    then moved into ``folder``; if any write fails, nothing in ``folder`` changes and nothing is left."""
    folder = make_dirs(folder)
    try:
        staging = Path(tempfile.mkdtemp(dir=folder, prefix=".edgesdk-"))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(folder)) from exc
    try:
        for name, content in files.items():
            try:
                (staging / name).write_bytes(content)
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, str(folder / name)) from exc
        for name in files:
            os.replace(staging / name, folder / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [folder / name for name in files]


def slug(text: str) -> str:
    """``text`` as a file name: ``prune=0.5,int8`` -> ``prune0.5_int8``, ``2:4`` -> ``2of4``; anything else
    but letters, digits, '.', '_' and '-' becomes '_'."""
    text = text.replace("=", "").replace(",", "_").replace(":", "of")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "none"


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()



def check_outputs(outputs: list[Path], inputs: list[Path], *, folders: list[Path] | None = None) -> None:
    """Refuse outputs that would overwrite an input (the same file, also through a link; a file inside an
    input folder) or each other, and outputs that are folders. ``folders`` are output folders written into:
    an input inside one is refused too.

    Raises:
        OutputError: naming the output and the input (or the other output).
    """
    from .errors import OutputError

    def same(a: Path, b: Path) -> bool:
        try:
            return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
        except OSError:
            return False

    seen: list[Path] = []
    for output in outputs:
        if output.is_dir():
            raise OutputError(f"{output}: this output is a folder; name a file")
        for other in seen:
            if same(output, other):
                raise OutputError(f"{output}: two outputs would be written to the same file; choose another path")
        seen.append(output)
        for given in inputs:
            inside = given.is_dir() and output.resolve().is_relative_to(given.resolve())
            if same(output, given) or inside:
                raise OutputError(f"{output}: this output would overwrite the input {given}; choose another path")
    for folder in folders or []:
        for given in inputs:
            if given.resolve().is_relative_to(folder.resolve()) or same(given, folder):
                raise OutputError(f"{folder}: edgesdk writes into this folder, which holds the input {given}; "
                                  "choose another output folder")


MAX_TEXT = 16 << 20   # a profile, suite or other text file a user names: far above any real one


def read_text(path: str | os.PathLike[str], limit: int = MAX_TEXT) -> str:
    """A user's text file, read without blocking on a FIFO or reading a device forever: only a regular
    file of at most ``limit`` bytes, as UTF-8.

    Raises:
        OSError: not a regular file (EINVAL, "not a regular file"), too large (EFBIG), or unreadable.
        UnicodeDecodeError: not UTF-8.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a pipe, device, socket or folder)", str(path))
        if info.st_size > limit:
            raise OSError(errno.EFBIG, f"larger than {limit:,} bytes", str(path))
        content = fh.read(limit + 1)
    if len(content) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit:,} bytes", str(path))
    return content.decode("utf-8")


def jsonable(doc: Any) -> Any:
    """``doc`` with every non-finite float (an SQNR of -inf dB, a NaN metric) as None: JSON has no
    Infinity or NaN, and a file or output with them is not JSON any parser reads."""
    if isinstance(doc, float):
        return doc if math.isfinite(doc) else None
    if isinstance(doc, dict):
        return {k: jsonable(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [jsonable(v) for v in doc]
    return doc


def dumps(doc: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`jsonable` (``allow_nan=False``: a non-finite float left over is a bug)."""
    return json.dumps(jsonable(doc), allow_nan=False, **kwargs)
