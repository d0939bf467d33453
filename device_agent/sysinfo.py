"""Describe the device: identity fields for the fingerprint, plus volatile state (governor, temperature, battery)."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import socket
from typing import Any

from .protocol import FINGERPRINT_FIELDS


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


def cpu_model_from(cpuinfo: str) -> str | None:
    """The CPU model named in /proc/cpuinfo text."""
    # x86 says "model name"; many Arm boards only say "Hardware" or "Model" (Raspberry Pi).
    for key in ("model name", "Model", "Hardware", "Processor"):
        for line in cpuinfo.splitlines():
            if line.split(":")[0].strip() == key and ":" in line:
                return line.split(":", 1)[1].strip()
    return None


ARM = ("aarch64", "arm64", "armv8l", "armv7l", "armv6l")
X86 = ("x86_64", "amd64", "i386", "i686")


def emulation(machine: str, cpuinfo: str) -> str | None:
    """Why this looks like an emulated machine (None: native). Under qemu-user an aarch64 userland reads
    the host's /proc/cpuinfo: an x86 CPU ("vendor_id", "flags") below an ARM ``platform.machine()``."""
    keys = {line.split(":")[0].strip() for line in cpuinfo.splitlines() if ":" in line}
    if machine.lower() in ARM and {"vendor_id", "flags"} & keys:
        return f"{machine} code on an x86 host CPU (qemu-user emulation)"
    if machine.lower() in X86 and "CPU implementer" in keys:
        return f"{machine} code on an ARM host CPU (emulation)"
    return None


def ram_from(meminfo: str) -> int:
    """MemTotal in bytes from /proc/meminfo text (0 when absent)."""
    for line in meminfo.splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu_model() -> str:
    return cpu_model_from(_read("/proc/cpuinfo") or "") or platform.processor() or platform.machine()


def _ram_bytes() -> int:
    return ram_from(_read("/proc/meminfo") or "")


def _os_name() -> str:
    for line in (_read("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"') + f" (kernel {platform.release()})"
    return f"{platform.system()} {platform.release()}"


def _temperature_c() -> float | None:
    temps = []
    for zone in sorted(glob.glob(_sysfs("/sys/class/thermal/thermal_zone*/temp"))):
        raw = _read(zone)
        if raw and raw.lstrip("-").isdigit():
            temps.append(int(raw) / 1000.0)
    return max(temps) if temps else None


def _sysfs(path: str) -> str:
    return os.path.join(os.environ.get("EDGESDK_SYSFS_ROOT", "/"), path.lstrip("/"))


def _battery() -> tuple[float | None, str | None]:
    """(charge in percent, status) of the first battery that reports a capacity; (None, None) without one."""
    for supply in sorted(glob.glob(_sysfs("/sys/class/power_supply/*"))):
        capacity = _read(os.path.join(supply, "capacity"))
        if _read(os.path.join(supply, "type")) == "Battery" and capacity and capacity.isdigit():
            return float(capacity), _read(os.path.join(supply, "status"))
    return None, None


def fingerprint(info: dict[str, Any]) -> str:
    """A short stable hash of the fields that identify the hardware and OS."""
    ident = {key: info.get(key) for key in FINGERPRINT_FIELDS}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def describe() -> dict[str, Any]:
    """Return the device description, fingerprint included."""
    freq = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count() or 1,
        "ram_bytes": _ram_bytes(),
        "os": _os_name(),
        "python": platform.python_version(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "cpu_freq_khz": int(freq) if freq and freq.isdigit() else None,
        "temperature_c": _temperature_c(),
    }
    info["battery_percent"], info["battery_status"] = _battery()
    emulated = emulation(info["machine"], _read("/proc/cpuinfo") or "")
    info["emulated"] = emulated
    if emulated:  # the CPU named is the host's, not this machine's: say so in the name (and fingerprint)
        info["cpu_model"] = f"emulated {info['machine']} (qemu-user on {info['cpu_model']})"
    info["fingerprint"] = fingerprint(info)
    return info
