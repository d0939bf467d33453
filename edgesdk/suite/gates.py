"""Regression gates: compare two runs of a suite cell by cell (model x recipe x device).

Latency is the p50. A latency increase is a regression only when it exceeds the gate *and* the noise
of the cell. From the two runs' numbers alone, the noise is the larger of:
  - within the runs: how far apart the medians of each run's windows of timed runs lie (the agent
    splits the timed runs into consecutive windows): half their range relative to the p50, for the
    two runs added together;
  - between runs, when the store holds at least MIN_HISTORY earlier runs of the cell: the range of
    their p50s (max - min) relative to their median; a device that moves 10 % from night to night
    cannot show a 5 % regression in one run.
A device's speed also drifts over minutes (load, heat, a shared host), so two runs measured hours
apart cannot settle a few per cent. `suite run --baseline` therefore measures again, *paired*, every
cell whose p50 exceeds the baseline's, or the cell's median over earlier runs (a baseline measured in
a slow spell hides a real rise), by more than the gate, within the noise above or not: the baseline's
model (kept in the store by content) and this run's, each with its own settings, alternately on the
same device, PAIRED_ROUNDS times. Both see the same drift, so the verdict comes from the median of
the per-round ratios, with half their range as the noise (``paired`` in the cell; it takes precedence
over the runs' own numbers). Without the baseline's model a cell failing the gate is measured again
alone, and the regression stands only when every re-measurement confirms it.
An increase above the gate but within the noise is reported as "within noise", not failed.
Size is the model file's bytes; quality is accuracy (with labels) or top-1 agreement, in points.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from device_agent.protocol import typical_ms

from ..errors import SuiteError
from ..quality import Quality

MIN_HISTORY = 3


@dataclass(frozen=True)
class Gates:
    max_latency_increase: float = 0.05   # fraction: 0.05 = 5 %
    max_size_increase: float = 0.0       # fraction
    max_quality_drop: float = 0.5        # points (percentage points of accuracy or agreement)

    def describe(self) -> str:
        return (f"latency +{self.max_latency_increase:.1%} beyond noise, size +{self.max_size_increase:.1%}, "
                f"quality -{self.max_quality_drop:g} pt")


def parse_fraction(text: str, what: str) -> float:
    """'5%' or '5' -> 0.05 (a bare number is a percentage)."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", text)
    if not found:
        raise SuiteError(f"{what} is a percentage such as 5% or 0. Received: {text!r}")
    return float(found.group(1)) / 100


def parse_points(text: str, what: str) -> float:
    """'0.5pt' or '0.5' -> 0.5 percentage points."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(pt|pts|points)?\s*", text)
    if not found:
        raise SuiteError(f"{what} is in percentage points, such as 0.5pt. Received: {text!r}")
    return float(found.group(1))


def p50(measurement: dict[str, Any]) -> float:
    return typical_ms(measurement["latency"])


def noise(measurement: dict[str, Any]) -> float:
    """Half the range of the run's window medians relative to its p50 (0 with a single window)."""
    windows = [w for w in measurement["latency"].get("window_p50_ms") or [] if isinstance(w, (int, float))]
    if len(windows) < 2:
        return 0.0
    return (max(windows) - min(windows)) / 2 / p50(measurement)


def quality_points(cell: dict[str, Any]) -> float | None:
    quality = Quality.from_dict(cell.get("quality"))
    return quality.points if quality is not None else None


class Verdict(StrEnum):
    """What the comparison of one cell with the baseline found (written as its value in JSON, CSV, JUnit)."""

    OK = "ok"
    REGRESSION = "regression"
    WITHIN_NOISE = "within noise"      # over the latency gate, within the measurements' noise
    NOT_COMPARED = "not compared"      # the baseline's cell, or this one, did not pass
    NEW = "new"                        # not in the baseline
    FAILED = "failed"                  # measuring failed in the new run
    COMPRESSION_FAILED = "compression failed"

    @property
    def failure(self) -> bool:
        """The run does not pass with this cell."""
        return self in (Verdict.REGRESSION, Verdict.FAILED, Verdict.COMPRESSION_FAILED)


class Gate(StrEnum):
    LATENCY = "latency"
    SIZE = "size"
    QUALITY = "quality"


@dataclass
class CellComparison:
    cell: str
    verdict: Verdict
    latency_change: float | None = None
    latency_noise: float | None = None
    paired: bool = False               # the latency verdict came from a paired re-measurement
    size_change: float | None = None
    quality_change: float | None = None
    reasons: list[str] = field(default_factory=list)
    exceeded: list[Gate] = field(default_factory=list)  # the gates the cell went past (within noise too)


@dataclass
class Comparison:
    baseline: str
    candidate: str
    gates: Gates
    cells: list[CellComparison]

    @property
    def failures(self) -> list[CellComparison]:
        return [c for c in self.cells if c.verdict.failure]

    @property
    def regressions(self) -> list[CellComparison]:
        """Cells that got slower, bigger or less accurate (not those that failed to compress or measure)."""
        return [c for c in self.cells if c.verdict == Verdict.REGRESSION]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "candidate": self.candidate, "gates": asdict(self.gates),
                "passed": self.passed, "cells": [asdict(c) for c in self.cells]}

    def summary(self) -> str:
        if self.passed:
            return f"all {len(self.cells)} cells within the gates ({self.gates.describe()})"
        lines = []
        if self.regressions:
            lines.append(f"{len(self.regressions)} of {len(self.cells)} cells regressed past the gates "
                         f"({self.gates.describe()}):")
            lines += [f"  {c.cell}: {'; '.join(c.reasons)}" for c in self.regressions]
        broken = [c for c in self.failures if c.verdict != Verdict.REGRESSION]
        if broken:
            lines.append(f"{len(broken)} of {len(self.cells)} cells failed in the new run, so they could not be "
                         "compared (not a regression):")
            lines += [f"  {c.cell}: {c.verdict}: {'; '.join(c.reasons)}" for c in broken]
        return "\n".join(lines)


def history_spread(values: list[float]) -> float:
    """Range over median of a cell's p50 in earlier runs; 0 with fewer than MIN_HISTORY of them."""
    if len(values) < MIN_HISTORY:
        return 0.0
    ordered = sorted(values)
    return (ordered[-1] - ordered[0]) / ordered[len(ordered) // 2]


def paired_result(rounds: list[dict[str, float]]) -> tuple[float, float]:
    """(change, noise) of alternate measurements: the median of the per-round ratios minus one, and
    half their range."""
    ratios = [r["p50_ms"] / r["baseline_p50_ms"] for r in rounds]
    return statistics.median(ratios) - 1, (max(ratios) - min(ratios)) / 2


def compare_cell(a: dict[str, Any] | None, b: dict[str, Any], gates: Gates,
                 history: list[float] | None = None, baseline_run: str | None = None) -> CellComparison:
    """One cell of the new run against the same cell of the baseline; ``history`` holds the cell's p50
    in earlier runs (for the run-to-run noise). A paired re-measurement against ``baseline_run``
    recorded in the cell decides the latency verdict."""
    out = CellComparison(b["cell"], Verdict.OK)
    if b["status"] == "failed":
        out.verdict = Verdict.COMPRESSION_FAILED if b.get("stage") == "compress" else Verdict.FAILED
        out.reasons.append(f"failed in the new run: {b.get('reason')}")
        return out
    if a is None or a["status"] != "passed" or b["status"] != "passed":
        out.verdict = Verdict.NEW if a is None else Verdict.NOT_COMPARED
        why = "not in the baseline" if a is None else f"baseline {a['status']}" if a["status"] != "passed" \
            else f"{b['status']} in the new run" + (f": {b.get('reason')}" if b.get("reason") else "")
        out.reasons.append(why)
        return out
    ma, mb = a["measurement"], b["measurement"]
    paired = b.get("paired")
    if paired and baseline_run is not None and paired.get("baseline_run") == baseline_run:
        out.paired = True
        out.latency_change, out.latency_noise = paired_result(paired["rounds"])
        how = (f"measured alternately with the baseline's model, {len(paired['rounds'])} rounds: "
               f"p50 {out.latency_change:+.1%}")
    else:
        out.latency_change = p50(mb) / p50(ma) - 1
        out.latency_noise = max(noise(ma) + noise(mb), history_spread(history or []))
        how = f"{p50(ma):.4g} -> {p50(mb):.4g} ms ({out.latency_change:+.1%})"
    if out.latency_change > gates.max_latency_increase:
        out.exceeded.append(Gate.LATENCY)
        if out.latency_change > out.latency_noise:
            out.verdict = Verdict.REGRESSION
            out.reasons.append(f"p50 {how}; gate +{gates.max_latency_increase:.1%}, noise ±{out.latency_noise:.1%}")
        else:
            out.verdict = Verdict.WITHIN_NOISE
            out.reasons.append(f"p50 {how} is above the gate but within the noise (±{out.latency_noise:.1%})")
    size_a, size_b = ma["memory"]["model_bytes"], mb["memory"]["model_bytes"]
    out.size_change = size_b / size_a - 1 if size_a else None
    if out.size_change is not None and out.size_change > gates.max_size_increase + 1e-12:
        out.verdict = Verdict.REGRESSION
        out.exceeded.append(Gate.SIZE)
        out.reasons.append(f"model {size_a:,} -> {size_b:,} B ({out.size_change:+.1%}; gate "
                           f"+{gates.max_size_increase:.1%})")
    qa, qb = quality_points(a), quality_points(b)
    if qa is not None and qb is not None:
        out.quality_change = qb - qa
        if qa - qb > gates.max_quality_drop + 1e-9:
            out.verdict = Verdict.REGRESSION
            out.exceeded.append(Gate.QUALITY)
            out.reasons.append(f"quality {qa:.2f} -> {qb:.2f} ({qb - qa:+.2f} pt; gate -{gates.max_quality_drop:g} pt)")
    return out


def cell_history(runs: list[dict[str, Any]], cell: str) -> list[float]:
    """The cell's p50 in each of ``runs`` where it passed."""
    found = (next((c for c in r["cells"] if c["cell"] == cell), None) for r in runs)
    return [p50(c["measurement"]) for c in found if c is not None and c.get("measurement")]


def earlier_runs(history: list[dict[str, Any]], baseline: dict[str, Any], candidate_id: str) -> list[dict[str, Any]]:
    """The runs before the candidate for the run-to-run noise: the history and the baseline, each once."""
    return [r for r in history if r["run_id"] not in (baseline["run_id"], candidate_id)] + [baseline]


def compare(baseline: dict[str, Any], candidate: dict[str, Any], gates: Gates | None = None,
            history: list[dict[str, Any]] | None = None) -> Comparison:
    """Compare every cell of ``candidate`` with the same cell of ``baseline`` (two run documents).

    ``history``: earlier runs of the suite (the baseline among them or not) for the run-to-run noise.
    """
    gates = gates or Gates()
    old = {c["cell"]: c for c in baseline["cells"]}
    earlier = earlier_runs(history or [], baseline, candidate["run_id"])
    cells = [compare_cell(old.get(c["cell"]), c, gates, cell_history(earlier, c["cell"]), baseline["run_id"])
             for c in candidate["cells"]]
    new = {c["cell"] for c in candidate["cells"]}
    cells += [CellComparison(cell, Verdict.NOT_COMPARED, reasons=["missing from the new run"])
              for cell in old if cell not in new]
    return Comparison(baseline["run_id"], candidate["run_id"], gates, cells)
