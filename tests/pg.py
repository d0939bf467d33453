"""A throwaway PostgreSQL server (Debian's postgresql) for the tests: initdb, pg_ctl, trust auth on loopback."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def available() -> str | None:
    """None when a PostgreSQL server can be started here, else the reason it cannot."""
    if _bin() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql)"
    if os.geteuid() != 0 and shutil.which("runuser") is None:
        return "starting PostgreSQL needs root (to run as the postgres user)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed"
    return None


@dataclass
class Postgres:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://edgesdk@127.0.0.1:{self.port}/edgesdk"

    def stop(self) -> None:
        _as_postgres([str(_bin() / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate", "stop"],
                     check=False)
        shutil.rmtree(self.directory, ignore_errors=True)


def _as_postgres(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv
    return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)


def start() -> Postgres:
    """initdb a new cluster in a temporary directory and start it on a free loopback port."""
    binary = _bin()
    assert binary is not None
    directory = Path(tempfile.mkdtemp(prefix="edgesdk-pg-"))
    os.chmod(directory, 0o777)
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _as_postgres([str(binary / "initdb"), "-D", str(directory / "data"), "-A", "trust", "-U", "edgesdk"])
    _as_postgres([str(binary / "pg_ctl"), "-D", str(directory / "data"), "-l", str(directory / "log"), "-w",
                  "-o", f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c max_connections=100", "start"])
    server = Postgres(directory, port)
    deadline = time.time() + 30
    while True:
        done = _as_postgres([str(binary / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "edgesdk",
                             "edgesdk"], check=False)
        if done.returncode == 0:
            return server
        if time.time() > deadline:
            server.stop()
            raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip()}")
        time.sleep(0.5)
