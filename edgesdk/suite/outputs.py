"""A suite run's files: results.json, results.csv, JUnit XML and a self-contained index.html."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ..fileio import dumps, make_dirs, write_atomic
from ..search.cells import duration, size
from .gates import Comparison, Verdict, p50, quality_points

CSV_FIELDS = ["model", "recipe", "device", "status", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "runs",
              "model_bytes", "peak_rss_bytes", "quality_points", "energy_mj", "runtime", "threads", "worker",
              "verdict", "reason"]


def _atomic(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))


def _verdicts(comparison: Comparison | None) -> dict[str, Any]:
    return {c.cell: c for c in comparison.cells} if comparison else {}


def row(cell: dict[str, Any]) -> dict[str, Any]:
    """The flat figures of one cell (the CSV row)."""
    m = cell.get("measurement")
    lat, mem = (m["latency"], m["memory"]) if m else ({}, {})
    power = (m or {}).get("power") or {}
    return {"model": cell["model"], "recipe": cell["recipe"], "device": cell["device"], "status": cell["status"],
            "p50_ms": p50(m) if m else None, "p90_ms": lat.get("p90_ms"), "p99_ms": lat.get("p99_ms"),
            "mean_ms": lat.get("mean_ms"), "std_ms": lat.get("std_ms"), "runs": lat.get("runs"),
            "model_bytes": mem.get("model_bytes") or (cell.get("artifact") or {}).get("bytes"),
            "peak_rss_bytes": mem.get("peak_rss_bytes"), "quality_points": quality_points(cell),
            "energy_mj": power.get("energy_per_inference_mj"),
            "runtime": f"{m['runtime']['name']} {m['runtime']['version']}" if m else None,
            "threads": m.get("threads") if m else None, "worker": cell.get("worker"), "reason": cell.get("reason")}


def write_junit(run: dict[str, Any], path: Path, comparison: Comparison | None = None) -> None:
    """One test case per cell: failed (the cell, or its gate) -> <failure>, skipped or not run -> <skipped>."""
    verdicts = _verdicts(comparison)
    suite = ET.Element("testsuite", name=f"edgesdk suite {run['suite']}", timestamp=str(run["created_at"]))
    counts = {"tests": 0, "failures": 0, "skipped": 0}
    for cell in run["cells"]:
        m = cell.get("measurement")
        seconds = max(0.0, m["finished_at"] - m["started_at"]) if m and m.get("finished_at") else 0.0
        case = ET.SubElement(suite, "testcase", classname=f"edgesdk.{run['suite']}.{cell['device']}",
                             name=f"{cell['model']}[{cell['recipe']}]", time=f"{seconds:.3f}")
        props = ET.SubElement(case, "properties")
        for key, value in row(cell).items():
            if value is not None and key not in ("model", "recipe", "device", "reason"):
                ET.SubElement(props, "property", name=key, value=str(value))
        counts["tests"] += 1
        verdict = verdicts.get(cell["cell"])
        if cell["status"] == "failed":
            ET.SubElement(case, "failure", message=str(cell.get("reason")), type="CellFailed")
            counts["failures"] += 1
        elif verdict is not None and verdict.verdict == Verdict.REGRESSION:
            ET.SubElement(case, "failure", message="; ".join(verdict.reasons), type="Regression")
            counts["failures"] += 1
        elif cell["status"] != "passed":
            ET.SubElement(case, "skipped", message=str(cell.get("reason") or f"not run ({cell['status']})"))
            counts["skipped"] += 1
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("errors", "0")
    ET.indent(suite)
    _atomic(path, ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n")


def write_csv(run: dict[str, Any], path: Path, comparison: Comparison | None = None) -> None:
    verdicts = _verdicts(comparison)
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for cell in run["cells"]:
        verdict = verdicts.get(cell["cell"])
        figures = {k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row(cell).items()}
        writer.writerow({**figures, "verdict": verdict.verdict if verdict else None})
    _atomic(path, text.getvalue())


def _boxplot(m: dict[str, Any], top: float) -> str:
    """min, p50, p90, p99 and max of one cell's latency on its row's axis, 0 to ``top`` ms (labelled)."""
    lat = m["latency"]
    pts = [lat["min_ms"], p50(m), lat.get("p90_ms") or lat["mean_ms"], lat.get("p99_ms") or lat["max_ms"],
           lat["max_ms"]]
    scale = 150 / (top or 1.0)
    x = [min(154.0, 4 + v * scale) for v in pts]  # a max beyond the row's p99 runs off the edge
    return (f'<svg width="200" height="30" role="img"><title>min {pts[0]:.4g} · p50 {pts[1]:.4g} · p90 {pts[2]:.4g}'
            f' · p99 {pts[3]:.4g} · max {pts[4]:.4g} ms</title>'
            '<line x1="4" x2="154" y1="19" y2="19" stroke="#bbb"/><line x1="4" x2="4" y1="17" y2="21" stroke="#bbb"/>'
            '<line x1="154" x2="154" y1="17" y2="21" stroke="#bbb"/>'
            f'<text x="4" y="29">0</text><text x="154" y="29" text-anchor="middle">{duration(top)}</text>'
            f'<line x1="{x[0]:.1f}" x2="{x[4]:.1f}" y1="9" y2="9" stroke="#888"/>'
            f'<rect x="{x[1]:.1f}" y="3" width="{max(1.0, x[2] - x[1]):.1f}" height="12" fill="#9cc3e6" stroke="#357"/>'
            f'<line x1="{x[1]:.1f}" x2="{x[1]:.1f}" y1="2" y2="16" stroke="#123" stroke-width="2"/>'
            f'<circle cx="{x[3]:.1f}" cy="9" r="2" fill="#c33"/></svg>')


def _sparkline(values: list[float | None]) -> str:
    """p50 over the runs, on an axis at least ±5 % of their mean wide, and the change since the oldest."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) < 2:
        return ""
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    mean = sum(v for _, v in points) / len(points)
    floor = 0.1 * mean
    if hi - lo < floor:   # a flat trend stays flat: ±0.6 % must not fill the box like a cliff
        middle = (hi + lo) / 2
        lo, hi = middle - floor / 2, middle + floor / 2
    span = (hi - lo) or 1.0
    step = 100 / max(1, len(values) - 1)
    coords = " ".join(f"{4 + i * step:.1f},{16 - (v - lo) / span * 12:.1f}" for i, v in points)
    change = (points[-1][1] - points[0][1]) / points[0][1] if points[0][1] else 0.0
    return (f'<svg width="160" height="20" role="img"><title>p50 over the last {len(values)} runs: '
            f'{", ".join("-" if v is None else f"{v:.4g}" for v in values)} ms</title>'
            f'<polyline points="{coords}" fill="none" stroke="#357" stroke-width="1.5"/>'
            f'<text x="110" y="14">{change:+.1%}</text></svg>')


def write_html(run: dict[str, Any], path: Path, history: list[dict[str, Any]],
               comparison: Comparison | None = None) -> None:
    """The matrix of cells (latency distribution, size, quality, trend over earlier runs of the suite),
    rendered from ``templates/index.html.j2`` with autoescaping."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    verdicts = _verdicts(comparison)
    devices = list(dict.fromkeys(c["device"] for c in run["cells"]))
    keys = list(dict.fromkeys((c["model"], c["recipe"]) for c in run["cells"]))
    cells = {(c["model"], c["recipe"], c["device"]): c for c in run["cells"]}
    past = [{c["cell"]: p50(c["measurement"]) if c.get("measurement") else None for c in h["cells"]}
            for h in history]
    rows = []
    for model, recipe in keys:
        mine = [c for d in devices if (c := cells.get((model, recipe, d))) is not None and c.get("measurement")]
        top = max([c["measurement"]["latency"].get("p99_ms") or c["measurement"]["latency"]["max_ms"]
                   for c in mine] or [1.0])
        shown: list[dict[str, Any] | None] = []
        for device in devices:
            c = cells.get((model, recipe, device))
            if c is None:
                shown.append(None)
                continue
            v = verdicts.get(c["cell"])
            klass = c["status"] if not (v and v.verdict == Verdict.REGRESSION) else "regression"
            if c.get("measurement"):
                r = row(c)
                shown.append({"measured": True, "klass": klass, "p50": duration(r["p50_ms"]),
                              "size": size(r["model_bytes"]),
                              "quality": None if r["quality_points"] is None else f"{r['quality_points']:.2f} pt",
                              "box": _boxplot(c["measurement"], top),
                              "trend": _sparkline([p.get(c["cell"]) for p in past] + [r["p50_ms"]]),
                              "reasons": "; ".join(v.reasons) if v and v.reasons else ""})
            else:
                shown.append({"measured": False, "klass": klass, "status": c["status"],
                              "reason": str(c.get("reason") or "")})
        rows.append({"model": model, "recipe": recipe, "cells": shown})
    counts = {s: sum(c["status"] == s for c in run["cells"]) for s in ("passed", "failed", "skipped", "pending")}
    env = Environment(loader=PackageLoader("edgesdk.suite"), autoescape=select_autoescape(["html", "j2"]))
    page = env.get_template("index.html.j2").render(
        run=run, devices=devices, rows=rows, comparison=comparison, runs=len(history) + 1,
        counts=", ".join(f"{n} {s}" for s, n in counts.items() if n))
    _atomic(path, page)


NAMES = ("results.json", "results.csv", "index.html")   # in OUTDIR; junit.xml unless --junit names a path


def write_all(run: dict[str, Any], outdir: Path, history: list[dict[str, Any]], comparison: Comparison | None = None,
              junit: Path | None = None) -> dict[str, Path]:
    """Write every output; returns their paths."""
    make_dirs(outdir)
    doc = {**run, "comparison": comparison.to_dict() if comparison else None}
    paths = {"json": outdir / "results.json", "csv": outdir / "results.csv", "junit": junit or outdir / "junit.xml",
             "html": outdir / "index.html"}
    make_dirs(paths["junit"].parent)
    _atomic(paths["json"], dumps(doc, indent=2, default=str) + "\n")
    write_csv(run, paths["csv"], comparison)
    write_junit(run, paths["junit"], comparison)
    write_html(run, paths["html"], history, comparison)
    return paths
