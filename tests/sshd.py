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
    host: str
    port: int
    user: str
    user_key: Path
    host_pub: str
    known_hosts: Path
    proc: subprocess.Popen
    log: Path

    def url(self, python: str | None = None) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}" + (f"?python={python}" if python else "")

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


def command(port: int, host_key: Path | str, authorized: Path | str, home: Path | str,
            address: str = "127.0.0.1") -> list[str]:
    """sshd on ``address:port`` in the foreground, keys only, its sessions' $HOME set to ``home``."""
    return [SSHD, "-D", "-e", "-f", "/dev/null", "-p", str(port), "-h", str(host_key),
            "-o", f"ListenAddress={address}", "-o", f"AuthorizedKeysFile={authorized}", "-o", "StrictModes=no",
            "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no", "-o", "UsePAM=no",
            "-o", "PermitRootLogin=prohibit-password", "-o", "PidFile=none", "-o", "Subsystem=sftp internal-sftp",
            "-o", f"SetEnv=HOME={home}"]


def wait_for(proc: subprocess.Popen, address: str, port: int, log: Path, seconds: float) -> None:
    """Until sshd accepts connections; its log in the error if it exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection((address, port), timeout=0.5).close()
            return
        except OSError as exc:
            if proc.poll() is not None:
                raise RuntimeError(f"sshd exited: {log.read_text()}") from exc
            time.sleep(0.05)


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def start(directory: Path, host_key: Path | None = None, port: int | None = None, *,
          address: str = "127.0.0.1", netns: str | None = None) -> Sshd:
    """Start sshd (as the current user, who may log in with the generated user key), on loopback or
    inside the network namespace ``netns`` at ``address``."""
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
    # Each server is a device of its own: its sessions get their own $HOME (so their own
    # ~/.cache/edgesdk-device), and tests on parallel workers never share or clean each other's cache.
    home = directory / "device-home"
    home.mkdir(exist_ok=True)
    prefix = ["ip", "netns", "exec", netns] if netns else []
    proc = subprocess.Popen([*prefix, *command(port, host_key, authorized, home, address)],
                            stdout=subprocess.DEVNULL, stderr=log.open("w"))
    wait_for(proc, address, port, log, 10)
    host_pub = Path(f"{host_key}.pub").read_text().split()
    known = directory / "known_hosts"
    name = address if port == 22 else f"[{address}]:{port}"  # OpenSSH's known_hosts convention
    known.write_text(f"{name} {host_pub[0]} {host_pub[1]}\n")
    import getpass

    return Sshd(address, port, getpass.getuser(), user_key, " ".join(host_pub[:2]), known, proc, log)


# A private /30 between this machine and the test host; traffic goes only to the namespace we made.
NETNS_HOST_IP, NETNS_DEVICE_IP = "10.213.7.1", "10.213.7.2"


def make_netns(name: str) -> None:
    """A network namespace with its own interface: a separate 'device' host reachable over a veth pair."""
    host_if, dev_if = f"{name[:8]}-h", f"{name[:8]}-d"
    for cmd in (["ip", "netns", "add", name],
                ["ip", "link", "add", host_if, "type", "veth", "peer", "name", dev_if],
                ["ip", "link", "set", dev_if, "netns", name],
                ["ip", "addr", "add", f"{NETNS_HOST_IP}/30", "dev", host_if],
                ["ip", "link", "set", host_if, "up"],
                ["ip", "netns", "exec", name, "ip", "addr", "add", f"{NETNS_DEVICE_IP}/30", "dev", dev_if],
                ["ip", "netns", "exec", name, "ip", "link", "set", dev_if, "up"],
                ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]):
        subprocess.run(cmd, check=True, capture_output=True)


def remove_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)  # takes the veth pair along


def netns_available() -> str | None:
    """None when a network namespace can be made here, else why not."""
    if available():
        return available()
    if not shutil.which("ip"):
        return "iproute2's `ip` not found"
    probe = f"edgesdk-probe-{os.getpid()}"
    if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode != 0:
        return "cannot create network namespaces here"
    remove_netns(probe)
    return None


def available() -> str | None:
    """None when a test sshd can run here, else the reason it cannot."""
    if not Path(SSHD).exists():
        return f"{SSHD} not found (install Debian's openssh-server)"
    if not shutil.which("ssh-keygen"):
        return "ssh-keygen not found"
    if os.geteuid() != 0:
        return "sshd needs root for privilege separation in this setup"
    return None


def user_home(server: Sshd, home: Path) -> Path:
    """A HOME whose ~/.ssh knows ``server`` under the alias 'testdevice' (its user key and host key)."""
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(
        f"Host testdevice\n  HostName 127.0.0.1\n  Port {server.port}\n  User {server.user}\n"
        f"  IdentityFile {server.user_key}\n")
    shutil.copy(server.known_hosts, home / ".ssh" / "known_hosts")
    return home
