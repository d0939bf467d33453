"""An ARM device for the tests: the arm64 Debian userland of scripts/arm_device.sh under qemu-user, with
its own (arm64) sshd on a loopback port.

Everything that runs on it is real aarch64 code (python, numpy and LiteRT's aarch64 wheels, OpenSSH);
only its speed is emulation. The host's /sys stays out of it (XNNPACK's cpuinfo would read the x86
topology and crash); /proc is mounted for python and pip. Each start gives its sessions their own $HOME,
so two test workers never share a device cache.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests import sshd

ROOT = Path(os.environ.get("EDGESDK_ARM_ROOT", "/var/cache/edgesdk/arm64-bookworm"))


def available() -> str | None:
    """None when the ARM device can start here, else why not."""
    if not (ROOT / ".edgesdk-ready").is_file():
        return f"no arm64 userland at {ROOT}: run `bash scripts/arm_device.sh` (as .ci/run does)"
    if os.geteuid() != 0:
        return "the ARM device needs root (chroot)"
    entry = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    if not entry.is_file() or "enabled" not in entry.read_text():
        return "qemu-aarch64 is not registered with binfmt_misc: run `bash scripts/arm_device.sh`"
    return None


@dataclass
class ArmDevice:
    port: int
    user_key: Path
    known_hosts: Path
    home: str                     # the sessions' $HOME, inside the chroot
    proc: subprocess.Popen
    mounted_proc: bool
    files: tuple[Path, ...] = ()  # what this start put into the userland (keys, the home), removed by stop

    def url(self, **query: str) -> str:
        tail = "&".join(f"{k}={v}" for k, v in query.items())
        return f"ssh://root@127.0.0.1:{self.port}" + (f"?{tail}" if tail else "")

    def ssh_config(self, home: Path, alias: str = "armdev") -> Path:
        """A ~/.ssh under ``home`` that reaches this device as ``alias`` (key, known host)."""
        ssh = home / ".ssh"
        ssh.mkdir(parents=True, exist_ok=True)
        (ssh / "config").write_text(f"Host {alias}\n  HostName 127.0.0.1\n  Port {self.port}\n  User root\n"
                                    f"  IdentityFile {self.user_key}\n")
        shutil.copyfile(self.known_hosts, ssh / "known_hosts")
        return ssh

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for path in self.files:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        if self.mounted_proc:
            subprocess.run(["umount", "-l", str(ROOT / "proc")], check=False, capture_output=True)


def start(directory: Path) -> ArmDevice:
    directory.mkdir(parents=True, exist_ok=True)
    user_key = sshd.keygen(directory / "user_key")
    host_key = sshd.keygen(directory / "host_key")
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    etc = ROOT / "etc" / "ssh"
    inner_key = f"/etc/ssh/edgesdk_host_key-{tag}"
    shutil.copyfile(host_key, ROOT / inner_key.lstrip("/"))
    os.chmod(ROOT / inner_key.lstrip("/"), 0o600)
    authorized = f"/etc/ssh/edgesdk_authorized_keys-{tag}"
    (ROOT / authorized.lstrip("/")).write_text(Path(f"{user_key}.pub").read_text())
    home = f"/root/edgesdk-{tag}"
    (ROOT / home.lstrip("/")).mkdir(parents=True)
    for name in ("resolv.conf", "ssl/certs/ca-certificates.crt"):  # name resolution and this network's CA
        if Path("/etc", name).is_file():
            shutil.copyfile(Path("/etc", name), ROOT / "etc" / name)
    etc.mkdir(exist_ok=True)
    (ROOT / "run" / "sshd").mkdir(parents=True, exist_ok=True)
    mounted = False
    if not (ROOT / "proc" / "self").exists():
        subprocess.run(["mount", "-t", "proc", "proc", str(ROOT / "proc")], check=True, capture_output=True)
        mounted = True
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = directory / "sshd.log"
    # the chroot's own (arm64) sshd; an emulated sshd takes its time to start
    proc = subprocess.Popen(["chroot", str(ROOT), *sshd.command(port, inner_key, authorized, home)],
                            stdout=subprocess.DEVNULL, stderr=log.open("w"),
                            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    sshd.wait_for(proc, "127.0.0.1", port, log, 60)
    pub = Path(f"{host_key}.pub").read_text().split()
    known = directory / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {pub[0]} {pub[1]}\n")
    files = (ROOT / inner_key.lstrip("/"), ROOT / authorized.lstrip("/"), ROOT / home.lstrip("/"))
    return ArmDevice(port, user_key, known, home, proc, mounted, files)
