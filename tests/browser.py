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
