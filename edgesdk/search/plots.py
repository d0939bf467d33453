"""The report's plots: quality against latency and against size, drawn by matplotlib as inline SVG.

One figure per axis pair, with real ticks and units, a log scale where the values span more than ten
times, the study's Pareto front as one line, the chosen model ringed, the original a black square, the
quality limit and the latency limit as dashed lines, and the points that matter (front, best, original)
labelled. Text stays text in the SVG (searchable, and what a test can read); nothing is fetched at view
time. Each point's group carries an id after the plot's (``plot-size-trial-N``, ``-original``, ``-best``,
``-limit-quality``; ``-pareto`` ends the id of a point on the front).
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Any

from .cells import quality_heading
from .objectives import objective_value

AXES = {"latency_ms": ("latency p50 (ms)", 1.0), "model_bytes": ("size (KiB)", 1 / 1024)}


@dataclass(frozen=True)
class Limits:
    """The limits a plot marks: the lowest quality accepted (in the plot's quality unit) and the highest
    latency, when the run had them."""

    quality: float | None = None
    latency_ms: float | None = None


def _quality(row: dict[str, Any]) -> float | None:
    if not row.get("quality"):
        return None
    value = objective_value("accuracy", row)
    return value if math.isfinite(value) else None


def scatter(rows: list[dict[str, Any]], x_key: str, plot_id: str, pareto: set[int], best: int | None,
            baseline: dict[str, Any] | None, limits: Limits) -> str:
    """An SVG of quality against ``x_key`` (latency_ms or model_bytes), or a sentence when nothing has both."""
    from matplotlib.figure import Figure

    label, scale = AXES[x_key]
    points = [(float(r[x_key]) * scale, q, r) for r in rows if r.get(x_key) is not None
              and (q := _quality(r)) is not None]
    if x_key == "latency_ms" and points and max(p[0] for p in points) < 1:   # µs ticks, not 0.004 ms
        label, scale = "latency p50 (µs)", 1000.0
        points = [(x * scale, y, r) for x, y, r in points]
    if not points:
        return f'<p id="{plot_id}" class="empty">no candidate has both a quality and a {label} to plot</p>'
    fig = Figure(figsize=(5.6, 4.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    xs = [p[0] for p in points]
    ref = None
    if baseline is not None and baseline.get(x_key) is not None and (q := _quality(baseline)) is not None:
        ref = (float(baseline[x_key]) * scale, q)
    spread = [*xs, *([ref[0]] if ref else [])]
    if min(spread) > 0 and max(spread) / min(spread) > 10:
        ax.set_xscale("log")
    for x, y, r in points:
        on_front = r["number"] in pareto
        ax.scatter([x], [y], s=30, color="#2563eb" if on_front else "#9ca3af", zorder=3,
                   gid=f"{plot_id}-trial-{r['number']}{'-pareto' if on_front else ''}")
    front = sorted((p for p in points if p[2]["number"] in pareto), key=lambda p: p[0])
    if len(front) > 1:
        ax.plot([p[0] for p in front], [p[1] for p in front], color="#2563eb", linewidth=1, linestyle="-",
                zorder=2, gid=f"{plot_id}-front", label="Pareto front")
    chosen = next((p for p in points if p[2]["number"] == best), None)
    if chosen is not None:
        ax.scatter([chosen[0]], [chosen[1]], s=160, facecolors="none", edgecolors="#16a34a", linewidths=2,
                   zorder=4, gid=f"{plot_id}-best", label="chosen")
        ax.annotate(chosen[2]["recipe"], (chosen[0], chosen[1]), xytext=(6, -12), textcoords="offset points",
                    fontsize=8, color="#166534")
    for x, y, r in front:
        if r["number"] != best:
            ax.annotate(r["recipe"], (x, y), xytext=(6, 4), textcoords="offset points", fontsize=7,
                        color="#1e3a8a")
    if ref is not None:
        ax.scatter([ref[0]], [ref[1]], marker="s", s=50, color="#111", zorder=5, gid=f"{plot_id}-original",
                   label="original")
        ax.annotate("original", ref, xytext=(6, 4), textcoords="offset points", fontsize=8)
    if limits.quality is not None:
        ax.axhline(limits.quality, color="#dc2626", linestyle="--", linewidth=1, gid=f"{plot_id}-limit-quality",
                   label="quality limit")
    if limits.latency_ms is not None and x_key == "latency_ms":
        ax.axvline(limits.latency_ms * scale, color="#dc2626", linestyle=":", linewidth=1,
                   gid=f"{plot_id}-limit-latency", label="latency limit")
    ys = [p[1] for p in points] + ([ref[1]] if ref else []) + ([limits.quality] if limits.quality is not None else [])
    low, high = min(ys), max(ys)
    pad = (high - low) * 0.08 or max(abs(high) * 0.01, 0.01)
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlabel(label)
    ax.set_ylabel(quality_heading(rows))
    ax.grid(True, which="major", color="#e5e7eb", linewidth=0.6)
    ax.margins(x=0.15)
    fig.legend(loc="outside lower center", ncols=5, fontsize=7, frameon=False)
    return _svg(fig, plot_id)


def _svg(fig: Any, plot_id: str) -> str:
    """The figure as an inline <svg> element with ``plot_id``: text kept as text, no XML header, and the
    ids matplotlib derives from a hash salted so the same figure gives the same file."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": plot_id, "font.family": "sans-serif"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg[svg.index("<svg"):], flags=re.S)
    return re.sub(r"<svg ", f'<svg id="{plot_id}" class="plot" role="img" ', svg, count=1)


__all__ = ["Limits", "scatter"]
