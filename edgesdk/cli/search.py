"""`tune` and `calibrate`: the hardware-aware search and its latency predictor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from device_agent.protocol import MAX_RUNS, MAX_SECONDS, BenchSettings

from ..search.cells import duration
from ..techniques.training import DEFAULT_EPOCHS
from .app import app
from .common import AcceleratorOpt, JsonOpt, StoreOpt, TrustOpt, brief, err, out, print_json
from .config import ConfigOpt
from .space_options import restricting
from .tune_table import print_tune

DEFAULT_BENCH = BenchSettings()
StorageOpt = Annotated[Optional[str], typer.Option("--storage", help="Optuna storage URL (default: SQLite in OUTDIR); "
                                                   "postgresql://… to share one study between hosts")]
StudyOpt = Annotated[Optional[str], typer.Option("--study", help="study name (default: from model and profile)")]
MinTimeOpt = Annotated[float, typer.Option("--min-time", help="minimum seconds of timed runs", min=0,
                                           max=MAX_SECONDS)]
FullAccelerationOpt = Annotated[bool, typer.Option(
    "--require-full-acceleration", help="reject candidates the profile predicts would not run wholly on its "
    "accelerator (before any device time), and those the device reports partly on the CPU")]


# The limits and the budget of `tune`, as options.
MaxAccuracyDropOpt = Annotated[Optional[float], typer.Option(
    "--max-accuracy-drop", min=0, metavar="FRACTION", help="largest accepted drop (0.01 = 1 point); with "
    "unlabelled --data, a classifier's top-1 agreement with the original must be at least 1 - FRACTION")]
MinAccuracyOpt = Annotated[Optional[float], typer.Option(
    "--min-accuracy", min=0, max=1, metavar="FRACTION", help="lowest accepted accuracy on the labels of --data "
    "(0.95 = 95 %)")]
MaxLatencyOpt = Annotated[Optional[float], typer.Option(
    "--max-latency-ms", min=0, metavar="MS", help="highest accepted p50 latency on the device; with a calibrated "
    "predictor, candidates predicted at over twice it are not measured")]
MaxMemoryOpt = Annotated[Optional[int], typer.Option(
    "--max-memory", min=1, metavar="BYTES", help="bytes of weights (where the profile loads them into RAM) plus "
    "peak activations")]
ObjectivesOpt = Annotated[Optional[str], typer.Option(
    "--objectives", metavar="LIST", help="comma-separated, first is primary: accuracy, latency, size, energy "
    "(default accuracy,latency with --data, else latency,size)")]
MinSqnrOpt = Annotated[Optional[float], typer.Option(
    "--min-sqnr", metavar="DB", help="lowest accepted SQNR, in dB, of every output against the original's "
    "(default without labels: 5)")]
WideOpt = Annotated[bool, typer.Option("--wide", help="one line per trial, with its notes and its change "
                                       "against the original in words (default: fits 80 columns)")]
SeedOpt = Annotated[int, typer.Option(help="sampler and fine-tuning seed", min=0, max=2**32 - 1)]
EpochsOpt = Annotated[int, typer.Option(help="fine-tuning epochs per candidate (as compress)", min=0)]
BudgetOpt = Annotated[Optional[int], typer.Option(
    "--budget", min=1, metavar="N", help="distinct candidates to try (default: 24, or the whole space with "
    "--time-budget)")]
TimeBudgetOpt = Annotated[Optional[float], typer.Option(
    "--time-budget", min=1, metavar="SECONDS", help="stop starting trials after this many seconds (the search "
    "then covers the whole space unless --budget limits it)")]


@app.command()
@restricting
def tune(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help=".keras, .h5, SavedModel directory or .tflite "
                                          "(the space keeps what the model can take)")],
    profile: Annotated[str, typer.Option("--profile", "-p", help="target profile name or YAML path")],
    outdir: Annotated[Path, typer.Option("--output", "-o", help="directory for best.tflite, pareto/, results.json, "
                                         "report.html and the study")],
    device: Annotated[Optional[list[str]], typer.Option("--device", metavar="DEVICE",
                                                        help="where to measure: local, ssh://…, "
                                                        "adb://… or a named device; repeat to measure on several "
                                                        "in parallel; none: latency is predicted (estimated)")] = None,
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help=".npz to evaluate quality on (x, optional "
                                                 "y)")] = None,
    train_data: Annotated[Optional[Path], typer.Option("--train-data", help=".npz to calibrate and fine-tune "
                                                       "on, kept apart from --data")] = None,
    max_accuracy_drop: MaxAccuracyDropOpt = None,
    min_accuracy: MinAccuracyOpt = None,
    min_sqnr: MinSqnrOpt = None,
    max_latency_ms: MaxLatencyOpt = None,
    max_memory: MaxMemoryOpt = None,
    objectives: ObjectivesOpt = None,
    budget: BudgetOpt = None,
    time_budget: TimeBudgetOpt = None,
    restrict: dict[str, list[str]] | None = None,
    storage: StorageOpt = None,
    study: StudyOpt = None,
    seed: SeedOpt = 0,
    epochs: EpochsOpt = DEFAULT_EPOCHS,
    runs: Annotated[int, typer.Option(help="minimum timed runs per measurement", min=1,
                                      max=MAX_RUNS)] = DEFAULT_BENCH.runs,
    min_time: MinTimeOpt = DEFAULT_BENCH.min_time_s,
    accelerator: AcceleratorOpt = None,
    require_full_acceleration: FullAccelerationOpt = False,
    trust_model_code: TrustOpt = False,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    wide: WideOpt = False,
) -> None:
    """Search compressions of a model for a profile, measure each on the device, keep the best.

    Each candidate (precision x sparsity x clusters, from what the profile runs) is compressed, checked
    against the profile before any device time (rejected ones are kept with the reason), evaluated and
    measured; the results store answers repeated measurements. Running the same command again resumes
    the study in OUTDIR. Ctrl-C stops and keeps what was measured.

    Examples:

    \b
      edgesdk tune model.keras -p rpi5 --device pi5 -d val.npz --max-accuracy-drop 0.01 -o tuned/
      edgesdk tune model.tflite -p cortex-m4 --objectives size,accuracy --budget 12 -o tuned/
    """
    from ..intake import open_model
    from ..profiles import load_profile
    from ..search import Constraints, build, default_budget, for_form
    from ..search import tune as run_tune
    from ..store import Store

    prof = load_profile(profile)
    space = build(prof, restrict)
    space = for_form(space, open_model(model, trust_code=trust_model_code).form)  # what this model can take
    constraints = Constraints(max_accuracy_drop=max_accuracy_drop, min_accuracy=min_accuracy, min_sqnr_db=min_sqnr,
                              max_latency_ms=max_latency_ms, max_memory_bytes=max_memory,
                              require_full_acceleration=require_full_acceleration)
    wanted = [o.strip() for o in objectives.split(",")] if objectives is not None else None
    with _TuneProgress(f"tuning {model.name} for {prof.name} ({len(space)} candidates)", len(space),
                       default_budget(len(space), budget, time_budget), chosen=budget or time_budget) as show:
        result = run_tune(model, prof, outdir, devices=device or [], data=data, train_data=train_data,
                          constraints=constraints, objectives=wanted,
                          budget=budget, time_budget_s=time_budget, storage=storage, study_name=study, seed=seed,
                          epochs=epochs, store=Store(store),
                          settings=BenchSettings(runs=runs, min_time_s=min_time, accelerator=accelerator),
                          space=space, progress=show, trust_model_code=trust_model_code)
    if as_json:
        print_json(result.to_dict())
    else:
        print_tune(result, wide)
    if result.interrupted:
        raise typer.Exit(130)
    if result.best is None and result.beats_original is not False:  # nothing measured: no answer at all
        raise typer.Exit(1)


class _TuneProgress:
    """tune's progress on stderr: a bar with the best so far on a terminal, one line per trial in a log.
    The bar appears with the first report, after tune has checked its input: an error stays one line."""

    def __init__(self, title: str, size: int, total: int, *, chosen: object, console: Any = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.table import Column

        self.size, self.total, self.chosen, self.title = size, total, chosen, title
        self.console = console or err
        # One line at any width: the title is printed once above it, the bar is short, and the best so far
        # takes what is left of the line and is cut with an ellipsis rather than wrapped.
        self.bar = Progress(BarColumn(bar_width=16), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("left"),
                            TimeRemainingColumn(),
                            TextColumn("{task.fields[best]}", table_column=Column(no_wrap=True, overflow="ellipsis",
                                                                                    ratio=1)),
                            console=self.console, transient=False, expand=True,
                            disable=not self.console.is_terminal)  # a log gets one line per trial instead
        self.task = self.bar.add_task(title, total=total, best="", start=False)

    def __enter__(self) -> _TuneProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def __call__(self, event: Any) -> None:
        from ..search import DEFAULT_BUDGET

        detail = event.detail
        best, row, left = detail.get("best"), detail.get("row"), detail.get("time_budget_s")
        note = f"best {best['recipe']} {duration(best['latency_ms'])}" + \
            (" (est.)" if best.get("estimated") else "") if best else ""
        if left:
            note = f"{max(0.0, left - detail['elapsed_s']):.0f} s of budget left · {note}"
        self.bar.update(self.task, completed=event.done, total=event.total, best=note)
        if row is None:  # before the first trial: a resumed study starts from what it has done
            self.console.print(self.title, highlight=False)
            if self.chosen is None and self.total < self.size:
                self.console.print(f"trying {self.total} of the {self.size} candidates (the default budget is "
                                   f"{DEFAULT_BUDGET}; --budget N or --time-budget S to search further)",
                                   highlight=False)
            self.bar.start_task(self.task)
            self.bar.start()
        elif not self.console.is_terminal and row.get("recipe"):  # logs (CI, cron) get one line per trial
            self.console.print(f"[{event.done}/{event.total}] {row['recipe']}: {row.get('status')}"
                               + (f", p50 {duration(row['latency_ms'])}" if row.get("latency_ms") is not None else "")
                               + (" (estimated)" if row.get("estimated") else "")
                               + (f" ({brief(str(row['reason']))})" if row.get("reason") else ""), highlight=False)


@app.command()
def calibrate(
    profile: Annotated[str, typer.Option("--profile", "-p", help="the profile whose predictor to fit")],
    device: Annotated[str, typer.Option("--device", metavar="DEVICE",
                                        help="where to measure: local, ssh://…, adb://… or a named "
                                        "device")] = "local",
    models: Annotated[int, typer.Option("--models", min=2, help="generated micro-models (each measured per "
                                        "precision)")] = 16,
    precision: Annotated[Optional[list[str]], typer.Option("--precision", help="precisions to calibrate "
                                                           "(default: fp32, dynamic, int8, int16x8 where the "
                                                           "profile runs them)")] = None,
    accelerator: AcceleratorOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit a profile's latency predictor to a device: measure generated micro-models, save the coefficients.

    The predictor estimates latency from MACs (per precision, dense and depthwise), bytes moved and the
    operator count; `tune` uses it when no device is given, flagging every figure as estimated, and to
    skip candidates predicted far over --max-latency-ms. The fit is saved beside a user's profile YAML
    (NAME.calibration.json), or in the data directory for a shipped profile.

    Examples:

    \b
      edgesdk calibrate -p rpi5 --device pi5
    """
    from device_agent.protocol import BenchSettings

    from ..profiles import load_profile
    from ..search import predict
    from ..store import Store

    prof = load_profile(profile)
    with err.status("calibrating…") as status:
        predictor = predict.calibrate(prof, device, count=models, precisions=precision or None,
                                      settings=BenchSettings(runs=30, warmup=3, min_time_s=0.3,
                                                             accelerator=accelerator), store=Store(store),
                                      progress=lambda e: status.update(
                                          f"measuring [{(e.done or 0) + 1}/{e.total}] {e.text}…"))
    if as_json:
        print_json(predictor.to_dict())
        return
    out.print(f"calibrated {prof.name} on {device} ({predictor.samples} measurements, runtime "
              f"{predictor.runtime['name'] if predictor.runtime else '?'}): median error of the fit "
              f"{predictor.fit_mape:.1%}; saved to {predict.calibration_path(prof)}", highlight=False)
