"""SSH transport (paramiko): verified host keys, a content-addressed cache on the device, one lock.

URL: ``ssh://[user@]host[:port][?python=/path/to/python][&cache=/dir/on/device]``. Keys come from the SSH agent, ~/.ssh
and ~/.ssh/config (IdentityFile, User, Port, HostName). Host keys are checked against known_hosts: an
unknown host is refused unless ``trust_new_host`` (then it is recorded), a changed key always.
"""

from __future__ import annotations

import logging
import os
import shlex
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import DeployError
from .bundle import agent_zipapp
from .transport import (
    LOCK,
    AgentRun,
    Cleaned,
    Transport,
    agent_command,
    checked_run,
    clean_command,
    content_name,
    parse_clean,
    record_command,
)

log = logging.getLogger(__name__)

REMOTE_CACHE = ".cache/edgesdk-device"  # under the remote home; apart from the host-side cache


def parse_url(url: str) -> dict[str, Any]:
    """Split an ssh:// URL into user, host, port and options.

    Raises:
        DeployError: not an ssh:// URL, or no host.
    """
    parts = urlsplit(url)
    if parts.scheme != "ssh" or not parts.hostname:
        raise DeployError(f"expected a device URL like ssh://user@host[:port]. Received: {url!r}")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"python", "cache"}
    if unknown:
        raise DeployError(f"{url}: unknown option(s) {', '.join(sorted(unknown))}; expected: python, cache")
    try:
        port = parts.port
    except ValueError as exc:
        raise DeployError(f"{url}: invalid port") from exc
    return {"user": parts.username, "host": parts.hostname, "port": port, "python": query.get("python"),
            "cache": query.get("cache")}


class _RecordNewHost:
    """Host-key policy for --trust-new-host: accept an unknown key and write it to known_hosts."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: Any, hostname: str, key: Any) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        client.save_host_keys(str(self.known_hosts))
        log.warning("trusted new host key for %s: %s %s", hostname, key.get_name(), key.get_fingerprint().hex())


class SshTransport(Transport):
    """A device reached over SSH. ``python`` is the interpreter that runs the agent there."""

    def __init__(self, url: str, *, trust_new_host: bool = False, known_hosts: str | os.PathLike[str] | None = None,
                 key_filename: str | None = None, python: str | None = None, connect_timeout: float = 10.0,
                 ssh_config: str | os.PathLike[str] | None = None) -> None:
        import paramiko

        self.url = url
        target = parse_url(url)
        config = paramiko.SSHConfig()
        config_path = Path(ssh_config) if ssh_config else Path.home() / ".ssh" / "config"
        if config_path.is_file():
            config = paramiko.SSHConfig.from_path(str(config_path))
        entry = config.lookup(target["host"])
        self.host = entry.get("hostname", target["host"])
        self.port = int(target["port"] or entry.get("port", 22))
        self.user = target["user"] or entry.get("user") or os.environ.get("USER") or "root"
        self.python = python or target["python"] or "python3"
        self._cache = target["cache"]
        self.known_hosts = Path(known_hosts) if known_hosts else Path.home() / ".ssh" / "known_hosts"
        keys = [key_filename] if key_filename else entry.get("identityfile")
        self.uploads = 0
        self._cache_made = False
        self._agent: str | None = None  # remote path of the agent, once checked on this connection
        self._recorded: set[str] = set()  # names this connection has written to the device's manifest

        client = paramiko.SSHClient()
        if self.known_hosts.is_file():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(_RecordNewHost(self.known_hosts) if trust_new_host
                                           else paramiko.RejectPolicy())
        where = f"{self.user}@{self.host}:{self.port}"
        try:
            client.connect(self.host, port=self.port, username=self.user, key_filename=keys,
                           timeout=connect_timeout, banner_timeout=connect_timeout, auth_timeout=connect_timeout,
                           allow_agent=True, look_for_keys=keys is None)
        except paramiko.BadHostKeyException as exc:
            raise DeployError(f"{where}: the host key CHANGED (got {exc.key.get_name()} "
                              f"{exc.key.get_fingerprint().hex()}); refusing to connect. If the device was "
                              f"reinstalled, remove its line from {self.known_hosts}") from exc
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise DeployError(f"{where}: unknown host key; refusing to connect. Check the device, then pass "
                                  "--trust-new-host to record its key") from exc
            if isinstance(exc, paramiko.AuthenticationException):
                raise DeployError(f"{where}: authentication failed ({exc}); check the user and your SSH keys") from exc
            raise DeployError(f"{where}: SSH failed: {exc}") from exc
        except (TimeoutError, OSError) as exc:
            raise DeployError(f"{where}: cannot connect: {exc.strerror or exc}") from exc
        self.client = client

    # -- remote helpers ---------------------------------------------------------------------------
    def _exec(self, command: str, timeout: float) -> AgentRun:
        import paramiko

        try:
            _, stdout, stderr = self.client.exec_command(command, timeout=timeout)
            out = stdout.read().decode(errors="replace")
            err = stderr.read().decode(errors="replace")
            code = stdout.channel.recv_exit_status()
        except TimeoutError as exc:
            raise DeployError(f"{self.url}: no answer from the device agent within {timeout:g} s") from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise DeployError(f"{self.url}: the connection dropped while running the agent: {exc}") from exc
        if code == -1:  # no exit status: the connection went, or the process died from a signal
            transport = self.client.get_transport()
            if transport is None or not transport.is_active():
                raise DeployError(f"{self.url}: the connection dropped while the agent was running; "
                                  "nothing was stored")
            code = 128 + 9  # paramiko drops `exit-signal`; report it as a kill
        return AgentRun(code, out, err)

    def _cache_dir(self) -> str:
        if self._cache is None:
            home = self._exec("printf %s \"$HOME\"", 30).stdout.strip() or "."
            self._cache = f"{home}/{REMOTE_CACHE}"
        if not self._cache_made:
            self._exec(f"mkdir -p {shlex.quote(self._cache)}", 30)
            self._cache_made = True
        return self._cache

    def _upload(self, path: Path, name: str) -> str:
        """Upload ``path`` as ``name`` in the cache unless a file of that name and size is there."""
        remote = f"{self._cache_dir()}/{name}"
        size = path.stat().st_size
        try:
            sftp = self.client.open_sftp()
        except Exception as exc:  # noqa: BLE001 - paramiko raises SSHException or OSError here
            raise DeployError(f"{self.url}: cannot open SFTP (is the sftp subsystem enabled?): {exc}") from exc
        try:
            try:
                if sftp.stat(remote).st_size == size:
                    self._record(name)
                    return remote
            except OSError:
                pass
            partial = f"{remote}.part-{os.getpid()}-{time.monotonic_ns()}"
            try:
                sftp.put(str(path), partial, confirm=True)
                sftp.posix_rename(partial, remote)
            except OSError as exc:
                try:
                    sftp.remove(partial)
                except OSError:
                    pass
                raise DeployError(f"{self.url}: cannot upload {path.name} ({exc}); is the device's disk full?") from exc
            self.uploads += 1
            self._record(name)
            return remote
        finally:
            sftp.close()

    def _record(self, name: str, *more: str) -> None:
        """Name a file in the device's manifest (once per connection), so `devices clean` removes it."""
        names = [n for n in (name, *more) if n not in self._recorded]
        if names:
            run = self._exec(record_command(self._cache_dir(), names), 30)
            if run.returncode != 0:
                raise DeployError(f"{self.url}: cannot write the upload manifest in {self._cache_dir()}: "
                                  f"{run.stderr.strip()[:300]}")
            self._recorded.update(names)

    # -- Transport --------------------------------------------------------------------------------
    def put(self, path: Path) -> str:
        return self._upload(path, content_name(path)[1])

    def run_agent(self, args: list[str], timeout: float) -> AgentRun:
        if self._agent is None:
            bundle = agent_zipapp()
            self._agent = self._upload(bundle, bundle.name)
            self._record(LOCK)
        command = agent_command(self.python, self._agent, args, timeout, self._cache_dir())
        return checked_run(self._exec(command, timeout + 15), self.url, self.python, timeout)

    def shell(self, command: str, timeout: float) -> AgentRun:
        return self._exec(command, timeout)

    def put_as(self, path: Path, name: str) -> str:
        return self._upload(path, name)

    def cache_dir(self) -> str:
        return self._cache_dir()

    def clean(self) -> Cleaned:
        """Remove the files edgesdk recorded in the device's cache; other files there stay."""
        directory = self._cache_dir()
        run = self._exec(clean_command(directory), 120)
        self._cache_made, self._agent, self._recorded = False, None, set()
        return parse_clean(run.stdout, directory)

    def close(self) -> None:
        self.client.close()
