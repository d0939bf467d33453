"""`inspect`, `compress`, `export c` and `techniques`: commands about one model."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from .. import __version__
from ..techniques.training import DEFAULT_EPOCHS
from .app import app, export_app
from .common import JsonOpt, StoreOpt, TrustOpt, err, human_bytes, out, print_json, tag, warn

# operators that move or convert data and compute nothing worth a line of their own (counted below the table)
TRIVIAL = frozenset({"DEQUANTIZE", "QUANTIZE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CAST", "TRANSPOSE", "PACK",
                     "UNPACK", "SHAPE", "STRIDED_SLICE", "GATHER", "CONCATENATION", "PAD", "SLICE", "IDENTITY"})


def _short(name: str, width: int = 20) -> str:
    """A tensor name as a person tells layers apart: its first fused name, its last two path parts
    (``conv2d_2/Relu``), its middle cut when still long."""
    name = "/".join(name.split(";")[0].split("/")[-2:])
    return name if len(name) <= width else f"{name[:width // 2 - 1]}…{name[-(width // 2):]}"


@app.command("inspect")
def inspect_cmd(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help=".keras, .h5, SavedModel directory or .tflite")],
    profile: Annotated[Optional[str], typer.Option("--profile", "-p", help="check the model against this "
                                                  "profile (name or YAML path)")] = None,
    trust_model_code: TrustOpt = False,
    as_json: JsonOpt = False,
    show_all: Annotated[bool, typer.Option("--all", help="every layer with its full tensor name (default: the "
                                           "layers that compute, names shortened, the rest counted)")] = False,
) -> None:
    """Operators, parameters, MACs, tensor sizes and memory of a model, and whether it fits a profile.

    Keras and SavedModel models are converted to an fp32 .tflite in memory first.

    Examples:

    \b
      edgesdk inspect model.tflite --profile cortex-m4
    """
    from ..inspection import inspect_model

    result = inspect_model(model, profile, trust_model_code=trust_model_code).to_dict()
    if as_json:
        print_json(result)
        return
    rep, src = result["report"], result["source"]
    out.print(tag(str(src["path"]), "bold"),
              f"({src['format']}, {human_bytes(src['bytes'])}, sha256 {src['sha256'][:16]})")
    summary = Table(show_header=False, box=None)
    for label, value in (("precision", rep["precision"]), ("parameters", f"{rep['params']:,}"),
                         ("MACs", f"{rep['macs']:,}"), ("tflite bytes", human_bytes(rep["model_bytes"])),
                         ("weight bytes", human_bytes(rep["weight_bytes"])),
                         ("peak activations", human_bytes(rep["peak_activation_bytes"]) + " (estimate)"),
                         ("inputs", ", ".join(f"{t['name']} {t['shape']} {t['dtype']}" for t in rep["inputs"])),
                         ("outputs", ", ".join(f"{t['name']} {t['shape']} {t['dtype']}" for t in rep["outputs"]))):
        summary.add_row(label, str(value))
    out.print(summary)
    ops = Table(title="operators")
    ops.add_column("operator")
    ops.add_column("version", justify="right")
    ops.add_column("count", justify="right")
    for op, version in rep["operators"].items():
        ops.add_row(op, str(version), str(rep["op_counts"][op]))
    out.print(ops)
    shown = rep["layers"] if show_all else [la for la in rep["layers"] if la["macs"] or la["op"] not in TRIVIAL]
    hidden = Counter(la["op"] for la in rep["layers"] if la not in shown)
    from rich import box

    cells = [[str(la["index"]), la["op"], la["output"] if show_all else _short(la["output"]),
              "×".join(str(d) for d in la["output_shape"]), la["dtype"].lower(), human_bytes(la["output_bytes"]),
              f"{la['macs']:,}"] for la in shown]
    caption = "not shown (--all shows them): " + ", ".join(f"{n} {op}" for op, n in hidden.most_common()) \
        if hidden else None
    layers = Table(title="layers", box=box.SIMPLE_HEAD, caption=caption, caption_justify="left",
                   collapse_padding=True, pad_edge=False)
    for i, col in enumerate(("#", "operator", "output", "shape", "dtype", "bytes", "MACs")):
        widest = max([len(col), *(len(c[i]) for c in cells)])
        layers.add_column(col, justify="right" if col in ("#", "bytes", "MACs") else "left",
                          overflow="fold" if col == "output" else "ellipsis", no_wrap=col != "output",
                          min_width=None if col == "output" else widest)
    for c in cells:
        layers.add_row(*c)
    out.print(layers)
    if result.get("takes"):
        _print_takes(result["takes"])
    if result["target"]:
        _print_target(result["target"])
    if result["fit"]:
        _print_fit(result["fit"])


def _print_takes(takes: dict[str, Any]) -> None:
    """What the model can be given in a recipe, and why not the rest."""
    out.print(tag(takes["form_text"], "bold"), f"model: compress and tune take {', '.join(takes['accepted'])}",
              highlight=False)
    if takes["refused"]:
        why = next(iter(takes["refused"].values()))
        out.print(f"  not {', '.join(takes['refused'])}: {why}", highlight=False)
    for change in takes.get("changes", []):
        out.print(f"  normalized before compressing: {change}", highlight=False)
    if takes.get("custom_ops"):
        out.print(f"  custom operators kept as they are: {', '.join(takes['custom_ops'])} (steps that run the model "
                  "on data need their kernels)", highlight=False)


def _print_target(target: dict[str, Any]) -> None:
    """Arena/SRAM, flash and the estimated latency on an MCU or NPU, and the layers that fall back."""
    name = {"tflite-micro": "TFLite Micro", "vela": "Vela", "edgetpu": "Edge TPU"}.get(target["target"],
                                                                                    target["target"])
    ram = {"tflite-micro": "tensor arena", "vela": "SRAM"}.get(target["target"], "RAM")
    parts = [f"{ram} {human_bytes(target['ram_bytes'])}" + (" (exact, host TFLite Micro)" if target["target"] ==
                                                        "tflite-micro" else "")] if target["ram_bytes"] else []
    if target["flash_bytes"]:
        parts.append(f"flash {human_bytes(target['flash_bytes'])} (model + runtime, estimated)")
    if target["latency_ms"] is not None:
        energy = f", {target['energy_mj']:.4g} mJ" if target.get("energy_mj") is not None else ""
        parts.append(f"latency {target['latency_ms']:.4g} ms{energy} ESTIMATED ({target['basis']})")
    if target["npu_layers"] or target["cpu_layers"]:
        parts.append(f"{target['npu_layers']} layers on the accelerator, {target['cpu_layers']} on the CPU")
    out.print(tag(f"{name}:", "bold"), "; ".join(parts), highlight=False)
    fallback = [p for p in target["placements"] if p["unit"] == "cpu"]
    if fallback:
        table = Table(title="layers on the CPU (slow: the search counts their CPU time)")
        for col in ("#", "operator", "output", "why"):
            table.add_column(col)
        for p in fallback:
            table.add_row(str(p["index"]), p["op"], p["output"], p["reason"])
        out.print(table)


def _print_fit(fit: dict[str, Any]) -> None:
    verdict = tag("fits", "green") if fit["ok"] else tag("does not fit", "red")
    out.print("profile", tag(f"{fit['profile']}:", "bold"), verdict, f"— RAM {human_bytes(fit['ram_needed_bytes'])} of "
              f"{human_bytes(fit['ram_budget_bytes'])}, storage {human_bytes(fit['storage_needed_bytes'])} of "
              f"{human_bytes(fit['storage_budget_bytes'])}")
    for problem in fit["problems"]:
        out.print(" ", tag("✗", "red"), problem, highlight=False)
    for warning in fit["warnings"]:
        out.print(" ", tag("!", "yellow"), warning, highlight=False)


@app.command()
def compress(
    model: Annotated[Path, typer.Argument(metavar="MODEL",
                                          help=".keras, .h5, SavedModel directory or .tflite (float, fp16-weight "
                                          "or integer; `edgesdk inspect` says what it takes)")],
    profile: Annotated[str, typer.Option("--profile", "-p", help="target profile name or YAML path")],
    recipe: Annotated[str, typer.Option("--recipe", "-r", help="steps such as 'int8', 'prune=0.5,int8', "
                                        "'prune=2:4,cluster=16,int8', 'sparsegpt=0.5,int8', 'qat' "
                                        "(see `edgesdk techniques`)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the .tflite")],
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help=".npz with 'x' (or one array per "
                                                 "input, named after it) and optional 'y': calibration, fine-tuning "
                                                 "and evaluation")] = None,
    train_data: Annotated[Optional[Path], typer.Option("--train-data", help=".npz to calibrate and fine-tune "
                                                       "on instead of --data, so evaluation stays honest")] = None,
    epochs: Annotated[int, typer.Option(help="fine-tuning epochs for the steps that train (prune, cluster, channels, "
                                      "lowrank, qat)", min=0)] = DEFAULT_EPOCHS,
    seed: Annotated[int, typer.Option(help="random seed", min=0, max=2**32 - 1)] = 0,
    trust_model_code: TrustOpt = False,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compress a model with a recipe for a hardware profile and write a .tflite.

    With labels in --data, accuracy before and after is reported; with inputs only, fidelity to the
    original model (top-1 agreement, SQNR). Without data, calibration uses random inputs (untrustworthy).
    A .tflite takes the same recipes but the training steps (qat, distill, channels, fine-tuning); an
    integer .tflite keeps its precision (int8, int8=io, prune, cluster, strip).

    Examples:

    \b
      edgesdk compress model.keras -p rpi5 -r prune=0.5,int8 -d val.npz -o model_int8.tflite
    """
    from ..compress import compress as run_compress
    from ..quality import Quality
    from ..search.cells import per_output
    from ..store import Store

    with err.status("compressing…") as status:
        result = run_compress(model, profile, recipe, output, data, train_data=train_data, epochs=epochs, seed=seed,
                              store=Store(store), trust_model_code=trust_model_code,
                              progress=lambda event: status.update(event.text + "…"))
    if as_json:
        print_json(result.to_dict())
        return
    warn(result.warnings)
    table = Table(show_header=False, box=None)
    table.add_row("wrote", f"{result.output} ({human_bytes(result.model_bytes)}, "
                  f"gzipped {human_bytes(result.gzip_bytes)})")
    table.add_row("weights", f"{human_bytes(result.weight_bytes)}, "
                  f"entropy-coded {human_bytes(result.weight_entropy_bytes)} "
                  "(ideal: what clustering and sparsity save in storage or download)")
    table.add_row("recipe", f"{result.recipe} → {result.precision} for {result.profile}")
    q = Quality.from_dict(result.quality)
    if q is not None:
        if q.before is not None and q.after is not None:
            table.add_row(q.metric, f"{q.before:.4f} → {q.after:.4f} on {q.samples} samples")
        if q.top1_agreement is not None:
            table.add_row("top-1 agreement", f"{q.top1_agreement:.4f}")
        if q.sqnr_db is not None:
            table.add_row("SQNR", f"{q.sqnr_db:.1f} dB vs the float model"
                          + (f" (the lowest of {len(q.outputs)} outputs)" if q.outputs else ""))
        if q.outputs:
            table.add_row("per output", per_output({"quality": result.quality}).removeprefix("SQNR per output: "))
    out.print(table)
    if result.target:
        _print_target(result.target)


@export_app.command("c")
def export_c_cmd(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="the .tflite to embed")],
    output: Annotated[Path, typer.Option("--output", "-o", help="folder for model_data.h/.cc and model_ops.h")],
    arena: Annotated[Optional[int], typer.Option("--arena", help="tensor arena bytes to declare (default: the "
                                                 "host TFLite Micro arena + 1 KiB + 5 %)", min=1)] = None,
    name: Annotated[str, typer.Option("--name", help="C identifier of the model array")] = "g_model",
    as_json: JsonOpt = False,
) -> None:
    """C++ sources for a TFLite Micro firmware: the model as a 16-byte aligned array, the tensor arena
    size (found by allocating the model in TFLite Micro on this machine) and an op resolver that
    registers exactly the operators used. firmware_examples/ has harnesses that include them.

    Examples:

    \b
      edgesdk export c model.tflite -o firmware/src
    """
    from ..export_c import export_c

    with err.status("finding the tensor arena…"):
        result = export_c(model, output, arena_bytes=arena, name=name)
    if as_json:
        print_json(dataclasses.asdict(result))
        return
    out.print(f"wrote {', '.join(Path(f).name for f in result.files)} to {result.directory}: arena "
              f"{result.arena_bytes:,} B (the model needs {result.host_arena_bytes:,} B in TFLite Micro), "
              f"{len(result.operators)} operators: {', '.join(result.operators)}", highlight=False)


@app.command()
def techniques() -> None:
    """List the compression techniques a recipe can use."""
    from ..kinds import ModelForm, StepKind
    from ..techniques import REGISTRY, techniques

    table = Table()
    for col in ("step", "kind", "searched in", "takes", "what it does"):
        table.add_column(col)
    order = list(ModelForm)
    for t in REGISTRY.values():
        takes = ", ".join(f.text for f in sorted(t.forms, key=order.index))
        table.add_row(t.name, t.kind, f"--{t.dimension}" if t.dimension else "", takes, t.help)
    out.print(table)
    stages: dict[int, list[str]] = {}
    for t in techniques(StepKind.KERAS):
        stages.setdefault(t.order, []).append(t.name)
    keras = ", ".join(names[0] if len(names) == 1 else "one of " + "/".join(names)
                      for _, names in sorted(stages.items()))
    convert = "/".join(t.name for t in techniques(StepKind.CONVERT))
    post = "/".join(t.name for t in techniques(StepKind.POST))
    out.print(f"Compose with commas: keras steps run in the order {keras}; then one conversion step ({convert}; "
              f"fp32 if none); then {post}.", highlight=False)


@app.command()
def version() -> None:
    """Print the edgesdk version."""
    out.print(f"edgesdk {__version__}")

