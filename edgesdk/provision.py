"""`devices setup`: a device made ready to measure in one command.

Over the device's own shell (SSH or ADB): find its python, platform and architecture; make a virtual
environment in the device cache; install numpy and a TFLite runtime that has a wheel for the device
(ai-edge-litert, else tflite-runtime with numpy<2), from the internet or, ``offline``, from wheels this
machine downloads for the device's platform tags and pushes; check the agent runs there; record the
interpreter in the device's record. The environment is built beside its final place and moved there
only when it works, so a failure leaves the device (and its record) as they were; run again, and a
device that is ready is left alone.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from device_agent.runtime import DeviceRuntime, installable

from .deploy import LOCAL, SCHEMES, Transport, open_transport, scheme_of
from .devices import is_url, resolve
from .errors import DeployError, EdgeSdkError
from .progress import Event, Progress
from .store import Store

log = logging.getLogger(__name__)

# The agent's runtimes that name what installs them, by distribution name, in the agent's preference order.
INSTALLABLE: dict[str, DeviceRuntime] = installable()
RUNTIMES = tuple(INSTALLABLE)
INSTALL_TIMEOUT_S = 1800.0  # an emulated or slow board unpacks numpy for minutes

PROBE = ("import json, platform, sys, sysconfig; "
         "print(json.dumps({'executable': sys.executable, 'version': '%d.%d' % sys.version_info[:2], "
         "'machine': platform.machine(), 'system': platform.system(), 'libc': platform.libc_ver(), "
         "'platform': sysconfig.get_platform(), 'prefix': sys.prefix, 'base_prefix': sys.base_prefix}))")


@dataclass
class SetupResult:
    """What `devices setup` did: the interpreter recorded, the runtime installed, the device's platform."""

    device: str
    url: str
    python: str
    runtime: dict[str, str]
    platform: dict[str, Any]
    changed: bool
    offline: bool
    steps: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def requirements(runtime: str) -> list[str]:
    """The packages to install for ``runtime``; ai-edge-litert at this machine's version (the agent is
    tested with it) when it is installed here."""
    wanted = list(INSTALLABLE[runtime].install)
    mine = _version(runtime)
    if mine and runtime == "ai-edge-litert":
        wanted[-1] = f"{runtime}=={mine}"
    return wanted


def platform_tags(probe: dict[str, Any]) -> list[str]:
    """pip's ``--platform`` values for the device: every manylinux tag its glibc admits, newest first.

    Raises:
        DeployError: not a glibc Linux (musl, Android, macOS): no manylinux wheel fits it.
    """
    machine = str(probe.get("machine") or "")
    libc, libc_version = (list(probe.get("libc") or []) + ["", ""])[:2]
    if probe.get("system") != "Linux" or libc != "glibc" or not libc_version:
        raise DeployError(f"--offline picks manylinux wheels, which need a glibc Linux; this device is "
                          f"{probe.get('system')} {machine} ({libc or 'no glibc'}). Set it up online instead")
    arch = {"arm64": "aarch64", "amd64": "x86_64"}.get(machine, machine)
    major, minor = (int(part) for part in str(libc_version).split(".")[:2])
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
    return tags + [f"manylinux2014_{arch}", "linux_" + arch] if major == 2 else tags


def _quote(path: str) -> str:
    return shlex.quote(path)


class _Device:
    """One setup session on a device: its shell, its cache directory and the python that answered."""

    def __init__(self, transport: Transport, say: Progress) -> None:
        self.t = transport
        self.say = say
        self.steps: list[str] = []

    def step(self, text: str, done: int, total: int = 5) -> None:
        self.steps.append(text)
        self.say(Event(text, done=done, total=total))

    def run(self, command: str, timeout: float, what: str) -> str:
        done = self.t.shell(command, timeout)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()
            last = tail[-1].removeprefix("ERROR: ") if tail else f"exit {done.returncode}"
            hint = " (is the device's disk full?)" if "No space left" in last else ""
            raise DeployError(f"{what} failed: {last}{hint}")
        return done.stdout

    def probe(self, python: str) -> dict[str, Any] | None:
        done = self.t.shell(f"{_quote(python)} -c {_quote(PROBE)}", 120)
        if done.returncode != 0:
            return None
        try:
            return dict(json.loads(done.stdout.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            return None

    def has_runtime(self, python: str, runtime: str) -> bool:
        check = f"import numpy, {INSTALLABLE[runtime].module}"
        return self.t.shell(f"{_quote(python)} -c {_quote(check)}", 300).returncode == 0


def _with_python(url: str, python: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "python"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("python", python)], safe="/:")))


def _download(requirement: list[str], probe: dict[str, Any], into: Path) -> list[Path]:
    """Wheels of ``requirement`` and their dependencies for the device's platform, python and ABI."""
    version = str(probe["version"])
    abi = "cp" + version.replace(".", "")
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--dest", str(into),
               "--only-binary=:all:", "--implementation", "cp", "--python-version", version, "--abi", abi,
               "--abi", "abi3", "--abi", "none"]
    for tag in platform_tags(probe):
        command += ["--platform", tag]
    done = subprocess.run([*command, "--platform", "any", *requirement], capture_output=True, text=True,
                          timeout=INSTALL_TIMEOUT_S, check=False)
    if done.returncode != 0:
        tail = [line for line in done.stderr.strip().splitlines() if "WARNING" not in line]
        raise DeployError(f"no wheels of {' '.join(requirement)} for python {version} on {probe['machine']}: "
                          f"{tail[-1] if tail else 'pip download failed'}")
    return sorted(into.glob("*.whl"))


def setup(device: str, store: Store | None = None, *, runtime: str | None = None, offline: bool = False,
          trust_new_host: bool = False, progress: Progress | None = None) -> SetupResult:
    """Make ``device`` (a name or an ssh:// or adb:// URL) ready to measure; see the module docstring.

    ``runtime``: ai-edge-litert or tflite-runtime (default: ai-edge-litert, else tflite-runtime where
    LiteRT has no wheel for the device). A named device's record gets the new interpreter.

    Raises:
        DeployError: the device cannot be reached, has no usable python or venv, or no runtime wheel
            fits it (named); nothing on it or in its record changed then.
    """
    if runtime is not None and runtime not in RUNTIMES:
        raise DeployError(f"--runtime must be one of {', '.join(RUNTIMES)}. Received: {runtime!r}")
    url = resolve(device, store)
    if url in LOCAL or not scheme_of(url).setup:
        over = " and ".join(s.prefix for s in SCHEMES.values() if s.setup)
        raise DeployError(f"devices setup works over {over}; {url} is not such a device "
                          "(this machine: install with `python3 -m pip install numpy ai-edge-litert`)")
    say = progress or (lambda event: log.info(event.text))
    transport = open_transport(url, trust_new_host=trust_new_host)
    try:
        return _setup(_Device(transport, say), device, url, store, runtime, offline)
    except DeployError as exc:
        if str(exc).startswith(url):
            raise
        raise DeployError(f"{url}: {exc}") from exc
    finally:
        transport.close()


def _setup(dev: _Device, device: str, url: str, store: Store | None, runtime: str | None,
           offline: bool) -> SetupResult:
    t = dev.t
    current = str(getattr(t, "python", "python3"))
    dev.step(f"probing {current} on the device", 0)
    probe = dev.probe(current)
    if probe is None and current != "python3":
        probe = dev.probe("python3")
    if probe is None:
        raise DeployError("no python3 answers on the device; install Python 3 (Debian, Raspberry Pi OS: "
                          "`sudo apt install python3 python3-venv`)")
    platform = {k: probe[k] for k in ("version", "machine", "system", "libc", "platform")}
    wanted = [runtime] if runtime else list(RUNTIMES)
    for choice in wanted:  # already ready: the recorded interpreter has numpy and this runtime
        if dev.has_runtime(current, choice) and (runtime is None or choice == runtime):
            dev.step(f"{current} already has numpy and {choice}: nothing to do", 5)
            return _finish(dev, device, url, store, current, platform, changed=False, offline=offline)
    base = probe["base_prefix"] if probe.get("prefix") != probe.get("base_prefix") else None
    python = f"{base}/bin/python{probe['version']}" if base else str(probe["executable"])
    cache = t.cache_dir()
    errors = []
    for choice in wanted:
        venv = f"{cache}/venv-{choice}"
        target = f"{venv}/bin/python"
        if dev.probe(target) is not None and dev.has_runtime(target, choice):
            dev.step(f"{venv} already has numpy and {choice}", 4)
            return _finish(dev, device, url, store, target, platform, changed=True, offline=offline)
        try:
            _install(dev, python, venv, choice, probe, offline)
        except DeployError as exc:
            errors.append(f"{choice}: {exc}")
            if runtime is not None:
                raise
            log.info("%s", exc)
            continue
        return _finish(dev, device, url, store, target, platform, changed=True, offline=offline)
    raise DeployError(f"no TFLite runtime could be installed ({'; '.join(errors)})")


def _install(dev: _Device, python: str, venv: str, runtime: str, probe: dict[str, Any], offline: bool) -> None:
    """Build the venv at ``venv``.partial, install into it, then move it into place; on failure remove it."""
    partial = f"{venv}.partial"
    packages = requirements(runtime)
    dev.run(f"rm -rf {_quote(partial)}", 120, "removing an earlier unfinished environment")
    dev.step(f"creating a virtual environment with {python}", 1)
    try:
        dev.run(f"{_quote(python)} -m venv {_quote(partial)}", 600,
                "creating a virtual environment (Debian, Raspberry Pi OS: `sudo apt install python3-venv`)")
        pip = f"{_quote(partial + '/bin/python')} -m pip --disable-pip-version-check install --no-compile -q"
        if offline:
            dev.step(f"downloading {', '.join(packages)} here for python {probe['version']} on {probe['machine']}", 2)
            with tempfile.TemporaryDirectory(prefix="edgesdk-wheels-") as tmp:
                wheels = _download(packages, probe, Path(tmp))
                folder = f"{dev.t.cache_dir()}/wheels"
                dev.run(f"mkdir -p {_quote(folder)}", 60, "making the wheel folder")
                dev.step(f"pushing {len(wheels)} wheels to the device", 3)
                for wheel in wheels:
                    dev.t.put_as(wheel, f"wheels/{wheel.name}")
            command = f"{pip} --no-index --find-links {_quote(folder)} " + " ".join(_quote(p) for p in packages)
        else:
            command = f"{pip} " + " ".join(_quote(p) for p in packages)
        source = "from the pushed wheels" if offline else "online"
        dev.step(f"installing {', '.join(packages)} on the device ({source})", 3)
        dev.run(command, INSTALL_TIMEOUT_S, f"installing {runtime}")
        dev.step("checking that the agent runs there", 4)
        if not dev.has_runtime(f"{partial}/bin/python", runtime):
            raise DeployError(f"{runtime} installed but does not import on the device")
        dev.run(f"rm -rf {_quote(venv)} && mv {_quote(partial)} {_quote(venv)}", 120, "moving the environment in place")
    except (DeployError, EdgeSdkError):
        dev.t.shell(f"rm -rf {_quote(partial)}", 120)
        raise


def _finish(dev: _Device, device: str, url: str, store: Store | None, python: str, platform: dict[str, Any],
            *, changed: bool, offline: bool) -> SetupResult:
    new_url = _with_python(url, python)
    dev.t.python = python  # type: ignore[attr-defined]  # the agent, run as every later command will run it
    info = dev.t.driver().info(None, 300)
    found = info.get("runtime")
    if not found:
        raise DeployError(f"the agent finds no runtime with {python}: {info.get('runtime_error')}")
    if store is not None and not is_url(device) and new_url != url:
        store.add_device(device, new_url, replace=True)
    dev.step(f"ready: {found['name']} {found['version']} with {python}", 5)
    return SetupResult(device, new_url, python, found, platform, changed or new_url != url, offline, dev.steps)
