"""`report.html` for a tune: one self-contained file (inline SVG plots by matplotlib, CSS, no scripts, no
downloads), rendered from ``templates/report.html.j2`` by Jinja2 with autoescaping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..fileio import write_atomic
from .cells import duration, per_output, quality_cell, quality_heading, size, versus_cell
from .objectives import KEPT
from .plots import Limits, scatter

_CSS = """.wide{overflow-x:auto}
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:right}td:first-child,th:first-child,
td.l,th.l{text-align:left}td:not(.l){white-space:nowrap}tr.best{background:#e8f5e9}tr.original{background:#f1f5f9}tr.rejected,tr.failed{color:#888}.pill{display:inline-block;
padding:1px 8px;border-radius:9px;background:#eee;margin-right:4px}.est{color:#b45309;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:16px}svg{background:#fafafa;border:1px solid #ddd}
.note{background:#fff8e1;border-left:4px solid #f59e0b;padding:6px 10px;margin:6px 0}"""


def _fmt(value: Any, fmt: str = "{}") -> str:
    return "–" if value is None else fmt.format(value)


def _row(r: dict[str, Any], result: Any) -> dict[str, Any]:
    """One line of the trials table, every cell as text (the template escapes it)."""
    original = r.get("recipe") == "original" and r.get("number") is None
    notes = r.get("reason") or "; ".join(r.get("violations") or []) or \
        (f"repeat of #{r['repeat_of']}" if "repeat_of" in r else "")
    if r.get("cached"):
        notes = (notes + "; " if notes else "") + "measurement from the store"
    return {"klass": "original" if original else "best" if r.get("number") == result.best else r.get("status", ""),
            "number": "" if original else r.get("number"), "recipe": r.get("recipe"),
            "status": r.get("status", ""), "pareto": r.get("number") in result.pareto, "quality": quality_cell(r),
            "latency": duration(r.get("latency_ms")), "estimated": bool(r.get("estimated")),
            "bytes": _fmt(r.get("model_bytes"), "{:,}"),
            "versus": "the model as given" if original else versus_cell(r, result.baseline),
            "gzip": _fmt(r.get("gzip_bytes"), "{:,}"), "coded": _fmt(r.get("weight_entropy_bytes"), "{:,}"),
            "memory": _fmt(r.get("memory_bytes"), "{:,}"), "energy": _fmt(r.get("energy_mj"), "{:.4g}"),
            "energy_estimated": bool(r.get("energy_estimated")), "notes": notes}


def write_html(result: Any, path: Path) -> None:
    """Write the report for a :class:`~edgesdk.search.tune.TuneResult`."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    rows = [r for r in result.trials if r.get("recipe") and r.get("status") != "skipped"]
    kept = [r for r in rows if r.get("status") in KEPT and "repeat_of" not in r]
    pareto = set(result.pareto)
    best = result.trial(result.best) if result.best is not None else None
    base = result.baseline if (result.baseline or {}).get("status") in KEPT else None
    limits = Limits(quality=(result.limits or {}).get("quality"), latency_ms=(result.limits or {}).get("latency_ms"))
    verdict = ""
    if best is not None:
        verdict = "meets every constraint" if result.best_meets_constraints else \
            "meets NOT every constraint (closest): " + "; ".join(best.get("violations") or [])
    env = Environment(loader=PackageLoader("edgesdk.search"), autoescape=select_autoescape(["html", "j2"]),
                      keep_trailing_newline=True)
    page = env.get_template("report.html.j2").render(
        r=result, css=_CSS, where=", ".join(result.devices) or "none: latency ESTIMATED", rows=rows, kept=kept,
        skipped=sum(1 for t in result.trials if t.get("status") == "skipped"),
        notes=result.notes + (["the search was interrupted; this is what was finished"] if result.interrupted
                              else []),
        best=best, verdict=verdict, gain=versus_cell(best) if best is not None else "", duration=duration,
        plot_latency=scatter(kept, "latency_ms", "plot-latency", pareto, result.best, base, limits),
        plot_size=scatter(kept, "model_bytes", "plot-size", pareto, result.best, base, limits),
        any_estimated=any(r.get("estimated") for r in kept), heading=quality_heading(rows),
        table=[_row(r, result) for r in ([result.baseline] if result.baseline else []) + rows],
        device=_device(kept),
        candidates=[{"number": r["number"], "recipe": r["recipe"], "text": _describe(r, r.get("latency") or {})}
                    for r in kept])
    write_atomic(path, page.encode("utf-8"))


def _device(kept: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The device the candidates were measured on, its runtime and accelerator (none when estimated)."""
    device = next((r.get("device") for r in kept if r.get("device")), None)
    if not device:
        return []
    out = [(key, _fmt(device.get(key))) for key in ("hostname", "machine", "cpu_model", "emulated", "cores")]
    out.append(("RAM", size(device["ram_bytes"]) if device.get("ram_bytes") else "–"))
    out += [(key, _fmt(device.get(key))) for key in ("os", "governor", "fingerprint")]
    runtime = kept[0].get("runtime") or {}
    out.append(("runtime", f"{runtime.get('name')} {runtime.get('version')}"))
    acc = next((r.get("accelerator") for r in kept if r.get("accelerator")), None) or {}
    adapter = acc.get("adapter") or {}
    ran = str(acc.get("used") or "cpu").upper() + (
        f" · {adapter.get('name')} ({'SOFTWARE: not GPU speed' if adapter.get('software') else 'hardware'})"
        if adapter else "")
    partial = sorted({op for r in kept for op in ((r.get("accelerator") or {}).get("fallback_ops") or [])})
    ran += f" · operators on the CPU in some candidates: {', '.join(partial)}" if partial else ""
    out.append(("accelerator", ran))
    return out


def _describe(row: dict[str, Any], lat: dict[str, Any]) -> str:
    lines = [f"file      {row.get('path')}", f"sha256    {row.get('sha256')}", f"precision {row.get('precision')}",
             f"quality   {quality_cell(row)}"] + ([f"outputs   {per_output(row)}"] if per_output(row) else [])
    for key in ("p50_ms", "mean_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "std_ms"):
        lines.append(f"{key[:-3]:9} {duration(lat.get(key))}")
    lines.append(f"runs      {_fmt(lat.get('runs'))}")
    memory = row.get("measured_memory") or {}
    shown = [f"{key.removesuffix('_bytes').replace('_', ' ')} {size(value)}" for key, value in memory.items()
             if key.endswith("_bytes") and isinstance(value, (int, float))]
    lines.append(f"memory    {', '.join(shown) or '–'}")
    lines.append(f"key       {row.get('measurement_key')}")
    return "\n".join(lines)
