"""Headless Chromium (Debian `chromium`) for the report tests: the rendered DOM and a screenshot."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def executable() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def available() -> str | None:
    """None when headless Chromium can run here, else the reason it cannot."""
    return None if executable() else "Debian's chromium is not installed (apt-get install chromium)"


def _run(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([str(executable()), *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=120, check=True)


def dom(page: Path) -> str:
    """The DOM after Chromium loaded and laid out the page (what a person would see)."""
    return _run(page, "--dump-dom").stdout


def screenshot(page: Path, png: Path, size: str = "1200,1600") -> Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    _run(page, f"--window-size={size}", f"--screenshot={png.resolve()}")
    return png


_LAYOUT_CHECK = """<script>
(() => {
  const bad = [];
  const boxed = new Set(["TD", "TH", "P", "LI", "H1", "H2", "H3", "BUTTON", "SPAN", "CODE", "PRE", "DIV"]);
  for (const el of document.querySelectorAll("body *")) {
    if (el.closest("svg") || !boxed.has(el.tagName) || el.clientWidth === 0) continue;
    const style = getComputedStyle(el);
    const scrolls = ["auto", "scroll"].includes(style.overflowX);
    if (!scrolls && el.scrollWidth > el.clientWidth + 1 && !el.closest("[data-scrolls]"))
      bad.push(`${el.tagName} overflows its box: ${el.textContent.trim().slice(0, 80)}`);
  }
  for (const svg of document.querySelectorAll("svg")) {
    const frame = svg.getBoundingClientRect();
    for (const text of svg.querySelectorAll("text")) {
      const r = text.getBoundingClientRect();
      if (r.width && (r.left < frame.left - 1 || r.right > frame.right + 1 || r.top < frame.top - 1 ||
                      r.bottom > frame.bottom + 1))
        bad.push(`plot text outside its plot: ${text.textContent.trim()}`);
    }
  }
  const page = document.scrollingElement;
  if (page.scrollWidth > window.innerWidth + 1)
    bad.push(`the page is ${page.scrollWidth}px wide in a ${window.innerWidth}px window`);
  document.body.setAttribute("data-layout-problems", JSON.stringify(bad));
})();
</script>"""


def layout_problems(page: Path, width: int = 1200) -> list[str]:
    """What a person would see wrong in a screenshot of ``page`` at ``width`` pixels: text overflowing its
    box (a table cell, a paragraph), a plot's text outside the plot, a page wider than the window. The
    page is laid out by Chromium with a script appended that measures the rendered boxes."""
    import html
    import json
    import re

    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / page.name
        probe.write_text(page.read_text().replace("</body>", _LAYOUT_CHECK + "</body>"))
        out = _run(probe, f"--window-size={width},1600", "--dump-dom").stdout
    found = re.search(r'data-layout-problems="([^"]*)"', out)
    assert found, "the layout check did not run"
    return list(json.loads(html.unescape(found.group(1))))
