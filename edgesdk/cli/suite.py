"""`edgesdk suite ...`: run a suite over a device pool, compare runs, list runs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from ..errors import GateError
from .app import suite_app
from .common import JsonOpt, StoreOpt, brief, err, out, print_json
from .common import tag as styled

LatencyGate = Annotated[str, typer.Option("--max-latency-increase", help="p50 increase allowed beyond the "
                                          "runs' noise (window medians, earlier runs); a paired re-measurement "
                                          "of both models decides where there is one")]
SizeGate = Annotated[str, typer.Option("--max-size-increase", help="model size increase allowed (percent)")]
QualityGate = Annotated[str, typer.Option("--max-quality-drop", help="accuracy or top-1 agreement drop allowed, "
                                          "in percentage points")]


def _gates(latency: str, size: str, quality: str) -> Any:
    from ..suite.gates import Gates, parse_fraction, parse_points

    return Gates(parse_fraction(latency, "--max-latency-increase"), parse_fraction(size, "--max-size-increase"),
                 parse_points(quality, "--max-quality-drop"))


def _print_comparison(comparison: Any) -> None:
    from ..suite.gates import Verdict

    table = Table(title=f"{comparison.candidate} against {comparison.baseline}")
    for col in ("cell", "verdict", "p50", "noise", "size", "quality"):
        table.add_column(col)
    for c in comparison.cells:
        style = "red" if c.verdict.failure else "yellow" if c.verdict == Verdict.WITHIN_NOISE else ""
        table.add_row(c.cell, styled(str(c.verdict), style) if style else str(c.verdict),
                      "" if c.latency_change is None else f"{c.latency_change:+.1%}" + (" paired" if c.paired else ""),
                      "" if c.latency_noise is None else f"±{c.latency_noise:.1%}",
                      "" if c.size_change is None else f"{c.size_change:+.1%}",
                      "" if c.quality_change is None else f"{c.quality_change:+.2f} pt")
    out.print(table)
    (out if comparison.passed else err).print(comparison.summary(), highlight=False)


def _print_run(run: dict[str, Any]) -> None:
    from ..suite.outputs import row

    devices = list(dict.fromkeys(c["device"] for c in run["cells"]))
    table = Table(title=f"suite {run['suite']} · run {run['run_id']}")
    table.add_column("model · recipe")
    for d in devices:
        table.add_column(d)
    cells = {(c["model"], c["recipe"], c["device"]): c for c in run["cells"]}
    for model, recipe in dict.fromkeys((c["model"], c["recipe"]) for c in run["cells"]):
        shown = []
        for d in devices:
            c = cells[(model, recipe, d)]
            r = row(c)
            shown.append(f"{r['p50_ms']:.4g} ms · {r['model_bytes']:,} B" if c["status"] == "passed"
                         else styled("failed", "red") if c["status"] == "failed" else styled(str(c["status"]), "dim"))
        table.add_row(f"{model} · {recipe}", *shown)
    out.print(table)
    for c in run["cells"]:
        if c["status"] == "failed":
            err.print(styled("failed", "red"), f"{c['cell']}: {brief(str(c.get('reason')))}", highlight=False)
    for device in devices:
        skipped = [c for c in run["cells"] if c["device"] == device and c["status"] == "skipped"]
        if skipped:
            why = brief(str(skipped[0].get("reason")))
            err.print(styled("skipped", "yellow"), f"{device} ({len(skipped)} cells): {why}", highlight=False)


def _verdict(result: Any) -> str:
    """Why a run fails, in one line: nothing measured, cells that failed (to compress, or on the device),
    regressions; each named for what it is."""
    cells = result.run["cells"]
    parts = []
    failed = [c for c in cells if c["status"] == "failed"]
    compress_failed = sum(1 for c in failed if c.get("stage") == "compress")
    if compress_failed:
        parts.append(f"{compress_failed} cell(s) failed to compress")
    if len(failed) > compress_failed:
        parts.append(f"{len(failed) - compress_failed} cell(s) failed on the device")
    if result.comparison is not None and result.comparison.regressions:
        parts.append(f"{len(result.comparison.regressions)} cell(s) regressed past the gates")
    if parts:
        return "; ".join(parts) + " (see above)"
    skipped = sum(1 for c in cells if c["status"] == "skipped")
    return (f"no cell was measured ({skipped} of {len(cells)} skipped: every device unknown, unreachable or unfit); "
            "pass --allow-empty to accept a run that measures nothing")


@suite_app.command("run")
def suite_run(
    suite: Annotated[Path, typer.Argument(metavar="SUITE", help="the suite YAML file")],
    output: Annotated[Path, typer.Option("--output", "-o", help="folder for results.json, results.csv, "
                                         "junit.xml and index.html")],
    store: StoreOpt = None,
    tag: Annotated[Optional[str], typer.Option("--tag", help="a label kept with the run (a commit, a branch)")] = None,
    run_id: Annotated[Optional[str], typer.Option("--run-id", help="join this run (or start it): processes on "
                                                  "several hosts sharing a --store fill one run")] = None,
    devices: Annotated[Optional[str], typer.Option("--devices", help="comma-separated device names of the suite "
                                                   "this process serves (default: all)")] = None,
    baseline: Annotated[Optional[str], typer.Option("--baseline", help="gate against a run id, 'latest' (the "
                                                    "previous run of this suite) or a results.json")] = None,
    max_latency_increase: LatencyGate = "5%",
    max_size_increase: SizeGate = "0",
    max_quality_drop: QualityGate = "0.5pt",
    junit: Annotated[Optional[Path], typer.Option("--junit", help="also write the JUnit XML here")] = None,
    allow_empty: Annotated[bool, typer.Option("--allow-empty", help="exit 0 even when no cell was measured "
                                              "(every device skipped or unknown)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run every model x recipe of a suite on every device: devices in parallel, one job at a time each.

    Devices that fail their health check (unreachable after retries, no runtime, too hot, battery
    low) are skipped with the reason; the rest carry on. Every result is stored with the run id and
    tag. Exits 1 when a cell failed, when no cell was measured at all (unless --allow-empty) or, with
    --baseline, a gate failed; a cell that failed to compress or measure is reported as that, not as a
    regression. With --baseline, a cell whose
    p50 rose past the gate is measured again alternately with the baseline's model (kept in the
    store), and that pair decides, so a device that drifted between runs raises no false alarm.

    Examples:

    \b
      edgesdk suite run lab.yaml -o out/nightly --tag "$(git rev-parse --short HEAD)" --baseline latest
    """
    from ..store import Store
    from ..suite import run_suite

    gates = _gates(max_latency_increase, max_size_increase, max_quality_drop)
    lock = threading.Lock()

    def progress(event: Any) -> None:
        with lock:
            err.print(styled(f"[{event.who}]", "cyan"), event.text, highlight=False)

    result = run_suite(suite, output, store=Store(store), tag=tag, run_id=run_id,
                       serve=[d.strip() for d in devices.split(",") if d.strip()] if devices else None,
                       baseline=baseline, gates=gates, junit=junit, progress=progress, allow_empty=allow_empty)
    if as_json:
        print_json({**result.run, "comparison": result.comparison.to_dict() if result.comparison else None,
                     "outputs": {k: str(v) for k, v in result.paths.items()}})
    else:
        _print_run(result.run)
        if result.comparison is not None:
            _print_comparison(result.comparison)
        out.print(f"wrote {', '.join(str(p) for p in result.paths.values())}", highlight=False)
    if not result.ok:
        raise GateError(_verdict(result))


@suite_app.command("compare")
def suite_compare(
    baseline: Annotated[str, typer.Argument(metavar="BASELINE",
                                            help="the earlier run: a run id, a results.json or its folder")],
    candidate: Annotated[str, typer.Argument(metavar="CANDIDATE",
                                             help="the later run: a run id, a results.json or its folder")],
    max_latency_increase: LatencyGate = "5%",
    max_size_increase: SizeGate = "0",
    max_quality_drop: QualityGate = "0.5pt",
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare two runs cell by cell; exit 1 when a cell got slower, bigger or less accurate than the gates
    allow. A latency increase within the two runs' own noise is not a regression; a paired
    re-measurement recorded by `suite run --baseline` between these two runs decides latency. Measures
    nothing itself.

    Examples:

    \b
      edgesdk suite compare out/monday out/tuesday --max-latency-increase 5%
    """
    from ..store import Store
    from ..suite import compare, load_results

    gates = _gates(max_latency_increase, max_size_increase, max_quality_drop)
    db = Store(store)
    comparison = compare(load_results(baseline, db), load_results(candidate, db), gates)
    if as_json:
        print_json(comparison.to_dict())
    else:
        _print_comparison(comparison)
    if not comparison.passed:
        raise GateError(f"{len(comparison.failures)} cells failed the regression gates")


@suite_app.command("list")
def suite_list(
    name: Annotated[Optional[str], typer.Option("--suite", help="only runs of this suite")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Runs in the store, newest first, with their cells by status."""
    from ..store import Store
    from ..suite.runs import list_runs

    found = list_runs(Store(store), name)
    if as_json:
        print_json(found)
        return
    table = Table()
    for col in ("run id", "suite", "tag", "created", "cells"):
        table.add_column(col)
    for r in found:
        table.add_row(r["run_id"], r["suite"], r["tag"] or "", f"{r['created_at']:%Y-%m-%d %H:%M}",
                      ", ".join(f"{n} {s}" for s, n in r["cells"].items()))
    out.print(table)
