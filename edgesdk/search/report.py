"""`report.html` for a tune: one self-contained file (inline SVG and CSS, no scripts, no downloads)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..fileio import write_atomic
from .cells import quality_cell, quality_heading, versus_cell
from .objectives import KEPT, objective_value

_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:right}td:first-child,th:first-child,
td.l,th.l{text-align:left}tr.best{background:#e8f5e9}tr.original{background:#f1f5f9}tr.rejected,tr.failed{color:#888}.pill{display:inline-block;
padding:1px 8px;border-radius:9px;background:#eee;margin-right:4px}.est{color:#b45309;font-weight:600}
.plots{display:flex;flex-wrap:wrap;gap:16px}svg{background:#fafafa;border:1px solid #ddd}
.note{background:#fff8e1;border-left:4px solid #f59e0b;padding:6px 10px;margin:6px 0}"""


def _quality(row: dict[str, Any]) -> float | None:
    return objective_value("accuracy", row) if row.get("quality") else None


def _scatter(rows: list[dict[str, Any]], pareto: set[int], best: int | None, x_key: str, x_label: str,
             plot_id: str, baseline: dict[str, Any] | None = None) -> str:
    """An SVG scatter of quality (y) against ``x_key``; Pareto points filled, the best ringed, the original
    a black square."""
    points: list[tuple[float, float, dict[str, Any]]] = []
    for r in rows:
        q = _quality(r)
        if r.get(x_key) is not None and q is not None:
            points.append((float(r[x_key]), q, r))
    original = None
    if baseline is not None and baseline.get(x_key) is not None and _quality(baseline) is not None and points:
        original = (float(baseline[x_key]), _quality(baseline) or 0.0)
    width, height, pad = 480, 320, 48
    parts = [f'<svg id="{plot_id}" class="pareto-plot" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="quality against {html.escape(x_label)}">']
    if not points:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no measured candidates with '
                     'quality to plot</text></svg>')
        return "".join(parts)
    xs = [p[0] for p in points] + ([original[0]] if original else [])
    ys = [p[1] for p in points] + ([original[1]] if original else [])
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def sx(v: float) -> float:
        return pad + (v - x0) / (x1 - x0) * (width - 2 * pad)

    def sy(v: float) -> float:
        return height - pad - (v - y0) / (y1 - y0) * (height - 2 * pad)

    parts.append(f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#888"/>'
                 f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="#888"/>'
                 f'<text x="{width / 2}" y="{height - 10}" text-anchor="middle">{html.escape(x_label)}</text>'
                 f'<text x="14" y="{height / 2}" transform="rotate(-90 14 {height / 2})" '
                 'text-anchor="middle">quality</text>'
                 f'<text x="{pad}" y="{height - pad + 16}" font-size="11">{x0:.4g}</text>'
                 f'<text x="{width - pad}" y="{height - pad + 16}" font-size="11" text-anchor="end">{x1:.4g}</text>'
                 f'<text x="{pad - 4}" y="{height - pad}" font-size="11" text-anchor="end">{y0:.4g}</text>'
                 f'<text x="{pad - 4}" y="{pad + 4}" font-size="11" text-anchor="end">{y1:.4g}</text>')
    # The dashed line is this plot's own 2-D front (higher quality, lower x); blue points are the study's.
    front = [p for p in points if not any(q[0] <= p[0] and q[1] >= p[1] and (q[0] < p[0] or q[1] > p[1])
                                          for q in points)]
    front.sort(key=lambda p: p[0])
    if len(front) > 1:
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y, _ in front)
        parts.append(f'<polyline class="front" points="{path}" fill="none" stroke="#2563eb" stroke-dasharray="4 3"/>')
    for x, y, r in points:
        on_front = r["number"] in pareto
        fill = "#2563eb" if on_front else "#bbb"
        title = html.escape(f"#{r['number']} {r['recipe']}: {x_key} {x:.4g}, quality {y:.4g}")
        parts.append(f'<circle class="point{" pareto" if on_front else ""}" data-trial="{r["number"]}" '
                     f'cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" fill="{fill}"><title>{title}</title></circle>')
        if r["number"] == best:
            parts.append(f'<circle class="best" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="9" fill="none" '
                         'stroke="#16a34a" stroke-width="2"/>')
    if original is not None:
        title = html.escape(f"the original: {x_key} {original[0]:.4g}, quality {original[1]:.4g}")
        parts.append(f'<rect class="original" x="{sx(original[0]) - 5:.1f}" y="{sy(original[1]) - 5:.1f}" '
                     f'width="10" height="10" fill="#111"><title>{title}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def _cell(value: Any, fmt: str = "{}") -> str:
    return "–" if value is None else html.escape(fmt.format(value))


def write_html(result: Any, path: Path) -> None:
    """Write the report for a :class:`~edgesdk.search.tune.TuneResult`."""
    rows = [r for r in result.trials if r.get("recipe")]
    kept = [r for r in rows if r.get("status") in KEPT and "repeat_of" not in r]
    pareto = set(result.pareto)
    best = result.trial(result.best) if result.best is not None else None
    e = html.escape
    where = ", ".join(result.devices) or "none: latency ESTIMATED"
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>edgesdk tune · {e(result.study)}</title><style>{_CSS}</style></head><body>",
           f"<h1>edgesdk tune: {e(result.study)}</h1>",
           f"<p><span class='pill'>device {e(where)}</span><span class='pill'>objectives "
           f"{e(', '.join(result.objectives))}</span><span class='pill'>{len(rows)} trials</span>"
           f"<span class='pill'>{len(kept)} {'measured' if result.devices else 'estimated'}</span>"
           f"<span class='pill'>{len(pareto)} on the Pareto front</span></p>"]
    for note in result.notes + (["the search was interrupted; this is what was finished"] if result.interrupted
                                else []):
        out.append(f"<div class='note'>{e(note)}</div>")
    if best is not None:
        verdict = "meets every constraint" if result.best_meets_constraints else \
            "meets NOT every constraint (closest): " + "; ".join(best.get("violations") or [])
        est = " <span class='est'>estimated</span>" if best.get("estimated") else ""
        gain = versus_cell(best)
        out.append(f"<h2>Chosen: <code>{e(best['recipe'])}</code></h2><p id='best'>best.tflite, trial "
                   f"#{best['number']}: {e(verdict)}. p50 {best['latency_ms']:.4g} ms{est}, "
                   f"{best['model_bytes']:,} bytes{e('; against the original: ' + gain if gain else '')}.</p>")
    elif result.beats_original is False:
        out.append("<h2>Chosen: the original model</h2><p id='best'>No candidate is better than the model as "
                   "given on the objectives asked for: keep it (no best.tflite is written).</p>")
    out.append("<h2>Pareto front</h2><div class='plots'>")
    base = result.baseline if (result.baseline or {}).get("status") in KEPT else None
    out.append(_scatter(kept, pareto, result.best, "latency_ms", "latency p50 (ms)", "plot-latency", base))
    out.append(_scatter(kept, pareto, result.best, "model_bytes", "size (bytes)", "plot-size", base))
    if any(r.get("estimated") for r in kept):
        how = "<b class='est'>ESTIMATED</b> by the profile's latency predictor (no device was given), not measured"
    else:
        how = "<b>measured</b> on the device"
    out.append("</div><p>Blue: on the study's Pareto front; dashed: the front of each plot's two axes. "
               f"Green ring: the chosen model; black square: the original. Every latency here was {how}; "
               "estimated figures are marked "
               "<span class='est'>estimated</span>.</p>")
    out.append("<h2>Trials</h2><table id='trials'><tr><th>#</th><th class='l'>recipe</th><th class='l'>status"
               f"</th><th>{e(quality_heading(rows))}</th><th>p50 ms</th><th>bytes</th><th class='l'>vs original</th>"
               "<th>gzip</th>"
               "<th title='ideal entropy-coded size of the weights'>weights coded</th><th>memory</th><th>energy mJ</th>"
               "<th class='l'>notes</th></tr>")
    for r in ([{**result.baseline, "number": ""}] if result.baseline else []) + rows:
        klass = "best" if r["number"] == result.best else "original" if r["number"] == "" else r.get("status", "")
        vs = "the model as given" if klass == "original" else versus_cell(r, result.baseline)
        energy = _cell(r.get("energy_mj"), "{:.4g}")
        if r.get("energy_estimated"):
            energy += " <span class='est'>estimated</span>"
        notes = r.get("reason") or "; ".join(r.get("violations") or []) or \
            (f"repeat of #{r['repeat_of']}" if "repeat_of" in r else "")
        if r.get("cached"):
            notes = (notes + "; " if notes else "") + "measurement from the store"
        out.append(f"<tr class='{e(klass)}'><td>{r['number']}</td><td class='l'><code>{e(r['recipe'])}</code></td>"
                   f"<td class='l'>{e(r.get('status', ''))}{' · Pareto' if r['number'] in pareto else ''}</td>"
                   f"<td>{e(quality_cell(r))}</td><td>{_cell(r.get('latency_ms'), '{:.4g}')}"
                   f"{' <span class=est>estimated</span>' if r.get('estimated') else ''}</td>"
                   f"<td>{_cell(r.get('model_bytes'), '{:,}')}</td>"
                   f"<td class='l'>{e(vs)}</td>"
                   f"<td>{_cell(r.get('gzip_bytes'), '{:,}')}</td>"
                   f"<td>{_cell(r.get('weight_entropy_bytes'), '{:,}')}</td>"
                   f"<td>{_cell(r.get('memory_bytes'), '{:,}')}</td><td>{energy}</td>"
                   f"<td class='l'>{e(notes)}</td></tr>")
    out.append("</table>")
    out.extend(_device_section(kept))
    out.append("<h2>Candidates</h2>")
    for r in kept:
        lat = r.get("latency") or {}
        out.append(f"<details><summary>#{r['number']} <code>{e(r['recipe'])}</code></summary><pre>"
                   f"{e(_describe(r, lat))}</pre></details>")
    out.append("</body></html>")
    write_atomic(path, "\n".join(out).encode("utf-8"))


def _device_section(kept: list[dict[str, Any]]) -> list[str]:
    """The device the candidates were measured on, its runtime and accelerator (none when estimated)."""
    e = html.escape
    out: list[str] = []
    device = next((r.get("device") for r in kept if r.get("device")), None)
    if device:
        out.append("<h2>Device</h2><table id='device'>")
        for key in ("hostname", "machine", "cpu_model", "emulated", "cores", "ram_bytes", "os", "governor",
                    "fingerprint"):
            out.append(f"<tr><td>{e(key)}</td><td class='l'>{_cell(device.get(key))}</td></tr>")
        runtime = kept[0].get("runtime") or {}
        out.append(f"<tr><td>runtime</td><td class='l'>{e(str(runtime.get('name')))} "
                   f"{e(str(runtime.get('version')))}</td></tr>")
        acc = next((r.get("accelerator") for r in kept if r.get("accelerator")), None) or {}
        adapter = acc.get("adapter") or {}
        ran = str(acc.get("used") or "cpu").upper() + (
            f" · {adapter.get('name')} ({'SOFTWARE: not GPU speed' if adapter.get('software') else 'hardware'})"
            if adapter else "")
        partial = sorted({op for r in kept for op in ((r.get("accelerator") or {}).get("fallback_ops") or [])})
        ran += f" · operators on the CPU in some candidates: {', '.join(partial)}" if partial else ""
        out.append(f"<tr><td>accelerator</td><td class='l'>{e(ran)}</td></tr></table>")
    return out


def _describe(row: dict[str, Any], lat: dict[str, Any]) -> str:
    lines = [f"file      {row.get('path')}", f"sha256    {row.get('sha256')}", f"precision {row.get('precision')}",
             f"quality   {row.get('quality')}"]
    for key in ("p50_ms", "mean_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "std_ms", "runs"):
        lines.append(f"{key:9} {lat.get(key)}")
    lines.append(f"memory    {row.get('measured_memory')}")
    lines.append(f"key       {row.get('measurement_key')}")
    return "\n".join(lines)
