"""A real OpenSSH server on a loopback port, with host and user keys made for the test."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"


@dataclass
class Sshd:
    port: int
    user: str
    user_key: Path
    host_pub: str
    known_hosts: Path
    proc: subprocess.Popen
    log: Path

    def url(self, python: str | None = None) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}" + (f"?python={python}" if python else "")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def start(directory: Path, host_key: Path | None = None, port: int | None = None) -> Sshd:
    """Start sshd (as the current user, who may log in with the generated user key)."""
    directory.mkdir(parents=True, exist_ok=True)
    host_key = host_key or keygen(directory / "host_key")
    user_key = directory / "user_key"
    if not user_key.exists():
        keygen(user_key)
    authorized = directory / "authorized_keys"
    authorized.write_text((directory / "user_key.pub").read_text())
    os.makedirs("/run/sshd", exist_ok=True)
    port = port or _free_port()
    log = directory / f"sshd-{port}.log"
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", "/dev/null", "-p", str(port), "-h", str(host_key),
         "-o", "ListenAddress=127.0.0.1", "-o", f"AuthorizedKeysFile={authorized}", "-o", "StrictModes=no",
         "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no", "-o", "UsePAM=no",
         "-o", "PermitRootLogin=prohibit-password", "-o", "PidFile=none", "-o", "Subsystem=sftp internal-sftp"],
        stdout=subprocess.DEVNULL, stderr=log.open("w"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError as exc:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {log.read_text()}") from exc
            time.sleep(0.05)
    host_pub = Path(f"{host_key}.pub").read_text().split()
    known = directory / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    import getpass

    return Sshd(port, getpass.getuser(), user_key, " ".join(host_pub[:2]), known, proc, log)


def available() -> str | None:
    """None when a test sshd can run here, else the reason it cannot."""
    if not Path(SSHD).exists():
        return f"{SSHD} not found (install Debian's openssh-server)"
    if not shutil.which("ssh-keygen"):
        return "ssh-keygen not found"
    if os.geteuid() != 0:
        return "sshd needs root for privilege separation in this setup"
    return None
