"""`edgesdk export c`: a .tflite as C++ sources for a TFLite Micro firmware.

Writes ``model_data.h`` / ``model_data.cc`` (the model as a 16-byte aligned const array and its
length, the tensor arena size and the model's sha256, which the firmware harness reports so the host
knows which model a board runs) and ``model_ops.h`` (a ``MicroMutableOpResolver`` sized for, and
registering exactly, the operators the model uses).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError, OutputError
from .fileio import write_set
from .tflite import facts

# Resolver methods whose names do not follow from the operator's name (CONV_2D -> AddConv2D).
_METHOD = {"CUMSUM": "AddCumSum", "BATCH_MATMUL": "AddBatchMatMul", "PADV2": "AddPadV2",
           "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "CUSTOM:ethos-u": "AddEthosU",
           "CUSTOM:TFLite_Detection_PostProcess": "AddDetectionPostprocess"}
ARENA_MARGIN = 1024   # bytes on top of the host arena, and 5 % more: CMSIS-NN scratch buffers differ
MAX_ARENA = 1 << 30   # 1 GiB: more than any microcontroller or NPU has; a larger --arena is a typo
# C and C++ keywords and alternative tokens (C23, C++23): none of them can name the model array.
KEYWORDS = frozenset("""
alignas alignof and and_eq asm atomic_cancel atomic_commit atomic_noexcept auto bitand bitor bool break case catch
char char8_t char16_t char32_t class compl concept const consteval constexpr constinit const_cast continue
co_await co_return co_yield decltype default delete do double dynamic_cast else enum explicit export extern false
float for friend goto if inline int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private
protected public reflexpr register reinterpret_cast requires restrict return short signed sizeof static
static_assert static_cast struct switch synchronized template this thread_local throw true try typedef typeid
typename typeof typeof_unqual union unsigned using virtual void volatile wchar_t while xor xor_eq _Alignas
_Alignof _Atomic _BitInt _Bool _Complex _Decimal128 _Decimal32 _Decimal64 _Generic _Imaginary _Noreturn
_Static_assert _Thread_local main""".split())
# Names the generated files and the headers they include declare at global scope (an array of that name
# does not compile beside them); '_t' endings and TfLite* are refused by pattern.
LIBRARY_NAMES = frozenset("""
std tflite NULL offsetof errno assert stdin stdout stderr EOF abort exit malloc free memcpy memset strlen
printf puts signal raise time clock div abs labs""".split())


@dataclass(frozen=True)
class Export:
    directory: str
    files: list[str]
    arena_bytes: int
    host_arena_bytes: int
    operators: list[str]
    model_sha256: str


def resolver_method(op: str) -> str:
    """``CONV_2D`` -> ``AddConv2D``: the MicroMutableOpResolver method that registers ``op``.

    Raises:
        ModelError: a custom operator TFLite Micro has no registration for.
    """
    if op in _METHOD:
        return _METHOD[op]
    if op.startswith("CUSTOM:"):
        raise ModelError(f"custom operator {comment_text(op[7:])!r} has no TFLite Micro registration; "
                         "register it by hand")
    method = "Add" + "".join(part if re.fullmatch(r"\d+D", part) else part.capitalize() for part in op.split("_"))
    if not re.fullmatch(r"Add[A-Za-z0-9]+", method):  # an operator name is data from the file
        raise ModelError(f"operator {comment_text(op)!r} has no TFLite Micro registration")
    return method


def check_name(name: str) -> str:
    """The array name, checked: a C identifier, not a keyword, not reserved (``_X``, ``__``), not one of
    the names the generated files define.

    Raises:
        ModelError: naming what is wrong with it.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise ModelError("the array name must be a C identifier (letters, digits and '_', not starting with a "
                         f"digit, at most 63 characters). Received: {name!r}")
    if name in KEYWORDS:
        raise ModelError(f"the array name must not be a C or C++ keyword. Received: {name!r}")
    if name.startswith("__") or re.match(r"_[A-Z]", name) or "__" in name:
        raise ModelError(f"names with '__' or starting with '_' and a capital are reserved in C and C++. "
                         f"Received: {name!r}")
    if name in ("kTensorArenaSize", "kTensorArenaHostBytes", "kModelSha256", "kModelOpCount", "ModelOpResolver",
                "RegisterModelOps") or name.startswith("EDGESDK_"):
        raise ModelError(f"the array name {name!r} is already defined by the generated files; choose another")
    if name in LIBRARY_NAMES or name.endswith("_t") or re.match(r"(k?TfLite|TF_?LITE_)", name):
        raise ModelError(f"the array name {name!r} is a name of the C/C++ library or TFLite Micro (or reserved "
                         "like it: '_t' endings, TfLite*); choose another")
    if not re.search(r"[a-z]", name):
        raise ModelError(f"an upper-case array name could be replaced by a macro of the included headers (NULL, "
                         f"EOF, INT32_MAX); use lower-case letters too. Received: {name!r}")
    return name


GENERATED = "// Generated by edgesdk export c"   # the first line of every file export c writes
FILES = ("model_data.h", "model_data.cc", "model_ops.h")


def check_output_folder(out: Path) -> None:
    """The folder may hold the user's sources: a model_data.h/.cc or model_ops.h that export c did not
    write (its first line says so) is never replaced.

    Raises:
        OutputError: a file in the way, or not a folder.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: the output must be a folder (model_data.h, .cc and model_ops.h go there)")
    for file in FILES:
        path = out / file
        if not (path.exists() or path.is_symlink()):
            continue
        try:
            with path.open("rb") as fh:
                ours = path.is_file() and not path.is_symlink() and fh.read(len(GENERATED)) == GENERATED.encode()
        except OSError as exc:
            raise OutputError(f"{path}: cannot be read ({exc.strerror}); export c would replace it") from exc
        if not ours:
            raise OutputError(f"{path}: this file was not written by edgesdk export c and would be replaced; "
                              "choose another -o or move the file")


def comment_text(text: str) -> str:
    """``text`` safe inside a ``//`` comment: printable ASCII only, no backslash (which would continue
    the comment onto the next line), no line breaks, at most 200 characters."""
    safe = "".join(c if " " <= c <= "~" and c != "\\" else "?" for c in text)
    return safe if len(safe) <= 200 else safe[:197] + "..."


def _array(data: bytes) -> str:
    rows = (", ".join(f"0x{b:02x}" for b in data[i:i + 12]) for i in range(0, len(data), 12))
    return ",\n".join("    " + row for row in rows)


def export_c(model: str | os.PathLike[str], output: str | os.PathLike[str], *, arena_bytes: int | None = None,
             name: str = "g_model") -> Export:
    """Write the C++ sources for ``model`` into ``output`` (created if missing).

    Args:
        arena_bytes: the tensor arena to declare; by default the arena the host TFLite Micro interpreter
            needs plus a margin (``ARENA_MARGIN`` and 5 %).
        name: the C identifier of the array (``name``, ``name_len``).

    Raises:
        ModelError: not a .tflite model, TFLite Micro cannot run it, or a bad identifier.
    """
    from .targets import tflm

    path = Path(model)
    if path.suffix != ".tflite" or not path.is_file():
        raise ModelError(f"{comment_text(str(path))}: expected a .tflite file (compress a Keras model first)")
    check_name(name)
    out = Path(output)
    check_output_folder(out)
    if arena_bytes is not None and not 0 < arena_bytes <= MAX_ARENA:
        raise ModelError(f"--arena must be between 1 and {MAX_ARENA:,} bytes. Received: {arena_bytes:,}")
    shown = comment_text(path.name)
    data = path.read_bytes()
    report = facts.analyze(path, data=data)
    host, why = tflm.arena(data)
    if host is None:
        raise ModelError(f"{path}: {why}")
    arena = arena_bytes or -(-int(host * 1.05 + ARENA_MARGIN) // 16) * 16
    if arena < host:
        raise ModelError(f"an arena of {arena:,} bytes is smaller than the {host:,} bytes the model needs")
    methods = [resolver_method(op) for op in report.operators]
    sha = hashlib.sha256(data).hexdigest()
    header = f"""// Generated by edgesdk export c from {shown} (sha256 {sha}).
#ifndef EDGESDK_MODEL_DATA_H_
#define EDGESDK_MODEL_DATA_H_

#include <cstddef>

extern const unsigned char {name}[];
extern const unsigned int {name}_len;

// The model needs {host:,} bytes of tensor arena in the host TFLite Micro interpreter; this adds a
// margin for CMSIS-NN scratch buffers. Place the arena in SRAM, 16-byte aligned.
constexpr size_t kTensorArenaSize = {arena};
constexpr size_t kTensorArenaHostBytes = {host};
constexpr const char kModelSha256[] = "{sha}";

#endif  // EDGESDK_MODEL_DATA_H_
"""
    source = f"""// Generated by edgesdk export c from {shown}: {len(data):,} bytes.
#include "model_data.h"

alignas(16) const unsigned char {name}[] = {{
{_array(data)}
}};
const unsigned int {name}_len = {len(data)};
"""
    adds = "\n".join(f"  if (resolver.{m}() != kTfLiteOk) return kTfLiteError;" for m in methods)
    ops = f"""// Generated by edgesdk export c: exactly the operators {shown} uses.
#ifndef EDGESDK_MODEL_OPS_H_
#define EDGESDK_MODEL_OPS_H_

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

constexpr unsigned int kModelOpCount = {len(methods)};
using ModelOpResolver = tflite::MicroMutableOpResolver<kModelOpCount>;

// {comment_text(", ".join(report.operators))}
inline TfLiteStatus RegisterModelOps(ModelOpResolver& resolver) {{
{adds}
  return kTfLiteOk;
}}

#endif  // EDGESDK_MODEL_OPS_H_
"""
    files = dict(zip(FILES, (header, source, ops), strict=True))
    written = write_set(out, {file: text.encode("ascii") for file, text in files.items()})
    return Export(str(out), [str(f) for f in written], arena, host, list(report.operators), sha)
