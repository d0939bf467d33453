"""The agent's defence against a device that changes speed while it measures (device_agent.bench.quietest)."""

import numpy as np
import pytest

from device_agent.bench import MIN_WINDOW, quietest
from device_agent.protocol import BenchSettings


def _runs(*stretches: tuple[float, int], seed: int = 0) -> list[float]:
    """Consecutive stretches of runs around a given latency, with 1 % jitter."""
    rng = np.random.default_rng(seed)
    return [float(ms * (1 + 0.01 * rng.standard_normal())) for ms, count in stretches for _ in range(count)]


def test_a_steady_device_reports_every_run():
    times = _runs((1.0, 500))
    kept, medians = quietest(times, 5)
    assert kept == times and len(medians) == 5
    assert max(medians) / min(medians) < 1.05


def test_a_slow_stretch_is_set_apart_and_the_quietest_window_reported():
    # 60 % of the runs (more than half, so the plain median would be the slow one) at 1.4x the speed
    times = _runs((1.4, 300), (1.0, 200))
    assert np.median(times) > 1.3
    kept, medians = quietest(times, 5)
    assert len(kept) == 100 and abs(float(np.median(kept)) - 1.0) < 0.02
    assert max(medians) > 1.3 and min(medians) < 1.02


def test_windows_never_hold_fewer_than_the_minimum_runs():
    times = _runs((1.0, 3 * MIN_WINDOW - 1), (2.0, 10))
    kept, medians = quietest(times, 50)
    assert len(medians) == len(times) // MIN_WINDOW == 3
    kept, medians = quietest(_runs((1.0, 5)), 5)  # too few runs to split: one window, every run
    assert len(kept) == 5 and len(medians) == 1


def test_one_window_keeps_the_plain_statistics():
    times = _runs((1.4, 300), (1.0, 200))
    kept, medians = quietest(times, 1)
    assert kept == times and len(medians) == 1


def test_windows_are_a_setting_sent_to_the_agent():
    with pytest.raises(ValueError, match="windows"):
        BenchSettings(windows=0)
    args = BenchSettings(windows=7).to_args()
    assert args[args.index("--windows") + 1] == "7"
    assert BenchSettings(windows=3).to_dict() != BenchSettings().to_dict()  # part of the cache key
