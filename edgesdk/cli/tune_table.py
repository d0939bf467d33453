"""What `edgesdk tune` prints: the original model first, each candidate against it, and the verdict.

The cells (quality in its unit, "vs original") are :mod:`edgesdk.search.cells`, shared with report.html.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ..search.cells import duration, per_output, quality_cell, quality_heading, size, versus_cell
from .common import err, out, tag

KEPT = ("measured", "estimated")


def _latency(row: dict[str, Any]) -> str:
    if row.get("latency_ms") is None:
        return "–"
    return f"{row['latency_ms']:.4g}" + (" est." if row.get("estimated") else "")


def _notes(row: dict[str, Any]) -> str:
    acc = row.get("accelerator") or {}
    said = row.get("reason") or "; ".join(row.get("violations") or []) or \
        (f"repeat of #{row['repeat_of']}" if "repeat_of" in row else "") or \
        (f"{', '.join(acc.get('fallback_ops') or []) or 'some operators'} on the CPU"
         if acc.get("fully_accelerated") is False else "")
    return "; ".join(part for part in (said, per_output(row)) if part)


def _title(result: Any, shown: list[dict[str, Any]]) -> str:
    where = ", ".join(result.devices) or "no device (latency ESTIMATED)"
    kept = sum(1 for r in shown if r.get("status") in KEPT)
    how = "estimated" if not result.devices else "measured"
    ran = sorted({(r.get("accelerator") or {}).get("used") or "cpu" for r in shown if r.get("status") == "measured"})
    software = any(((r.get("accelerator") or {}).get("adapter") or {}).get("software") for r in shown)
    on = f" ({'/'.join(a.upper() for a in ran)}{', software GPU: not GPU speed' if software else ''})" \
        if ran and ran != ["cpu"] else ""
    return f"{result.study}: {len(shown)} trials ({kept} {how}) on {where}{on}"


def print_tune(result: Any, wide: bool = False) -> None:
    """The notes (on stderr), the table (the original first, skipped proposals counted below it) and the
    verdict: the best, or that nothing beats the original, or that nothing could be measured.

    The table fits 80 columns: each figure in a column of its own, the notes of the rows below it;
    ``wide`` gives one row per trial with its notes and the change against the original in words."""
    for note in result.notes:
        err.print(tag("note:", "yellow"), note, highlight=False)
    shown = [r for r in result.trials if r.get("recipe") and r.get("status") != "skipped"]
    skipped = [r for r in result.trials if r.get("status") == "skipped"]
    baseline = result.baseline
    heading = quality_heading(([baseline] if baseline else []) + shown)
    table = _wide(result, shown, heading) if wide else _compact(result, shown, heading)
    out.print(table)
    if not wide:
        for r in ([baseline] if baseline else []) + shown:
            if _notes(r):
                out.print(f"  {'#' + str(r['number']) if 'number' in r else ''} {r['recipe']}: {_notes(r)}",
                          highlight=False, soft_wrap=not out.is_terminal)
    if skipped:
        out.print(f"{len(skipped)} proposal(s) skipped without a trial: a weaker candidate had already broken a "
                  "limit (results.json lists them)", highlight=False)
    measured = f"{result.new_measurements} new device measurement(s)" if result.devices else \
        "latency estimated, nothing measured (no --device)"
    if result.best is not None:
        best = result.trial(result.best)
        verdict = "meets every constraint" if result.best_meets_constraints else "meets NOT every constraint"
        gain = versus_cell(best)
        out.print(f"best: {best['recipe']} ({verdict}{'; ' + gain if gain else ''}) → {result.outdir}/best.tflite; "
                  f"report: {result.outdir}/report.html; {measured}", highlight=False)
    elif result.beats_original is False:
        out.print(f"nothing beats the original model: keep it (no best.tflite); report: {result.outdir}/report.html; "
                  f"{measured}", highlight=False)
    else:
        out.print("no candidate could be measured; see the notes column", highlight=False)


def _mark(result: Any, row: dict[str, Any]) -> str:
    return " ★ best" if row["number"] == result.best else " · Pareto" if row["number"] in result.pareto else ""


def _wide(result: Any, shown: list[dict[str, Any]], heading: str) -> Table:
    """One line per trial, the notes and the change against the original in words (--wide)."""
    baseline = result.baseline
    table = Table(title=_title(result, shown))
    for column in ("#", "recipe", "status", heading, "p50 ms", "bytes", "vs original", "notes"):
        table.add_column(column, justify="right" if column in ("#", heading, "p50 ms", "bytes") else "left",
                         no_wrap=column == "recipe")
    if baseline is not None:
        table.add_row("", baseline.get("recipe", "original"), baseline.get("status", ""), quality_cell(baseline),
                      _latency(baseline), _bytes(baseline), "(the model as given)", _notes(baseline),
                      style="dim")
    for r in shown:
        table.add_row(str(r["number"]), r["recipe"], r.get("status", "") + _mark(result, r), quality_cell(r),
                      _latency(r), _bytes(r), versus_cell(r, baseline), _notes(r))
    return table


def _compact(result: Any, shown: list[dict[str, Any]], heading: str) -> Table:
    """The figures only, each in its column, readable at 80 columns: a long recipe folds."""
    from rich import box

    baseline = result.baseline
    table = Table(title=_title(result, shown), box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1),
                  collapse_padding=True,
                  caption="★ the best · P on the Pareto front · = the same bytes as the original",
                  caption_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("recipe", overflow="fold", min_width=10)
    table.add_column("status", no_wrap=True)
    for column in (heading, "Δ pt", "p50", "size", "smaller", "faster"):
        table.add_column(column, justify="right", no_wrap=True)
    if baseline is not None:
        table.add_row("", baseline.get("recipe", "original"), baseline.get("status", ""),
                      quality_cell(baseline), "", _duration(baseline), size(baseline.get("model_bytes")), "1×", "1×",
                      style="dim")
    for r in shown:
        vs = r.get("versus") or {}
        delta = vs.get("quality_delta")
        same = baseline is not None and r.get("sha256") and r.get("sha256") == baseline.get("sha256")
        mark = "★" if r["number"] == result.best else "P" if r["number"] in result.pareto else ""
        table.add_row(f"{mark}{r['number']}", r["recipe"], r.get("status", ""), quality_cell(r),
                      "" if delta is None else f"{100 * delta:+.1f}".replace("-", "−"), _duration(r),
                      size(r.get("model_bytes")), "=" if same else _times(vs.get("smaller")),
                      "=" if same else _times(vs.get("faster")))
    return table


def _duration(row: dict[str, Any]) -> str:
    return duration(row.get("latency_ms")) + ("*" if row.get("estimated") else "")


def _times(ratio: float | None) -> str:
    return "–" if ratio is None else f"{ratio:.2f}×"


def _bytes(row: dict[str, Any]) -> str:
    return "–" if row.get("model_bytes") is None else f"{row['model_bytes']:,}"


__all__ = ["print_tune"]
