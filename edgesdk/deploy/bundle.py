"""The device agent as one file: a zipapp built from the device_agent package, named by its hash.

Devices get exactly this file; a transport uploads it only when a file of that name is not already
in the device's cache, so an unchanged agent travels once.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import zipapp
from pathlib import Path

import platformdirs

import device_agent

_MAIN = "import sys\nfrom device_agent.__main__ import main\nsys.exit(main())\n"


def _sources() -> list[Path]:
    root = Path(device_agent.__file__).parent
    return sorted(p for p in root.glob("*.py"))


def agent_hash() -> str:
    """sha256 over the agent's source files (names and contents) and how the zipapp is built."""
    digest = hashlib.sha256(_MAIN.encode() + b"\0deflate\0")
    for path in _sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def agent_zipapp(cache_dir: Path | None = None) -> Path:
    """Path of the agent zipapp for the current sources, building it on first use."""
    directory = cache_dir or Path(platformdirs.user_cache_dir("edgesdk")) / "agent"
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"edgesdk-agent-{agent_hash()[:16]}.pyz"
    if target.is_file():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "app"
        package = staging / "device_agent"
        package.mkdir(parents=True)
        for source in _sources():
            shutil.copy2(source, package / source.name)
        (staging / "__main__.py").write_text(_MAIN)
        built = Path(tmp) / target.name
        zipapp.create_archive(staging, built, interpreter="/usr/bin/env python3", compressed=True)
        shutil.move(str(built), target)  # whole file or nothing: a concurrent build cannot leave half
    return target
