"""The regression gates' rules on run documents: noise within runs and between runs, size, quality."""

import pytest

from edgesdk.errors import SuiteError
from edgesdk.suite.gates import Gates, compare, noise, parse_fraction, parse_points


def cell(p50, windows=None, size=1000, accuracy=None, status="passed", name="m|none|local"):
    c = {"cell": name, "status": status}
    if status == "passed":
        c["measurement"] = {"latency": {"p50_ms": p50, "mean_ms": p50, "window_p50_ms": windows or [p50] * 5},
                            "memory": {"model_bytes": size}}
    if accuracy is not None:
        c["quality"] = {"metric": "accuracy", "after": accuracy}
    return c


def run(run_id, *cells):
    return {"run_id": run_id, "cells": list(cells)}


def verdict(a, b, gates=None, history=None):
    return compare(run("a", a), run("b", b), gates, history).cells[0]


def test_latency_beyond_gate_and_noise_fails_within_noise_does_not():
    assert verdict(cell(1.0), cell(1.04)).verdict == "ok"
    slow = verdict(cell(1.0), cell(1.2))
    assert slow.verdict == "regression" and "+20.0%" in slow.reasons[0]
    assert noise({"latency": {"p50_ms": 1.0, "window_p50_ms": [0.9, 1.1]}}) == pytest.approx(0.1)
    noisy = verdict(cell(1.0, [0.9, 1.0, 1.1]), cell(1.12, [1.0, 1.12, 1.25]))  # noise 10 % + 11.2 %
    assert noisy.verdict == "within noise" and noisy.latency_noise == pytest.approx(0.2116, abs=1e-3)


def test_run_to_run_spread_of_the_history_widens_the_noise():
    history = [run(f"h{i}", cell(v)) for i, v in enumerate([1.0, 1.1, 0.95])]
    assert verdict(cell(1.0), cell(1.12), history=history[:2]).verdict == "regression"  # spread 10 % < +12 %
    spread = verdict(cell(1.0), cell(1.12), history=history)
    assert spread.verdict == "within noise" and spread.latency_noise == pytest.approx(0.15)
    assert verdict(cell(1.0), cell(1.5), history=history).verdict == "regression"


def test_size_quality_failed_and_missing_cells():
    bigger = verdict(cell(1.0, size=1000), cell(1.0, size=1001))
    assert bigger.verdict == "regression" and "1,000 -> 1,001 B" in bigger.reasons[0]
    assert verdict(cell(1.0, size=1000), cell(1.0, size=1040), Gates(max_size_increase=0.05)).verdict == "ok"
    worse = verdict(cell(1.0, accuracy=0.95), cell(1.0, accuracy=0.94))
    assert worse.verdict == "regression" and "-1.00 pt" in worse.reasons[0]
    assert verdict(cell(1.0, accuracy=0.95), cell(1.0, accuracy=0.946)).verdict == "ok"  # 0.4 pt
    failed = verdict(cell(1.0), {"cell": "m|none|local", "status": "failed", "reason": "boom"})
    assert failed.verdict == "failed"
    skipped = compare(run("a", cell(1.0)), run("b", {"cell": "m|none|local", "status": "skipped", "reason": "hot"}))
    assert skipped.passed and skipped.cells[0].verdict == "not compared"
    gone = compare(run("a", cell(1.0), cell(1.0, name="x|none|local")), run("b", cell(1.0)))
    assert gone.passed and gone.cells[-1].reasons == ["missing from the new run"]


def test_a_verdict_is_typed_and_names_the_gates_it_went_past():
    from edgesdk.suite.gates import Gate, Verdict

    both = verdict(cell(1.0, size=1000, accuracy=0.95), cell(1.3, size=1100, accuracy=0.90))
    assert both.verdict is Verdict.REGRESSION and both.exceeded == [Gate.LATENCY, Gate.SIZE, Gate.QUALITY]
    noisy = verdict(cell(1.0, [0.9, 1.0, 1.1]), cell(1.12, [1.0, 1.12, 1.25]))
    assert noisy.verdict is Verdict.WITHIN_NOISE and noisy.exceeded == [Gate.LATENCY] and not noisy.verdict.failure
    assert verdict(cell(1.0), cell(1.0)).exceeded == []
    failed = compare(run("a", cell(1.0)), run("b", {"cell": "m|none|local", "status": "failed", "stage": "compress",
                                                     "reason": "boom"}))
    assert failed.cells[0].verdict is Verdict.COMPRESSION_FAILED and not failed.passed
    from edgesdk.fileio import dumps

    assert '"verdict": "compression failed"' in dumps(failed.to_dict())  # written as its value


@pytest.mark.parametrize("text, value", [("5%", 0.05), ("0", 0.0), ("12.5 %", 0.125)])
def test_parse_fraction(text, value):
    assert parse_fraction(text, "--x") == pytest.approx(value)


def test_parse_errors_say_what_was_expected():
    with pytest.raises(SuiteError, match="a percentage such as 5% or 0. Received: 'five'"):
        parse_fraction("five", "--max-latency-increase")
    assert parse_points("0.5pt", "--q") == 0.5
    with pytest.raises(SuiteError, match="percentage points"):
        parse_points("-1", "--q")


def test_a_paired_re_measurement_against_this_baseline_decides_latency():
    """Alternate measurements of the baseline's model and the new one outrank the two runs' p50s, but
    only against the baseline they were made with."""
    rounds = [{"baseline_p50_ms": 1.0, "p50_ms": r} for r in (1.01, 0.99, 1.02)]
    slow_run = {**cell(1.3), "paired": {"baseline_run": "a", "rounds": rounds}}
    calm = verdict(cell(1.0), slow_run)
    assert calm.verdict == "ok" and calm.paired and calm.latency_change == pytest.approx(0.01)
    other = compare(run("x", cell(1.0)), run("b", slow_run)).cells[0]
    assert other.verdict == "regression" and not other.paired   # paired against another baseline: ignored
    slower = [{"baseline_p50_ms": 1.0, "p50_ms": r} for r in (1.12, 1.10, 1.11)]
    real = verdict(cell(1.0), {**cell(1.0), "paired": {"baseline_run": "a", "rounds": slower}})
    assert real.verdict == "regression" and "alternately" in real.reasons[0] and "+11.0%" in real.reasons[0]
    wobbly = [{"baseline_p50_ms": 1.0, "p50_ms": r} for r in (1.3, 1.08, 0.9)]
    assert verdict(cell(1.0), {**cell(1.0), "paired": {"baseline_run": "a", "rounds": wobbly}}).verdict == \
        "within noise"   # +8 % with a spread of ±20 %
