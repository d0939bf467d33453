"""Speak for the agent on a device without python: TFLite's `benchmark_model` binary, read into our schema.

Where a device has no python (most phones), the adb transport pushes a `benchmark_model` binary the user
supplies (from TensorFlow's nightly builds or their own Bazel build), runs it with the settings the agent
would use, and turns its log into a measurement document of schema ``edgesdk.measurement/1``. What the
binary does not report stays null and is named in the document's warnings: p90 and p99 (it prints only
p5, median and p95, and older builds only mean, min, max and std), the output checksum (it feeds its own
random inputs), and power (sampled only by the python agent).

The log lines read here are those of tensorflow/lite/tools/benchmark (benchmark_model.cc and
benchmark_tflite_model.cc)::

    INFO: Initialized session in 119.515ms.
    INFO: count=1000 first=52162 curr=49785 min=49088 max=686105 avg=63743.2 std=60716 p5=49620 median=51891 p95=68628
    INFO: Inference timings in us: Init: 119515, First inference: 87112, Warmup (avg): 58147.4, Inference (avg): 63743.2
    INFO: Memory footprint delta from the start of the tool (MB): init=55.4961 overall=55.4961
    INFO: Peak memory footprint (MB): init=2.1 overall=60.2
"""

from __future__ import annotations

import dataclasses
import re
import time
from typing import Any

from device_agent.protocol import BenchSettings, measurement
from device_agent.runtime import UNSUPPORTED_OP
from device_agent.sysinfo import cpu_model_from, fingerprint, ram_from

from ..errors import MeasurementError

RUNTIME_NAME = "benchmark_model"
_MB = 1024 * 1024
_STAT = re.compile(r"count=(\d+)((?:\s+\w+=[-\d.e+]+)+)")
_TIMINGS = re.compile(r"Inference timings in us: (.*)")
_DELTA = re.compile(r"Memory footprint delta from the start of the tool \(MB\): init=([\d.]+) overall=([\d.]+)")
_APPLIED = re.compile(r"Explicitly applied (\w+) delegate, and the model graph will be (completely|partially) "
                      r"executed by the delegate")
# The agent's accelerators as benchmark_model's flags (tensorflow/lite/tools/delegates): the GPU
# delegate, NNAPI (which hands the model to the phone's NPU or DSP driver), XNNPACK on the CPU.
ACCELERATOR_FLAGS = {"cpu": "--use_xnnpack=true", "gpu": "--use_gpu=true", "npu": "--use_nnapi=true",
                     "auto": "--use_gpu=true"}
_DELEGATE_NAME = {"gpu": "GPU", "npu": "NNAPI", "auto": "GPU"}
_PEAK = re.compile(r"Peak memory footprint \(MB\): init=([\d.]+) overall=([\d.]+)")

# One shell round trip that describes the device; each section starts with a line "@name".
DESCRIBE_SCRIPT = "; ".join([
    "echo @serial; getprop ro.serialno 2>/dev/null",
    "echo @hostname; hostname 2>/dev/null || cat /proc/sys/kernel/hostname",
    "echo @machine; uname -m",
    "echo @kernel; uname -r",
    "echo @android; getprop ro.build.version.release 2>/dev/null",
    "echo @model; getprop ro.product.model 2>/dev/null",
    "echo @manufacturer; getprop ro.product.manufacturer 2>/dev/null",
    "echo @soc; getprop ro.soc.model 2>/dev/null || getprop ro.board.platform 2>/dev/null",
    "echo @osrelease; cat /etc/os-release 2>/dev/null",
    "echo @cpuinfo; cat /proc/cpuinfo",
    "echo @meminfo; cat /proc/meminfo",
    "echo @governor; cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor 2>/dev/null",
    "echo @freq; cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq 2>/dev/null",
    "echo @temps; cat /sys/class/thermal/thermal_zone*/temp 2>/dev/null",
    "echo @end",
])


def _sections(text: str) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("@") and line[1:].isidentifier():
            current = line[1:]
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {key: "\n".join(lines).strip() for key, lines in out.items()}


def describe(text: str, serial: str) -> dict[str, Any]:
    """The device description (fields as the agent's ``sysinfo.describe``) from DESCRIBE_SCRIPT's output."""
    s = _sections(text)
    cpuinfo = s.get("cpuinfo", "")
    cores = sum(1 for line in cpuinfo.splitlines() if line.split(":")[0].strip() == "processor") or 1
    if s.get("android"):
        maker = " ".join(x for x in (s.get("manufacturer"), s.get("model")) if x)
        os_name = f"Android {s['android']}" + (f" on {maker}" if maker else "")
    else:
        pretty = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', s.get("osrelease", ""), re.M)
        os_name = pretty.group(1) if pretty else "Linux"
    temps = [int(t) / 1000.0 for t in s.get("temps", "").split() if t.lstrip("-").isdigit()]
    freq = s.get("freq", "")
    info: dict[str, Any] = {
        # Phones all call themselves "localhost": the serial number tells two of them apart.
        "hostname": s.get("serial") or s.get("hostname") or serial,
        "machine": s.get("machine") or "unknown",
        "cpu_model": cpu_model_from(cpuinfo) or s.get("soc") or s.get("machine") or "unknown",
        "cores": cores,
        "ram_bytes": ram_from(s.get("meminfo", "")),
        "os": f"{os_name} (kernel {s.get('kernel', '?')})",
        "python": None,
        "governor": s.get("governor") or None,
        "cpu_freq_khz": int(freq) if freq.isdigit() else None,
        "temperature_c": max(temps) if temps else None,
    }
    info["fingerprint"] = fingerprint(info)
    return info


def command(binary: str, model: str, settings: BenchSettings) -> list[str]:
    """benchmark_model's arguments for the agent's settings (its flags as in the TFLite docs)."""
    args = [binary, f"--graph={model}", f"--num_runs={settings.runs}", f"--warmup_runs={settings.warmup}",
            f"--min_secs={settings.min_time_s:g}", "--warmup_min_secs=0"]
    if settings.threads is not None:
        args.append(f"--num_threads={settings.threads}")
    if settings.accelerator is not None and not settings.delegate:
        args.append(ACCELERATOR_FLAGS[settings.accelerator])
    if settings.delegate == "none":
        args.append("--use_xnnpack=false")
    elif settings.delegate:
        args.append(f"--external_delegate_path={settings.delegate}")
    return args


def unsupported(log: str) -> str | None:
    """The operator (and version) the binary's runtime lacks, when its log says so."""
    found = UNSUPPORTED_OP.search(log)
    if not found:
        return None
    return found.group(1) + (f" version {found.group(2)}" if found.group(2) else " (custom op)")


def accelerator(log: str, settings: BenchSettings) -> dict[str, Any]:
    """What ran the model, from benchmark_model's log: the delegate it applied, and whether the whole
    graph went to it (the same document the python agent writes; no adapter, no fidelity check).

    Raises:
        MeasurementError: an accelerator was asked for and benchmark_model applied none (its error quoted).
    """
    from device_agent.accelerated import refused_operators

    wanted = settings.accelerator
    if wanted in (None, "cpu") or settings.delegate:
        return {"requested": wanted, "used": "cpu", "api": "benchmark_model", "fully_accelerated": None,
                "fallback_ops": [], "adapter": None, "fidelity": None}
    applied = [m for m in _APPLIED.finditer(log) if m.group(1).upper() == _DELEGATE_NAME[wanted]]
    if not applied:
        errors = [line.strip() for line in log.splitlines() if "ERROR" in line]
        raise MeasurementError(f"benchmark_model did not apply its {_DELEGATE_NAME[wanted]} delegate "
                               f"({ACCELERATOR_FLAGS[wanted]}): {errors[0] if errors else 'it said nothing why'}")
    refused = refused_operators(log)
    full = applied[-1].group(2) == "completely" and not refused
    return {"requested": wanted, "used": "npu" if wanted == "npu" else "gpu", "api": "benchmark_model",
            "fully_accelerated": full, "fallback_ops": sorted({r["op"] for r in refused}),
            "fallback_reasons": refused, "adapter": None, "fidelity": None}


def _fields(text: str) -> dict[str, float]:
    return {key: float(value) for key, value in re.findall(r"(\w+)=([-\d.e+]+)", text)}


def parse(log: str) -> dict[str, Any]:
    """The figures in a benchmark_model log: the timed-run statistics, init, first inference, memory.

    Raises:
        MeasurementError: the log has no statistics of timed runs (the binary failed; its last error
            line is quoted).
    """
    stats = [_fields(m.group(0)) for m in _STAT.finditer(log)]
    timings = _TIMINGS.search(log)
    if not stats or timings is None:
        errors = [line for line in log.splitlines() if "ERROR" in line or "rror" in line or "ailed" in line]
        tail = errors[-1] if errors else (log.strip().splitlines() or ["no output"])[-1]
        raise MeasurementError(f"benchmark_model reported no timings: {tail.strip()}")
    # The last statistics line is the timed runs (the one before it, the warm-up runs).
    run = stats[-1]
    parts = {k.strip(): float(v) for k, v in re.findall(r"([A-Za-z ()]+):\s*([-\d.e+]+)", timings.group(1))}
    out: dict[str, Any] = {"runs": int(run["count"]), "mean_us": run.get("avg"), "min_us": run.get("min"),
                           "max_us": run.get("max"), "std_us": run.get("std"), "median_us": run.get("median"),
                           "p5_us": run.get("p5"), "p95_us": run.get("p95"), "init_us": parts.get("Init"),
                           "first_us": parts.get("First inference")}
    delta, peak = _DELTA.search(log), _PEAK.search(log)
    out["rss_increase_bytes"] = int(float(delta.group(2)) * _MB) if delta else None
    out["peak_bytes"] = int(float(peak.group(2)) * _MB) if peak else None
    return out


def document(log: str, *, model_sha256: str, model_bytes: int, binary_sha256: str, device: dict[str, Any],
             settings: BenchSettings, started_at: float) -> dict[str, Any]:
    """A measurement document (schema ``edgesdk.measurement/1``) from a benchmark_model log."""
    figures = parse(log)
    ran = accelerator(log, settings)

    def ms(key: str) -> float | None:
        value = figures.get(key)
        return None if value is None else value / 1000.0

    mean = ms("mean_us") or 0.0
    std = ms("std_us") or 0.0
    warnings = ["measured by the TFLite benchmark_model binary (no python on the device): inputs are its own "
                "random data, so there is no output checksum, and it reports no p90 or p99; its figures cover every "
                "timed run (no windows: a change of the device's speed while measuring is not set apart)"]
    if ran["used"] != "cpu":
        warnings.append(f"benchmark_model ran it on the {ran['used'].upper()} and does not compare its outputs with "
                        "the CPU's: no fidelity figure")
        if ran["fully_accelerated"] is False:
            warnings.append(f"not fully accelerated: {', '.join(ran['fallback_ops']) or 'some operators'} ran on "
                            f"the CPU beside the {ran['used'].upper()}")
    if figures["median_us"] is None:
        warnings.append("this benchmark_model build prints no median: p50 is unknown (null); use a newer build")
    if figures["peak_bytes"] is None:
        warnings.append("this benchmark_model build reports no peak memory footprint")
    cv = std / mean if mean > 0 else 0.0
    if cv > settings.max_cv:
        warnings.append(f"high run-to-run variation: cv {cv:.2f} > {settings.max_cv} (benchmark_model mode does not "
                        "re-measure)")
    latency = {
        "mean_ms": mean, "p50_ms": ms("median_us"), "p90_ms": None, "p99_ms": None,
        "p5_ms": ms("p5_us"), "p95_ms": ms("p95_us"),
        "min_ms": ms("min_us") or 0.0, "max_ms": ms("max_us") or 0.0, "std_ms": std, "cv": cv,
        "runs": figures["runs"], "warmup_runs": settings.warmup,
        "first_inference_ms": ms("first_us") or 0.0, "init_ms": ms("init_us") or 0.0, "attempts": 1,
    }
    increase = figures["rss_increase_bytes"]
    return measurement(
        model_sha256=model_sha256, runtime={"name": RUNTIME_NAME, "version": f"sha256:{binary_sha256[:16]}"},
        delegate=settings.delegate or ("default" if ran["used"] == "cpu" else _DELEGATE_NAME[ran["requested"]].lower()),
        accelerator=ran, settings=settings, device=device, latency=latency,
        memory={"peak_rss_bytes": figures["peak_bytes"], "peak_rss_increase_bytes": increase,
                "model_bytes": model_bytes},
        power={"source": None, "reason": "not measured: benchmark_model mode has no python agent on the device to "
                                         "sample a power source"},
        output_checksum=None, warnings=warnings, started_at=started_at)


class BenchmarkModel:
    """The agent driver for a phone without python: the benchmark_model binary, pushed once, its log read
    into the protocol's documents. ``transport`` is an :class:`~edgesdk.deploy.adb.AdbTransport`."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self._binary: str | None = None
        self._device: dict[str, Any] | None = None

    @property
    def runtime(self) -> dict[str, str]:
        return {"name": RUNTIME_NAME, "version": f"sha256:{self.transport._binary_sha[:16]}"}

    def _prepare(self) -> tuple[str, dict[str, Any]]:
        t = self.transport
        if self._binary is None or t._binary is None:
            self._binary = t._binary = t._push(t.benchmark_binary, f"{t._binary_sha[:16]}-benchmark_model")
        if self._device is None:
            self._device = describe(t._exec(DESCRIBE_SCRIPT, 60).stdout, t.serial)
        return self._binary, self._device

    def info(self, check: str | None, timeout: float) -> dict[str, Any]:
        from device_agent.protocol import INFO_SCHEMA

        binary, device = self._prepare()
        doc: dict[str, Any] = {"schema": INFO_SCHEMA, "device": device, "runtime": self.runtime,
                               "power": {"source": None, "reason": "benchmark_model mode samples no power"}}
        if check:
            probe = self._timed(command(binary, check, BenchSettings(runs=1, warmup=0, min_time_s=0)), 60)
            missing = unsupported(probe.stdout + probe.stderr)
            doc["model_check"] = {"ok": missing is None, "message": None if missing is None else
                                  f"benchmark_model ({self.runtime['version']}) cannot run this model: it has no "
                                  f"kernel for {missing} (the model needs a newer runtime, or a recipe that avoids "
                                  "that operator version)"}
        return doc

    def bench(self, model: str, settings: BenchSettings, timeout: float) -> dict[str, Any]:
        import shlex

        t = self.transport
        binary, device = self._prepare()
        settings = dataclasses.replace(settings, power=False, power_cmd=None)  # the binary samples no power
        started = time.time()
        quoted = shlex.quote(model)
        hashed = t._exec(f"sha256sum {quoted} 2>/dev/null || toybox sha256sum {quoted}; wc -c < {quoted}", 60)
        fields = hashed.stdout.split()
        if len(fields) < 3 or not re.fullmatch(r"[0-9a-f]{64}", fields[0]):
            digest, size = t._sha.get(model, ("", 0))
            if not digest:
                raise MeasurementError(f"the device agent failed (not_found): {model} is not on the device")
        else:
            digest, size = fields[0], int(fields[-1])
        run = self._timed(command(binary, model, settings), timeout)
        text = run.stdout + "\n" + run.stderr
        missing = unsupported(text)
        if missing:
            raise MeasurementError(f"benchmark_model cannot run this model: it has no kernel for {missing}")
        try:
            return document(text, model_sha256=digest, model_bytes=size, binary_sha256=t._binary_sha,
                            device=device, settings=settings, started_at=started)
        except MeasurementError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as the agent would: one line
            raise MeasurementError(f"the device agent failed (failed): {exc}") from exc

    def _timed(self, argv: list[str], timeout: float) -> Any:
        import shlex

        from ..errors import DeployError
        from .transport import LOCK

        t = self.transport
        t._record(LOCK)
        lock = shlex.quote(f"{t.dir}/{LOCK}")
        inner = " ".join(shlex.quote(a) for a in ["timeout", str(max(1, int(timeout))), *argv])
        # flock (toybox/util-linux) serializes measurements on the device where it exists.
        run = t._exec(f"if command -v flock >/dev/null 2>&1; then flock {lock} {inner}; else {inner}; fi",
                      timeout + 15)
        if run.returncode == 124:
            raise DeployError(f"{t.url}: benchmark_model ran over the {timeout:g} s timeout and was stopped")
        if run.returncode == 126 or (run.returncode == 127 and "benchmark_model" in run.stderr):
            raise DeployError(f"{t.url}: the device cannot execute benchmark_model ({run.stderr.strip()}); "
                              "is it built for this device's CPU and OS?")
        return run
