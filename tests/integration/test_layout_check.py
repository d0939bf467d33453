"""The screenshot check itself (tests/browser.py layout_problems) finds what a person would see wrong."""

from __future__ import annotations

import pytest

from tests import browser

pytestmark = pytest.mark.skipif(browser.available() is not None, reason=str(browser.available()))


def test_the_layout_check_finds_overflowing_text_and_plot_labels(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text(
        "<html><body><table><tr><td style='max-width:60px;overflow:hidden;white-space:nowrap'>"
        "a_recipe_name_far_too_long_for_its_cell</td></tr></table>"
        "<svg width='100' height='50' viewBox='0 0 100 50'><text x='80' y='20'>1.019e+04 beyond</text></svg>"
        "<p style='width:3000px'>wide</p></body></html>")
    found = browser.layout_problems(page, 800)
    assert any("TD overflows its box: a_recipe_name" in p for p in found), found
    assert any("plot text outside its plot: 1.019e+04" in p for p in found), found
    assert any("wide in a 800px window" in p for p in found), found
    good = tmp_path / "good.html"
    good.write_text("<html><body><table><tr><td>int8</td></tr></table></body></html>")
    assert browser.layout_problems(good, 800) == []
