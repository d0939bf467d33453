"""A tune's figures as a person reads them, in the CLI's table and in report.html alike.

The quality cell says what it holds (accuracy on the user's labels, top-1 agreement with the original,
or output fidelity in dB SQNR, and whether the inputs were the user's or generated); "vs original" says
how many times smaller and faster a kept candidate is, and the quality it gave up, in points.
"""

from __future__ import annotations

import math
from typing import Any

from ..quality import Quality


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
        sqnr = "" if q.sqnr_db is None or not math.isfinite(q.sqnr_db) or row.get("quality", {}).get("reference") \
            else f" ({q.sqnr_db:.1f} dB)"
        return f"{q.top1_agreement:.3f}{sqnr}"
    if q.metric == "mse" and q.after is not None:
        return f"{q.after:.4g}"
    if row.get("quality", {}).get("reference"):
        return "ref."
    if q.sqnr_db is None:
        return "–"
    return f"{q.sqnr_db:.1f}" if math.isfinite(q.sqnr_db) else "∞ (same outputs)"


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


def duration(ms: float | None) -> str:
    """A latency in the unit that keeps three or four significant digits: µs, ms or s."""
    if ms is None:
        return "–"
    if ms < 1:
        return f"{ms * 1000:.3g} µs"
    if ms < 1000:
        return f"{ms:.4g} ms"
    return f"{ms / 1000:.3g} s"


def size(n: int | None) -> str:
    """A byte count as B, KiB or MiB (three significant digits above 1 KiB)."""
    if n is None:
        return "–"
    if n < 1024:
        return f"{n} B"
    if n < 1024 ** 2:
        return f"{n / 1024:.3g} KiB" if n < 100 * 1024 else f"{n / 1024:.0f} KiB"
    return f"{n / 1024 ** 2:.3g} MiB" if n < 100 * 1024 ** 2 else f"{n / 1024 ** 2:.0f} MiB"


def _opposite(word: str) -> str:
    return {"smaller": "bigger", "faster": "slower"}[word]


__all__ = ["duration", "quality_cell", "quality_heading", "size", "versus_cell"]
