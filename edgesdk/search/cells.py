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
    if found.outputs and name == "SQNR dB":
        name = f"SQNR dB (lowest of {len(found.outputs)} outputs)"
    return f"{name} (generated inputs)" if found.inputs == "generated" else name


def per_output(row: dict[str, Any]) -> str:
    """Each output's SQNR against the original, for a model with several (``boxes 31.2 dB · scores 8.4 dB``)."""
    q = Quality.from_dict(row.get("quality"))
    if q is None or not q.outputs:
        return ""
    return "SQNR per output: " + " · ".join(f"{o.get('name')} {_db(o.get('sqnr_db'))}" for o in q.outputs)


def _db(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} dB" if math.isfinite(value) else "∞ dB"


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


def size(n: int | float | None) -> str:
    """A byte count as B, KiB, MiB or GiB (three significant digits above 1 KiB)."""
    if n is None:
        return "–"
    if n < 1024:
        return f"{int(n)} B"
    for power, unit in ((1, "KiB"), (2, "MiB"), (3, "GiB")):
        value = n / 1024 ** power
        if value < 1024 or unit == "GiB":
            return f"{value:.3g} {unit}" if value < 100 else f"{value:,.0f} {unit}"
    raise AssertionError("unreachable")


def rate(per_s: float, unit: str) -> str:
    """A rate with an SI prefix: ``rate(7.68e10, "MAC/s")`` is ``76.8 GMAC/s``."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_s >= factor:
            return f"{per_s / factor:.3g} {prefix}{unit}"
    return f"{per_s:.3g} {unit}"


def _opposite(word: str) -> str:
    return {"smaller": "bigger", "faster": "slower"}[word]


__all__ = ["duration", "per_output", "quality_cell", "quality_heading", "rate", "size", "versus_cell"]
