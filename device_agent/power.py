"""Power sources the agent finds on its own, and energy per inference from them.

Each source reads the board's power in watts. Sources, in order of preference: an external meter
(a user command that prints watts), the Raspberry Pi 5 PMIC (``vcgencmd pmic_read_adc``), Jetson
INA3221 rails (iio ``in_power*_input``), Linux hwmon power or current x voltage sensors, RAPL energy
counters (powercap), and an Android battery's ``current_now`` x ``voltage_now``. ``EDGESDK_SYSFS_ROOT``
relocates /sys (tests write a tree there). Stdlib only.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any


def _root() -> str:
    return os.environ.get("EDGESDK_SYSFS_ROOT", "/")


def _sys(pattern: str) -> list[str]:
    return sorted(glob.glob(os.path.join(_root(), pattern.lstrip("/"))))


def _read_int(path: str) -> int:
    with open(path, encoding="ascii") as fh:
        return int(fh.read().strip())


MAX_WATTS = 100_000.0   # no device this agent runs on draws more; a larger reading is a meter's garbage


def valid_watts(value: float) -> float:
    """A reading, checked: finite and between 0 and ``MAX_WATTS`` (a meter printing ``inf`` or ``1e308``
    would give infinite energy, and JSON has no infinity).

    Raises:
        ValueError: outside that range.
    """
    if not 0 <= value <= MAX_WATTS:  # NaN fails too
        raise ValueError(f"power reading {value!r} W is not a finite number between 0 and {MAX_WATTS:g} W")
    return value


class Source:
    name = "source"

    def read_w(self) -> float:
        raise NotImplementedError


class CommandSource(Source):
    """An external meter: a command that prints the current power in watts (the last number wins)."""

    name = "command"

    def __init__(self, command: str) -> None:
        self.argv = shlex.split(command)

    def read_w(self) -> float:
        out = subprocess.run(self.argv, capture_output=True, text=True, timeout=5, check=True).stdout
        return parse_watts(out)


def parse_watts(text: str) -> float:
    numbers = re.findall(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", text)
    if not numbers:
        raise ValueError(f"no number in power command output: {text.strip()[:80]!r}")
    return float(numbers[-1])


_PMIC_LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=([0-9.]+)[AV]\s*$")


def parse_pmic(text: str) -> float:
    """Total power from ``vcgencmd pmic_read_adc``: current x voltage of every rail that has both."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        match = _PMIC_LINE.match(line)
        if match:
            rail, kind, value = match.group(1), match.group(2), float(match.group(3))
            (amps if kind == "A" else volts)[rail] = value
    rails = set(amps) & set(volts)
    if not rails:
        raise ValueError("no rail with both current and voltage in pmic_read_adc output")
    return sum(amps[r] * volts[r] for r in rails)


class PmicSource(Source):
    name = "rpi5-pmic"

    def __init__(self, vcgencmd: str) -> None:
        self.vcgencmd = vcgencmd

    def read_w(self) -> float:
        out = subprocess.run([self.vcgencmd, "pmic_read_adc"], capture_output=True, text=True, timeout=5,
                             check=True).stdout
        return parse_pmic(out)


class SumSource(Source):
    """Sum of sysfs readings, each (path, scale to watts) or ((current, scale), (voltage, scale))."""

    def __init__(self, name: str, power_files: list[tuple[str, float]],
                 iv_pairs: list[tuple[tuple[str, float], tuple[str, float]]]) -> None:
        self.name = name
        self.power_files = power_files
        self.iv_pairs = iv_pairs

    def read_w(self) -> float:
        total = sum(_read_int(p) * scale for p, scale in self.power_files)
        for (ipath, iscale), (vpath, vscale) in self.iv_pairs:
            total += abs(_read_int(ipath) * iscale) * (_read_int(vpath) * vscale)
        return total


class RaplSource(Source):
    """RAPL package energy counters (microjoules); power is the energy delta over time."""

    name = "rapl"

    def __init__(self, counters: list[str]) -> None:
        self.counters = counters
        self.ranges = []
        for counter in counters:
            range_file = os.path.join(os.path.dirname(counter), "max_energy_range_uj")
            self.ranges.append(_read_int(range_file) if os.path.exists(range_file) else 2**63)
        self._last = self._sample()

    def _sample(self) -> tuple[float, list[int]]:
        return time.monotonic(), [_read_int(c) for c in self.counters]

    def read_w(self) -> float:
        then, before = self._last
        now, after = self._sample()
        self._last = (now, after)
        if now <= then:
            return 0.0
        joules = sum(((a - b) % r) for a, b, r in zip(after, before, self.ranges)) / 1e6  # wraps at the range
        return joules / (now - then)


def _hwmon() -> Source | None:
    power = [(p, 1e-6) for p in _sys("/sys/class/hwmon/hwmon*/power*_input")]  # microwatts
    pairs = []
    for curr in _sys("/sys/class/hwmon/hwmon*/curr*_input"):  # milliamps
        index = re.search(r"curr(\d+)_input$", curr)
        volt = os.path.join(os.path.dirname(curr), f"in{index.group(1)}_input") if index else ""
        if os.path.exists(volt):  # millivolts
            pairs.append(((curr, 1e-3), (volt, 1e-3)))
    if power or pairs:
        return SumSource("hwmon", power, pairs)
    return None


def _jetson_iio() -> Source | None:
    files = _sys("/sys/bus/i2c/drivers/ina3221x/*/iio:device*/in_power*_input")  # milliwatts
    return SumSource("ina3221", [(f, 1e-3) for f in files], []) if files else None


def _rapl() -> Source | None:
    counters = [c for c in _sys("/sys/class/powercap/intel-rapl:*/energy_uj") if re.search(r"rapl:\d+/", c)]
    try:
        return RaplSource(counters) if counters else None
    except OSError:  # energy_uj is root-only on recent kernels
        return None


def _battery() -> Source | None:
    for supply in _sys("/sys/class/power_supply/*"):
        current, voltage = os.path.join(supply, "current_now"), os.path.join(supply, "voltage_now")
        kind = os.path.join(supply, "type")
        is_battery = False
        if os.path.exists(kind):
            with open(kind, encoding="ascii") as fh:
                is_battery = fh.read().strip() == "Battery"
        if is_battery and os.path.exists(current) and os.path.exists(voltage):
            return SumSource("battery", [], [((current, 1e-6), (voltage, 1e-6))])  # microamps, microvolts
    return None


def discover(command: str | None = None) -> tuple[Source | None, str]:
    """The first power source that reads, and a note on what was found or why none was. A meter command
    the user named is the only source tried: if it fails, no other source stands in for it silently."""
    finders: list[tuple[str, Callable[[], Source | None]]] = []
    if command:
        try:
            meter = CommandSource(command)
            valid_watts(meter.read_w())
            return meter, meter.name
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            return None, f"the power command {command!r} gave no valid reading: {exc}"
    vcgencmd = shutil.which("vcgencmd")
    if vcgencmd:
        finders.append(("rpi5-pmic", lambda: PmicSource(vcgencmd)))
    finders += [("ina3221", _jetson_iio), ("hwmon", _hwmon), ("rapl", _rapl), ("battery", _battery)]
    failures = []
    for name, find in finders:
        try:
            source = find()
            if source is None:
                continue
            valid_watts(source.read_w())
            return source, f"{source.name}"
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            failures.append(f"{name}: {exc}")
    reason = "no power source found (looked for an external meter command, vcgencmd pmic_read_adc, INA3221, " \
             "hwmon power/current sensors, RAPL and a battery)"
    return None, reason + ("; " + "; ".join(failures) if failures else "")


class Sampler:
    """Reads a source every ``interval_s`` on a thread while the block runs."""

    def __init__(self, source: Source, interval_s: float = 0.02) -> None:
        self.source = source
        self.interval_s = interval_s
        self.samples: list[tuple[float, float]] = []
        self.read_errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), valid_watts(self.source.read_w())))
            except (OSError, ValueError, subprocess.SubprocessError):
                self.read_errors += 1  # a sensor busy or a meter hiccup: skip this sample, keep going
            self._stop.wait(self.interval_s)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mean_w(self) -> float:
        """Time-weighted mean power (trapezoids), or the single sample."""
        if len(self.samples) < 2:
            return self.samples[0][1] if self.samples else 0.0
        area = sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(self.samples, self.samples[1:]))
        return area / (self.samples[-1][0] - self.samples[0][0])


def measure(source: Source, run_once: Callable[[], None], idle_s: float = 0.5, active_s: float = 1.0,
            interval_s: float = 0.02) -> dict[str, Any]:
    """Idle power, then power while running inferences for ``active_s``; energy per inference above idle."""
    if isinstance(source, RaplSource):
        source.read_w()  # start the delta fresh
    with Sampler(source, interval_s) as idle:
        time.sleep(idle_s)
    runs = 0
    with Sampler(source, interval_s) as active:
        start = time.monotonic()
        while time.monotonic() - start < active_s or runs < 1:
            run_once()
            runs += 1
        elapsed = time.monotonic() - start
    if not idle.samples or not active.samples:
        return {"source": None, "reason": f"the {source.name} power source gave no valid reading while measuring "
                f"({idle.read_errors + active.read_errors} failed reads)"}
    idle_w, active_w = idle.mean_w(), active.mean_w()
    return {
        "source": source.name, "estimated": False, "idle_w": idle_w, "active_w": active_w,
        "energy_per_inference_mj": max(0.0, active_w - idle_w) * elapsed / runs * 1e3,
        "runs": runs, "samples": len(idle.samples) + len(active.samples),
        "read_errors": idle.read_errors + active.read_errors, "reason": None,
    }
