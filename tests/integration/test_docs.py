"""The documentation: the MkDocs site builds (links and nav checked), every `edgesdk` command shown in the
README and docs/ parses against the real command line, and every command of a `console` block (after a
`$`) runs, page by page, in a scratch folder beside the bundled example.

Nothing in a command is changed before it runs: the SSH page's board
(`raspberrypi.local`, its python at /home/pi/venv/bin/python) is this machine's loopback sshd, reached
through an ~/.ssh/config alias of that name, with that path a link to this checkout's virtual
environment, as a user's board would be set up.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import sshd

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SEPARATORS = {"|", "||", "&&", ";", "&"}


def _blocks(page: Path) -> list[tuple[str, list[str]]]:
    return [(lang, body.splitlines()) for lang, body in FENCE.findall(page.read_text())]


def _invocations(line: str) -> list[list[str]]:
    """The edgesdk invocations on one shell line: split at pipes, && and ;, comments dropped, a $(…)
    substitution taken as one word."""
    line = re.sub(r"\$\([^)]*\)", "X", line)
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;")
    lexer.whitespace_split, lexer.commenters = True, "#"
    words, found, current = list(lexer), [], []
    for word in [*words, ";"]:
        if word in SEPARATORS:
            if current and Path(current[0]).name == "edgesdk":
                found.append(current[1:])
            current = []
        else:
            current.append(word)
    return found


def _shown() -> list[tuple[str, list[str]]]:
    out = []
    for page in PAGES:
        for lang, lines in _blocks(page):
            if lang in ("bash", "console", "sh", "shell"):
                for line in lines:
                    text = line[2:] if lang == "console" and line.startswith("$ ") else line
                    out += [(f"{page.relative_to(ROOT)}: {line.strip()}", argv) for argv in _invocations(text)]
    return out


def _runnable(page: Path) -> list[str]:
    return [line[2:] for lang, lines in _blocks(page) if lang == "console" for line in lines if line.startswith("$ ")]


def test_the_site_builds(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site/tasks/phone-gpu/index.html").is_file()
    every = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    nav = (ROOT / "mkdocs.yml").read_text()
    assert all(page in nav for page in every), "a page of docs/ is missing from mkdocs.yml's nav"


def test_every_command_shown_parses():
    """Each `edgesdk …` in a shell block names a real command with options that exist and values of the
    right kind (click parses it; nothing runs)."""
    import typer

    from edgesdk.cli.app import app

    root = typer.main.get_command(app)
    shown = _shown()
    assert len(shown) >= 60, len(shown)
    bad = []
    for where, argv in shown:
        command, rest = root, list(argv)
        while hasattr(command, "commands") and rest and rest[0] in command.commands:
            command = command.commands[rest.pop(0)]
        if hasattr(command, "commands"):
            bad.append(f"{where}: no such command")
            continue
        try:
            command.make_context("edgesdk", rest)
        except Exception as exc:  # noqa: BLE001 - click's usage errors, reported with the line
            bad.append(f"{where}: {type(exc).__name__}: {exc}")
    assert not bad, "\n".join(bad)


def _board(tmp_path: Path) -> dict[str, str]:
    """A HOME whose ~/.ssh reaches the loopback sshd as raspberrypi.local, and /home/pi/venv this
    checkout's environment: the board of the SSH page."""
    if sshd.available() is not None:
        pytest.skip(str(sshd.available()))
    venv = Path("/home/pi/venv")
    if not venv.exists():
        try:
            venv.parent.mkdir(parents=True, exist_ok=True)
            venv.symlink_to(Path(sys.executable).parent.parent)
            _board.made = venv  # type: ignore[attr-defined]
        except OSError as exc:
            pytest.skip(f"cannot make /home/pi/venv here: {exc}")
    if not (venv / "bin/python").exists():
        pytest.skip("/home/pi/venv exists and is not a python environment")
    server = sshd.start(tmp_path / "sshd")
    home = tmp_path / "home"
    sshd.user_home(server, home)
    config = home / ".ssh/config"
    config.write_text(config.read_text().replace("Host testdevice", "Host raspberrypi.local"))
    _board.server = server  # type: ignore[attr-defined]
    return {"HOME": str(home)}


RUN = [page for page in PAGES if _runnable(page)]


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN, ids=[p.relative_to(ROOT).as_posix() for p in RUN])
def test_the_commands_of_a_page_run(page, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "80"}
    if "raspberrypi.local" in page.read_text():
        env.update(_board(tmp_path))
    if "--accelerator gpu" in page.read_text() and shutil.which("vulkaninfo") is None and \
            not Path("/usr/share/vulkan/icd.d").is_dir():
        pytest.skip("no Vulkan driver here for LiteRT's GPU accelerator (Mesa's lavapipe)")
    try:
        for line in _runnable(page):
            done = subprocess.run(line, shell=True, cwd=work, env=env, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"{page.name}: `{line}` exited {done.returncode}:\n{done.stderr[-2000:]}"
            assert "Traceback" not in done.stderr, done.stderr
    finally:
        server = getattr(_board, "server", None)
        if server is not None:
            server.stop()
            del _board.server  # type: ignore[attr-defined]
        made = getattr(_board, "made", None)
        if made is not None:  # the link this test made, not a board's own environment
            made.unlink()
            del _board.made  # type: ignore[attr-defined]
