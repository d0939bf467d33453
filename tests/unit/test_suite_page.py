"""The suite page's trend lines: noise looks like noise, a change like a change."""

from __future__ import annotations

import re

from edgesdk.suite.outputs import _sparkline


def _ys(svg: str) -> list[float]:
    points = re.search(r'points="([^"]+)"', svg).group(1)
    return [float(p.split(",")[1]) for p in points.split()]


def test_a_flat_trend_stays_flat_and_a_step_fills_the_box():
    noise = _ys(_sparkline([1.000, 1.006, 0.997, 1.003]))      # ±0.6 %
    step = _ys(_sparkline([1.0, 1.0, 1.0, 1.5]))               # +50 %
    assert max(noise) - min(noise) < 2 and max(step) - min(step) > 10
    assert "+50.0%" in _sparkline([1.0, 1.0, 1.0, 1.5]) and _sparkline([1.0]) == ""
