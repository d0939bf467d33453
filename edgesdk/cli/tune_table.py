"""What `edgesdk tune` prints: the original model first, each candidate against it, and the verdict.

The quality column says what it holds (accuracy on the user's labels, top-1 agreement with the original,
or output fidelity in dB SQNR, and whether the inputs were the user's or generated); "vs original" says
how many times smaller and faster each kept candidate is, and the quality it gave up, in points.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ..quality import Quality
from .common import err, out, tag

KEPT = ("measured", "estimated")


def quality_heading(rows: list[dict[str, Any]]) -> str:
    """The quality column's heading: its metric and unit, and where its inputs came from."""
    found = next((q for r in rows if (q := Quality.from_dict(r.get("quality"))) is not None), None)
    if found is None:
        return "quality"
    if found.metric == "accuracy":
        name = "accuracy"
    elif found.top1_agreement is not None:
        name = "top-1 agree"
    elif found.metric == "mse":
        name = "MSE"
    else:
        name = "SQNR dB"
    return f"{name} (generated inputs)" if found.inputs == "generated" else name


def quality_cell(row: dict[str, Any]) -> str:
    """A row's quality in the heading's unit; for a fidelity, its SQNR beside the agreement."""
    q = Quality.from_dict(row.get("quality"))
    if q is None:
        return "–"
    if q.metric == "accuracy" and q.after is not None:
        return f"{q.after:.4f}"
    if q.top1_agreement is not None:
        sqnr = "" if q.sqnr_db is None or row.get("quality", {}).get("reference") else f" ({q.sqnr_db:.1f} dB)"
        return f"{q.top1_agreement:.3f}{sqnr}"
    if q.metric == "mse" and q.after is not None:
        return f"{q.after:.4g}"
    return "ref." if row.get("quality", {}).get("reference") else "–" if q.sqnr_db is None else f"{q.sqnr_db:.1f}"


def versus_cell(row: dict[str, Any], baseline: dict[str, Any] | None = None) -> str:
    """``2.7× smaller · 1.4× faster · −0.3 pt`` (only what is known)."""
    if baseline is not None and row.get("sha256") and row.get("sha256") == baseline.get("sha256"):
        return "the same bytes as the original"
    vs = row.get("versus") or {}
    parts = []
    for key, word in (("smaller", "smaller"), ("faster", "faster")):
        ratio = vs.get(key)
        if ratio is not None and abs(ratio - 1) >= 0.005:
            parts.append(f"{ratio:.2f}× {word}" if ratio >= 1 else f"{1 / ratio:.2f}× {_opposite(word)}")
    delta = vs.get("quality_delta")
    if delta is not None:
        parts.append(f"{100 * delta:+.1f} pt".replace("-", "−"))
    return " · ".join(parts) or ("same" if vs else "")


def _opposite(word: str) -> str:
    return {"smaller": "bigger", "faster": "slower"}[word]


def _latency(row: dict[str, Any]) -> str:
    if row.get("latency_ms") is None:
        return "–"
    return f"{row['latency_ms']:.4g}" + (" est." if row.get("estimated") else "")


def _notes(row: dict[str, Any]) -> str:
    acc = row.get("accelerator") or {}
    return row.get("reason") or "; ".join(row.get("violations") or []) or \
        (f"repeat of #{row['repeat_of']}" if "repeat_of" in row else "") or \
        (f"{', '.join(acc.get('fallback_ops') or []) or 'some operators'} on the CPU"
         if acc.get("fully_accelerated") is False else "")


def _title(result: Any, shown: list[dict[str, Any]]) -> str:
    where = ", ".join(result.devices) or "no device (latency ESTIMATED)"
    kept = sum(1 for r in shown if r.get("status") in KEPT)
    how = "estimated" if not result.devices else "measured"
    ran = sorted({(r.get("accelerator") or {}).get("used") or "cpu" for r in shown if r.get("status") == "measured"})
    software = any(((r.get("accelerator") or {}).get("adapter") or {}).get("software") for r in shown)
    on = f" ({'/'.join(a.upper() for a in ran)}{', software GPU: not GPU speed' if software else ''})" \
        if ran and ran != ["cpu"] else ""
    return f"{result.study}: {len(shown)} trials ({kept} {how}) on {where}{on}"


def print_tune(result: Any) -> None:
    """The notes (on stderr), the table (the original first, skipped proposals counted below it) and the
    verdict: the best, or that nothing beats the original, or that nothing could be measured."""
    for note in result.notes:
        err.print(tag("note:", "yellow"), note, highlight=False)
    shown = [r for r in result.trials if r.get("recipe") and r.get("status") != "skipped"]
    skipped = [r for r in result.trials if r.get("status") == "skipped"]
    baseline = result.baseline
    table = Table(title=_title(result, shown))
    heading = quality_heading(([baseline] if baseline else []) + shown)
    for column in ("#", "recipe", "status", heading, "p50 ms", "bytes", "vs original", "notes"):
        table.add_column(column, justify="right" if column in ("#", heading, "p50 ms", "bytes") else "left",
                         no_wrap=column == "recipe")
    if baseline is not None:
        table.add_row("", baseline.get("recipe", "original"), baseline.get("status", ""), quality_cell(baseline),
                      _latency(baseline), _bytes(baseline), "(the model as given)", _notes(baseline),
                      style="dim")
    for r in shown:
        mark = " ★ best" if r["number"] == result.best else " · Pareto" if r["number"] in result.pareto else ""
        table.add_row(str(r["number"]), r["recipe"], r.get("status", "") + mark, quality_cell(r), _latency(r),
                      _bytes(r), versus_cell(r, baseline), _notes(r))
    out.print(table)
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


def _bytes(row: dict[str, Any]) -> str:
    return "–" if row.get("model_bytes") is None else f"{row['model_bytes']:,}"


__all__ = ["print_tune", "quality_cell", "quality_heading", "versus_cell"]
