"""The `edgesdk` command line: parse arguments, call the API, print with rich. Nothing else lives here."""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

import typer
from rich.console import Console, ConsoleDimensions
from rich.logging import RichHandler
from rich.table import Table

from . import __version__
from .errors import EdgeSdkError

log = logging.getLogger(__name__)

app = typer.Typer(help="Compress Keras and TFLite models for a hardware target and measure them on the device.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)
profiles_app = typer.Typer(help="List and show hardware profiles.", no_args_is_help=True)
app.add_typer(profiles_app, name="profiles")
devices_app = typer.Typer(help="Name devices, check them, clean what edgesdk left on them.", no_args_is_help=True)
app.add_typer(devices_app, name="devices")
export_app = typer.Typer(help="Export a model for a firmware build.", no_args_is_help=True)
app.add_typer(export_app, name="export")
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


out = _Console()
err = _Console(stderr=True, soft_wrap=True)  # one error, one line

StoreOpt = Annotated[Optional[str], typer.Option("--store", help="results store URL (SQLAlchemy); default: "
                                                 "EDGESDK_STORE or an SQLite file in your data directory")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON instead of tables")]
TrustOpt = Annotated[bool, typer.Option("--trust-model-code", help="load Keras layers that carry Python code "
                                        "(Lambda layers): loading runs that code, so only for "
                                        "files you trust; refused by default")]


def _print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")


def _bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    if n < 10_000:
        return f"{n:,} B"
    return f"{n / 1024:,.1f} KiB" if n < 2**20 else f"{n / 2**20:,.1f} MiB" if n < 2**30 else f"{n / 2**30:,.1f} GiB"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _warn(messages: list[str]) -> None:
    for message in messages:
        err.print(f"[yellow]warning:[/yellow] {message}", highlight=False)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log each stage")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s",
                        handlers=[RichHandler(console=err, show_time=False, show_path=False)])


@app.command("inspect")
def inspect_cmd(
    model: Annotated[Path, typer.Argument(help=".keras, .h5, SavedModel directory or .tflite")],
    profile: Annotated[Optional[str], typer.Option("--profile", "-p", help="check the model against this "
                                                  "profile (name or YAML path)")] = None,
    trust_model_code: TrustOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Operators, parameters, MACs, tensor sizes and memory of a model, and whether it fits a profile.

    Keras and SavedModel models are converted to an fp32 .tflite in memory first.

    Example: edgesdk inspect model.tflite --profile cortex-m4
    """
    from .inspection import inspect_model

    result = inspect_model(model, profile, trust_model_code=trust_model_code)
    if as_json:
        _print_json(result)
        return
    rep, src = result["report"], result["source"]
    out.print(f"[bold]{src['path']}[/bold] ({src['format']}, {_bytes(src['bytes'])}, sha256 {src['sha256'][:16]})")
    summary = Table(show_header=False, box=None)
    for label, value in (("precision", rep["precision"]), ("parameters", f"{rep['params']:,}"),
                         ("MACs", f"{rep['macs']:,}"), ("tflite bytes", _bytes(rep["model_bytes"])),
                         ("weight bytes", _bytes(rep["weight_bytes"])),
                         ("peak activations", _bytes(rep["peak_activation_bytes"]) + " (estimate)"),
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
    layers = Table(title="layers")
    for col in ("#", "operator", "output", "shape", "dtype", "bytes", "MACs"):
        layers.add_column(col, justify="right" if col in ("#", "bytes", "MACs") else "left")
    for layer in rep["layers"]:
        layers.add_row(str(layer["index"]), layer["op"], layer["output"], str(layer["output_shape"]),
                       layer["dtype"], f"{layer['output_bytes']:,}", f"{layer['macs']:,}")
    out.print(layers)
    if result["target"]:
        _print_target(result["target"])
    if result["fit"]:
        _print_fit(result["fit"])


def _print_target(target: dict[str, Any]) -> None:
    """Arena/SRAM, flash and the estimated latency on an MCU or NPU, and the layers that fall back."""
    name = {"tflite-micro": "TFLite Micro", "vela": "Vela", "edgetpu": "Edge TPU"}.get(target["target"],
                                                                                    target["target"])
    ram = {"tflite-micro": "tensor arena", "vela": "SRAM"}.get(target["target"], "RAM")
    parts = [f"{ram} {_bytes(target['ram_bytes'])}" + (" (exact, host TFLite Micro)" if target["target"] ==
                                                        "tflite-micro" else "")] if target["ram_bytes"] else []
    if target["flash_bytes"]:
        parts.append(f"flash {_bytes(target['flash_bytes'])} (model + runtime, estimated)")
    if target["latency_ms"] is not None:
        energy = f", {target['energy_mj']:.4g} mJ" if target.get("energy_mj") is not None else ""
        parts.append(f"latency {target['latency_ms']:.4g} ms{energy} ESTIMATED ({target['basis']})")
    if target["npu_layers"] or target["cpu_layers"]:
        parts.append(f"{target['npu_layers']} layers on the accelerator, {target['cpu_layers']} on the CPU")
    out.print(f"[bold]{name}[/bold]: " + "; ".join(parts), highlight=False)
    fallback = [p for p in target["placements"] if p["unit"] == "cpu"]
    if fallback:
        table = Table(title="layers on the CPU (slow: the search counts their CPU time)")
        for col in ("#", "operator", "output", "why"):
            table.add_column(col)
        for p in fallback:
            table.add_row(str(p["index"]), p["op"], p["output"], p["reason"])
        out.print(table)


def _print_fit(fit: dict[str, Any]) -> None:
    verdict = "[green]fits[/green]" if fit["ok"] else "[red]does not fit[/red]"
    out.print(f"profile [bold]{fit['profile']}[/bold]: {verdict} — RAM {_bytes(fit['ram_needed_bytes'])} of "
              f"{_bytes(fit['ram_budget_bytes'])}, storage {_bytes(fit['storage_needed_bytes'])} of "
              f"{_bytes(fit['storage_budget_bytes'])}")
    for problem in fit["problems"]:
        out.print(f"  [red]✗[/red] {problem}", highlight=False)
    for warning in fit["warnings"]:
        out.print(f"  [yellow]![/yellow] {warning}", highlight=False)


@app.command()
def compress(
    model: Annotated[Path, typer.Argument(help=".keras, .h5 or SavedModel directory (the float source)")],
    profile: Annotated[str, typer.Option("--profile", "-p", help="target profile name or YAML path")],
    recipe: Annotated[str, typer.Option("--recipe", "-r", help="steps such as 'int8', 'prune=0.5,int8', "
                                        "'prune=2:4,cluster=16,int8', 'sparsegpt=0.5,int8', 'qat' "
                                        "(see `edgesdk techniques`)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write the .tflite")],
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help=".npz with 'x' and optional 'y': "
                                                 "calibration, fine-tuning and evaluation")] = None,
    train_data: Annotated[Optional[Path], typer.Option("--train-data", help=".npz to calibrate and fine-tune "
                                                       "on instead of --data, so evaluation stays honest")] = None,
    epochs: Annotated[int, typer.Option(help="fine-tuning epochs for prune/cluster/qat", min=0)] = 2,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    trust_model_code: TrustOpt = False,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compress a model with a recipe for a hardware profile and write a .tflite.

    With labels in --data, accuracy before and after is reported; with inputs only, fidelity to the
    original model (top-1 agreement, SQNR). Without data, calibration uses random inputs (untrustworthy).

    Example: edgesdk compress model.keras -p rpi5 -r prune=0.5,int8 -d val.npz -o model_int8.tflite
    """
    from .compress import compress as run_compress
    from .store import Store

    with err.status("compressing…") as status:
        result = run_compress(model, profile, recipe, output, data, train_data=train_data, epochs=epochs, seed=seed,
                              store=Store(store), trust_model_code=trust_model_code,
                              progress=lambda message: status.update(message + "…"))
    if as_json:
        _print_json(result.to_dict())
        return
    _warn(result.warnings)
    table = Table(show_header=False, box=None)
    table.add_row("wrote", f"{result.output} ({_bytes(result.model_bytes)}, gzipped {_bytes(result.gzip_bytes)})")
    table.add_row("weights", f"{_bytes(result.weight_bytes)}, entropy-coded {_bytes(result.weight_entropy_bytes)} "
                  "(ideal: what clustering and sparsity save in storage or download)")
    table.add_row("recipe", f"{result.recipe} → {result.precision} for {result.profile}")
    q = result.quality
    if q:
        if q["metric"] in ("accuracy", "mse"):
            table.add_row(q["metric"], f"{q['before']:.4f} → {q['after']:.4f} on {q['samples']} samples")
        if "top1_agreement" in q:
            table.add_row("top-1 agreement", f"{q['top1_agreement']:.4f}")
        table.add_row("SQNR", f"{q['sqnr_db']:.1f} dB vs the float model")
    out.print(table)
    if result.target:
        _print_target(result.target)


@app.command()
def tune(
    model: Annotated[Path, typer.Argument(help=".keras, .h5 or SavedModel directory (the float source)")],
    profile: Annotated[str, typer.Option("--profile", "-p", help="target profile name or YAML path")],
    outdir: Annotated[Path, typer.Option("--output", "-o", help="directory for best.tflite, pareto/, results.json, "
                                         "report.html and the study")],
    device: Annotated[Optional[list[str]], typer.Option("--device", help="where to measure: local, ssh://…, "
                                                        "adb://… or a named device; repeat to measure on several "
                                                        "in parallel; none: latency is predicted (estimated)")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help=".npz to evaluate quality on (x, optional "
                                                 "y)")] = None,
    train_data: Annotated[Optional[Path], typer.Option("--train-data", help=".npz to calibrate and fine-tune "
                                                       "on, kept apart from --data")] = None,
    max_accuracy_drop: Annotated[Optional[float], typer.Option("--max-accuracy-drop", min=0,
                                                               help="largest accepted drop (0.01 = 1 point)")] = None,
    min_accuracy: Annotated[Optional[float], typer.Option("--min-accuracy", min=0, max=1)] = None,
    max_latency_ms: Annotated[Optional[float], typer.Option("--max-latency-ms", min=0)] = None,
    max_memory: Annotated[Optional[int], typer.Option("--max-memory", min=1, help="bytes of weights (where the "
                                                      "profile loads them into RAM) plus peak activations")] = None,
    objectives: Annotated[Optional[str], typer.Option("--objectives", help="comma-separated, first is primary: "
                                                      "accuracy, latency, size, energy (default accuracy,latency "
                                                      "with --data, else latency,size)")] = None,
    budget: Annotated[Optional[int], typer.Option("--budget", min=1, help="distinct candidates to try "
                                                  "(default: 24, or the whole space with --time-budget)")] = None,
    time_budget: Annotated[Optional[float], typer.Option("--time-budget", min=1, help="seconds")] = None,
    precision: Annotated[Optional[list[str]], typer.Option("--precision", help="restrict the precisions "
                                                           "(repeatable)")] = None,
    prune: Annotated[Optional[list[str]], typer.Option("--prune", help="restrict pruning: 'none', 0.5, 2:4 "
                                                       "(magnitude), sparsegpt=0.5, wanda=2:4 (repeatable)")] = None,
    cluster: Annotated[Optional[list[str]], typer.Option("--cluster", help="restrict cluster counts: 'none', 16 "
                                                         "(repeatable)")] = None,
    structure: Annotated[Optional[list[str]], typer.Option("--structure", help="restrict architecture changes: "
                                                           "'none', channels=0.5, lowrank=0.5 (repeatable)")] = None,
    storage: Annotated[Optional[str], typer.Option("--storage", help="Optuna storage URL (default: SQLite in "
                                                   "OUTDIR); postgresql://… to share one study between hosts")] = None,
    study: Annotated[Optional[str], typer.Option("--study", help="study name (default: from model and "
                                                 "profile)")] = None,
    seed: Annotated[int, typer.Option(help="sampler and fine-tuning seed")] = 0,
    epochs: Annotated[int, typer.Option(help="fine-tuning epochs per candidate", min=0)] = 1,
    runs: Annotated[int, typer.Option(help="minimum timed runs per measurement", min=1)] = 50,
    min_time: Annotated[float, typer.Option("--min-time", help="minimum seconds of timed runs", min=0)] = 1.0,
    trust_model_code: TrustOpt = False,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search compressions of a model for a profile, measure each on the device, keep the best.

    Each candidate (precision x sparsity x clusters, from what the profile runs) is compressed, checked
    against the profile before any device time (rejected ones are kept with the reason), evaluated and
    measured; the results store answers repeated measurements. Running the same command again resumes
    the study in OUTDIR. Ctrl-C stops and keeps what was measured.

    Example: edgesdk tune model.keras -p rpi5 --device pi5 -d val.npz --train-data train.npz
    --max-accuracy-drop 0.01 -o tuned/
    """
    from device_agent.protocol import BenchSettings

    from .profiles import load_profile
    from .search import DEFAULT_BUDGET, Constraints, build, default_budget
    from .search import tune as run_tune
    from .store import Store

    prof = load_profile(profile)
    space = build(prof, precisions=precision or None, prune=prune or None, cluster=cluster or None,
                  structure=structure or None)
    constraints = Constraints(max_accuracy_drop=max_accuracy_drop, min_accuracy=min_accuracy,
                              max_latency_ms=max_latency_ms, max_memory_bytes=max_memory)
    constraints.check(data is not None)
    total = default_budget(len(space), budget, time_budget)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # The bar appears with the first report, after tune has checked its input: an error stays one line.
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("left"), TimeRemainingColumn(), TextColumn("{task.fields[best]}"), console=err,
                   transient=False)
    task = bar.add_task(f"tuning {model.name} for {prof.name} ({len(space)} candidates)", total=total,
                        best="", start=False)
    try:
        def show(p: dict[str, Any]) -> None:
            best = p.get("best")
            note = f"best {best['recipe']} p50 {best['latency_ms']:.4g} ms" + \
                (" (estimated)" if best.get("estimated") else "") if best else ""
            if p.get("time_budget_s"):
                note += f" · time budget: {max(0.0, p['time_budget_s'] - p['elapsed_s']):.0f} s left"
            row = p.get("row")
            if row is None:  # before the first trial: a resumed study starts from what it has done
                if budget is None and time_budget is None and total < len(space):
                    err.print(f"trying {total} of the {len(space)} candidates (the default budget is "
                              f"{DEFAULT_BUDGET}; --budget N or --time-budget S to search further)", highlight=False)
                bar.update(task, completed=p["done"], total=p["total"], best=note)
                bar.start_task(task)
                bar.start()
                return
            bar.update(task, completed=p["done"], total=p["total"], best=note)
            if not err.is_terminal and row.get("recipe"):  # logs (CI, cron) get one line per trial
                err.print(f"[{p['done']}/{p['total']}] {row['recipe']}: {row.get('status')}"
                          + (f", p50 {row['latency_ms']:.4g} ms" if row.get("latency_ms") is not None else "")
                          + (" (estimated)" if row.get("estimated") else "")
                          + (f" ({row['reason']})" if row.get("reason") else ""), highlight=False)

        result = run_tune(model, prof, outdir, devices=device or [], data=data, train_data=train_data,
                          constraints=constraints, objectives=objectives.split(",") if objectives else None,
                          budget=budget, time_budget_s=time_budget, storage=storage, study_name=study, seed=seed,
                          epochs=epochs, settings=BenchSettings(runs=runs, min_time_s=min_time), store=Store(store),
                          space=space, progress=show, trust_model_code=trust_model_code)
    finally:
        bar.stop()
    if as_json:
        _print_json(result.to_dict())
    else:
        _print_tune(result)
    if result.interrupted:
        raise typer.Exit(130)
    if result.best is None:
        raise typer.Exit(1)


@app.command()
def calibrate(
    profile: Annotated[str, typer.Option("--profile", "-p", help="the profile whose predictor to fit")],
    device: Annotated[str, typer.Option("--device", help="where to measure: local, ssh://…, adb://… or a named "
                                        "device")] = "local",
    models: Annotated[int, typer.Option("--models", min=2, help="generated micro-models (each measured per "
                                        "precision)")] = 16,
    precision: Annotated[Optional[list[str]], typer.Option("--precision", help="precisions to calibrate "
                                                           "(default: fp32, dynamic, int8, int16x8 where the "
                                                           "profile runs them)")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit a profile's latency predictor to a device: measure generated micro-models, save the coefficients.

    The predictor estimates latency from MACs (per precision, dense and depthwise), bytes moved and the
    operator count; `tune` uses it when no device is given, flagging every figure as estimated, and to
    skip candidates predicted far over --max-latency-ms. The fit is saved beside a user's profile YAML
    (NAME.calibration.json), or in the data directory for a shipped profile.

    Example: edgesdk calibrate -p rpi5 --device pi5
    """
    from device_agent.protocol import BenchSettings

    from .profiles import load_profile
    from .search import predict
    from .store import Store

    prof = load_profile(profile)
    with err.status("calibrating…") as status:
        predictor = predict.calibrate(prof, device, count=models, precisions=precision or None,
                                      settings=BenchSettings(runs=30, warmup=3, min_time_s=0.3), store=Store(store),
                                      progress=lambda message: status.update(f"measuring {message}…"))
    if as_json:
        _print_json(predictor.to_dict())
        return
    out.print(f"calibrated {prof.name} on {device} ({predictor.samples} measurements, runtime "
              f"{predictor.runtime['name'] if predictor.runtime else '?'}): median error of the fit "
              f"{predictor.fit_mape:.1%}; saved to {predict.calibration_path(prof)}", highlight=False)


def _print_tune(result: Any) -> None:
    for note in result.notes:
        err.print(f"[yellow]note:[/yellow] {note}", highlight=False)
    where = ", ".join(result.devices) or "no device (latency ESTIMATED)"
    shown = [r for r in result.trials if r.get("recipe")]
    kept = sum(1 for r in shown if r.get("status") in ("measured", "estimated"))
    how = "estimated" if not result.devices else "measured"
    table = Table(title=f"{result.study}: {len(shown)} trials ({kept} {how}) on {where}")
    for column in ("#", "recipe", "status", "quality", "p50 ms", "bytes", "notes"):
        table.add_column(column, justify="right" if column in ("#", "quality", "p50 ms", "bytes") else "left",
                         no_wrap=column == "recipe")
    from .search.objectives import objective_value

    for r in shown:
        q = objective_value("accuracy", r) if r.get("quality") else None
        mark = " ★ best" if r["number"] == result.best else " · Pareto" if r["number"] in result.pareto else ""
        notes = r.get("reason") or "; ".join(r.get("violations") or []) or \
            (f"repeat of #{r['repeat_of']}" if "repeat_of" in r else "")
        latency = "–" if r.get("latency_ms") is None else f"{r['latency_ms']:.4g}" + (" est." if r.get("estimated")
                                                                                     else "")
        table.add_row(str(r["number"]), r["recipe"], r.get("status", "") + mark, "–" if q is None else f"{q:.4f}",
                      latency,
                      "–" if r.get("model_bytes") is None else f"{r['model_bytes']:,}", notes)
    out.print(table)
    if result.best is not None:
        best = result.trial(result.best)
        verdict = "meets every constraint" if result.best_meets_constraints else "meets NOT every constraint"
        measured = f"{result.new_measurements} new device measurement(s)" if result.devices else \
            "latency estimated, nothing measured (no --device)"
        out.print(f"best: {best['recipe']} ({verdict}) → {result.outdir}/best.tflite; report: "
                  f"{result.outdir}/report.html; {measured}", highlight=False)
    else:
        out.print("no candidate could be measured; see the notes column", highlight=False)


@app.command()
def bench(
    model: Annotated[Path, typer.Argument(help="a .tflite model")],
    device: Annotated[str, typer.Option("--device", help="where to measure: 'local', "
                                        "ssh://user@host[:port][?python=PATH], adb://SERIAL[?python=PATH|"
                                        "benchmark_model=PATH], serial:///dev/ttyACM0[?baud=115200] (a board "
                                        "running the edgesdk firmware harness) or a named device")] = "local",
    runs: Annotated[int, typer.Option(help="minimum timed runs", min=1)] = 50,
    warmup: Annotated[int, typer.Option(help="untimed runs first", min=0)] = 5,
    min_time: Annotated[float, typer.Option("--min-time", help="minimum seconds of timed runs", min=0)] = 1.0,
    threads: Annotated[Optional[int], typer.Option(help="interpreter threads (default: the runtime's)",
                                                   min=1)] = None,
    windows: Annotated[int, typer.Option(help="split the timed runs into this many windows; when their medians "
                                         "differ by over 10% (the device changed speed), report the quietest",
                                         min=1)] = 5,
    timeout: Annotated[float, typer.Option(help="seconds before the agent is stopped", min=1)] = 600.0,
    fresh: Annotated[bool, typer.Option("--fresh", help="measure again even if the store has this result")] = False,
    trust_new_host: Annotated[bool, typer.Option("--trust-new-host", help="accept and record an unknown SSH host "
                                                 "key (a changed key is always refused)")] = False,
    power_cmd: Annotated[Optional[str], typer.Option("--power-cmd", help="external power meter: a command run on "
                                                     "the device that prints watts")] = None,
    no_power: Annotated[bool, typer.Option("--no-power", help="skip the energy measurement")] = False,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure a .tflite model on a device through the device agent (a separate process).

    A repeated bench of the same model, device, runtime and settings is answered from the store.

    Over SSH the agent (one file) and the model are uploaded once into ~/.cache/edgesdk-device on the
    device, checked against known_hosts, and measurements on one device never overlap. Over ADB they go
    to /data/local/tmp/edgesdk; a phone without python is measured with a TFLite benchmark_model binary
    you supply (?benchmark_model=PATH on this machine), read into the same schema.

    Before the model is uploaded, the device's runtime is asked whether it has a kernel for every
    operator version in it; a runtime too old for the model is refused then.

    Example: edgesdk bench model_int8.tflite --runs 100 --threads 1
    Example: edgesdk bench model.tflite --device ssh://pi@raspberrypi.local?python=/home/pi/venv/bin/python
    Example: edgesdk bench model.tflite --device "adb://R58M123ABC?benchmark_model=./android_aarch64_benchmark_model"
    """
    from device_agent.protocol import BenchSettings

    from .measure import bench as run_bench
    from .store import Store

    try:
        settings = BenchSettings(runs=runs, warmup=warmup, min_time_s=min_time, threads=threads, windows=windows,
                                 power=not no_power, power_cmd=power_cmd)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    with err.status(f"measuring on {device}…"):
        m = run_bench(model, device, settings, store=Store(store), fresh=fresh, timeout_s=timeout,
                      trust_new_host=trust_new_host)
    doc = m.document
    if as_json:
        _print_json(m.to_dict())
        return
    _warn(doc["warnings"])
    lat, mem, dev = doc["latency"], doc["memory"], doc["device"]
    origin = "[cyan]from the store[/cyan] (use --fresh to measure again)" if m.cached else "measured now"
    out.print(f"[bold]{model}[/bold] on {m.device}: {origin}")
    table = Table(show_header=False, box=None)
    table.add_row("latency", f"p50 {_ms(lat['p50_ms'])} ms · mean {lat['mean_ms']:.3f} · p90 {_ms(lat['p90_ms'])} · "
                  f"p99 {_ms(lat['p99_ms'])} · min {lat['min_ms']:.3f} · std {lat['std_ms']:.3f} ms "
                  f"({lat['runs']} runs, {lat['warmup_runs']} warm-up)")
    table.add_row("first inference", f"{lat['first_inference_ms']:.3f} ms (init {lat['init_ms']:.1f} ms)")
    table.add_row("memory", f"peak RSS {_bytes(mem['peak_rss_bytes'])} (+{_bytes(mem['peak_rss_increase_bytes'])} "
                  f"to load and run it); model {_bytes(mem['model_bytes'])}")
    table.add_row("runtime", f"{doc['runtime']['name']} {doc['runtime']['version']}, threads {doc['threads']}")
    table.add_row("device", f"{dev['hostname']} · {dev['cpu_model']} · {dev['cores']} cores · "
                  f"fingerprint {dev['fingerprint']}")
    power = doc["power"]
    if power.get("source") is None:
        table.add_row("power", f"not measured: {power.get('reason')}")
    else:
        flag = " (estimated)" if power.get("estimated") else ""
        table.add_row("energy", f"{power['energy_per_inference_mj']:.4f} mJ per inference{flag} · active "
                      f"{power['active_w']:.3f} W, idle {power['idle_w']:.3f} W ({power['source']}, "
                      f"{power['samples']} samples)")
    out.print(table)


@profiles_app.command("list")
def profiles_list(as_json: JsonOpt = False) -> None:
    """List the shipped hardware profiles."""
    from .profiles import list_profiles, load_profile

    loaded = [load_profile(name) for name in list_profiles()]
    if as_json:
        _print_json([p.model_dump(mode="json") for p in loaded])
        return
    table = Table()
    for col in ("name", "class", "precisions", "RAM", "storage", "description"):
        table.add_column(col)
    for p in loaded:
        table.add_row(p.name, p.compute_class, ", ".join(p.precisions), _bytes(p.memory.ram_bytes),
                      _bytes(p.memory.storage_bytes), p.description)
    out.print(table)


@profiles_app.command("show")
def profiles_show(name: Annotated[str, typer.Argument(help="profile name or YAML path")],
                  as_json: JsonOpt = False) -> None:
    """Show one hardware profile in full."""
    from .profiles import load_profile

    p = load_profile(name)
    doc = p.model_dump(mode="json")
    if isinstance(doc.get("operators"), list):
        doc["operators"] = sorted(doc["operators"])
    if as_json:
        _print_json(doc)
        return
    import yaml

    out.print(yaml.safe_dump(doc, sort_keys=False, width=100), highlight=False)


@devices_app.command("add")
def devices_add(name: Annotated[str, typer.Argument(help="a name, e.g. pi5-lab")],
                url: Annotated[str, typer.Argument(help="local, ssh://user@host[:port][?python=PATH], "
                                                   "adb://SERIAL[?python=PATH|benchmark_model=PATH] or "
                                                   "serial:///dev/ttyACM0[?baud=115200]")],
                replace: Annotated[bool, typer.Option("--replace", help="overwrite a device of that name")] = False,
                store: StoreOpt = None) -> None:
    """Name a device URL; the name then works wherever --device takes a URL.

    Example: edgesdk devices add pi5 "ssh://pi@raspberrypi.local?python=/home/pi/venv/bin/python"
    Example: edgesdk devices add pixel8 "adb://38121FDJH000AB?benchmark_model=/opt/tflite/android_aarch64_benchmark_model"
    """
    from . import devices
    from .store import Store

    devices.add(Store(store), name, url, replace=replace)
    out.print(f"added device [bold]{name}[/bold] → {url}", highlight=False)


@devices_app.command("list")
def devices_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """List the named devices."""
    from .store import Store

    known = Store(store).devices()
    if as_json:
        _print_json(known)
        return
    if not known:
        out.print("no named devices yet; add one with `edgesdk devices add NAME URL`")
        return
    table = Table()
    table.add_column("name")
    table.add_column("url")
    for name, url in known.items():
        table.add_row(name, url)
    out.print(table)


@devices_app.command("remove")
def devices_remove(name: Annotated[str, typer.Argument(help="a named device")], store: StoreOpt = None) -> None:
    """Forget a named device (what was uploaded to it stays; see `devices clean`)."""
    from .errors import DeployError
    from .store import Store

    if not Store(store).remove_device(name):
        raise DeployError(f"no device named {name!r}")
    out.print(f"removed device {name}")


@devices_app.command("check")
def devices_check(device: Annotated[str, typer.Argument(help="a named device or a URL")],
                  trust_new_host: Annotated[bool, typer.Option("--trust-new-host", help="accept and record an "
                                                               "unknown SSH host key")] = False,
                  store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Is the device reachable? Which python, TFLite runtime and version, power source?

    Exits 1 when the device cannot measure (unreachable, or no TFLite runtime), saying why.
    """
    from . import devices
    from .store import Store

    result = devices.check(device, Store(store), trust_new_host=trust_new_host)
    if as_json:
        _print_json(result.to_dict())
    else:
        table = Table(show_header=False, box=None)
        table.add_row("device", f"{result.device} ({result.url})")
        table.add_row("reachable", "yes" if result.reachable else f"[red]no[/red]: {result.error}")
        if result.reachable:
            table.add_row("python", result.python or f"[red]?[/red] {result.error or ''}")
            runtime = result.runtime
            table.add_row("runtime", f"{runtime['name']} {runtime['version']}" if runtime
                          else f"[red]none[/red]: {result.runtime_error}")
            table.add_row("power", result.power or "")
            table.add_row("fingerprint", result.fingerprint or "")
        out.print(table)
    if not result.ok:
        raise typer.Exit(1)


@devices_app.command("clean")
def devices_clean(device: Annotated[str, typer.Argument(help="a named device, an ssh:// or adb:// URL")],
                  store: StoreOpt = None) -> None:
    """Remove the agent and models edgesdk uploaded to a device."""
    from . import devices
    from .deploy import open_transport
    from .store import Store

    transport = open_transport(devices.resolve(device, Store(store)))
    try:
        removed = transport.clean()
    finally:
        transport.close()
    out.print(f"removed {removed} file(s) edgesdk had uploaded to {device}")


@export_app.command("c")
def export_c_cmd(
    model: Annotated[Path, typer.Argument(help="the .tflite to embed")],
    output: Annotated[Path, typer.Option("--output", "-o", help="folder for model_data.h/.cc and model_ops.h")],
    arena: Annotated[Optional[int], typer.Option("--arena", help="tensor arena bytes to declare (default: the "
                                                 "host TFLite Micro arena + 1 KiB + 5 %)", min=1)] = None,
    name: Annotated[str, typer.Option("--name", help="C identifier of the model array")] = "g_model",
    as_json: JsonOpt = False,
) -> None:
    """C++ sources for a TFLite Micro firmware: the model as a 16-byte aligned array, the tensor arena
    size (found by allocating the model in TFLite Micro on this machine) and an op resolver that
    registers exactly the operators used. firmware_examples/ has harnesses that include them.

    Example: edgesdk export c model.tflite -o firmware/src
    """
    from .export_c import export_c

    with err.status("finding the tensor arena…"):
        result = export_c(model, output, arena_bytes=arena, name=name)
    if as_json:
        _print_json(dataclasses.asdict(result))
        return
    out.print(f"wrote {', '.join(Path(f).name for f in result.files)} to {result.directory}: arena "
              f"{result.arena_bytes:,} B (the model needs {result.host_arena_bytes:,} B in TFLite Micro), "
              f"{len(result.operators)} operators: {', '.join(result.operators)}", highlight=False)


@app.command()
def techniques() -> None:
    """List the compression techniques a recipe can use."""
    from .techniques import REGISTRY

    table = Table()
    for col in ("step", "kind", "what it does"):
        table.add_column(col)
    for t in REGISTRY.values():
        table.add_row(t.name, t.kind, t.help)
    out.print(table)
    out.print("Compose with commas: keras steps (one of prune, wanda or sparsegpt; then cluster, qat) run in that "
              "order, one conversion step last.")


@app.command()
def version() -> None:
    """Print the edgesdk version."""
    out.print(f"edgesdk {__version__}")


from .cli_suite import suite_app  # noqa: E402 - it uses the consoles and options above

app.add_typer(suite_app, name="suite")


def _os_error(exc: OSError) -> str:
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


def main(argv: list[str] | None = None) -> int:
    """Entry point: every error becomes one line on stderr and a non-zero exit code, never a traceback.

    Usage errors are click's (exit 2 with the usage line); edgesdk's own errors print their message.
    """
    try:
        app(args=argv, prog_name="edgesdk", standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except EdgeSdkError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("interrupted; nothing half-written was kept")
        return 130
    except OSError as exc:  # a file system said no: a directory, /proc, read-only, full, no permission
        err.print(f"[red]error:[/red] {_os_error(exc)}", highlight=False)
        log.debug("file system error", exc_info=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - last resort: a one-line report, traceback on request
        if os.environ.get("EDGESDK_DEBUG"):
            raise
        err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (set EDGESDK_DEBUG=1 for a traceback)",
                  highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
