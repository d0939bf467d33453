"""`bench`: measure a .tflite on a device through the agent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from device_agent.protocol import MAX_RUNS, MAX_SECONDS, OFFLOADED, BenchSettings

from ..deploy import examples
from ..search.cells import duration
from .app import app
from .common import AcceleratorOpt, JsonOpt, StoreOpt, err, human_bytes, out, print_json, tag, warn

DEFAULT_BENCH = BenchSettings()


@app.command()
def bench(
    model: Annotated[Path, typer.Argument(metavar="MODEL", help="a .tflite model")],
    device: Annotated[str, typer.Option("--device", help=f"where to measure: {examples(wrappable=True)} "
                                        "(a board running the edgesdk firmware harness) or a named device")] = "local",
    runs: Annotated[int, typer.Option(help="minimum timed runs", min=1, max=MAX_RUNS)] = DEFAULT_BENCH.runs,
    warmup: Annotated[int, typer.Option(help="untimed runs first", min=0, max=MAX_RUNS)] = DEFAULT_BENCH.warmup,
    min_time: Annotated[float, typer.Option("--min-time", help="minimum seconds of timed runs",
                                            min=0, max=MAX_SECONDS)] = DEFAULT_BENCH.min_time_s,
    threads: Annotated[Optional[int], typer.Option(help="interpreter threads (default: the runtime's)",
                                                   min=1)] = None,
    windows: Annotated[int, typer.Option(help="split the timed runs into this many windows; when their medians "
                                         "differ by over 10% (the device changed speed), report the quietest",
                                         min=1)] = DEFAULT_BENCH.windows,
    timeout: Annotated[float, typer.Option(help="seconds before the agent is stopped", min=1)] = 600.0,
    fresh: Annotated[bool, typer.Option("--fresh", help="measure again even if the store has this result")] = False,
    trust_new_host: Annotated[bool, typer.Option("--trust-new-host", help="accept and record an unknown SSH host "
                                                 "key (a changed key is always refused)")] = False,
    power_cmd: Annotated[Optional[str], typer.Option("--power-cmd", help="external power meter: a command run on "
                                                     "the device that prints watts")] = None,
    no_power: Annotated[bool, typer.Option("--no-power", help="skip the energy measurement")] = False,
    accelerator: AcceleratorOpt = None,
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help=".npz of samples to run instead of generated "
                                                 "inputs (x, or arrays named after the inputs): the first is timed, "
                                                 "up to 16 check an accelerator against the CPU")] = None,
    profile: Annotated[Optional[str], typer.Option("--profile", "-p", help="the target's profile: its accelerator "
                                                   "is the default, and its operator set predicts which operators "
                                                   "fall back to the CPU (checked against what the device "
                                                   "reports)")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Measure a .tflite model on a device through the device agent (a separate process).

    A repeated bench of the same model, device, runtime and settings is answered from the store.

    Over SSH the agent (one file) and the model are uploaded once into ~/.cache/edgesdk-device on the
    device, checked against known_hosts, and measurements on one device never overlap. Over ADB they go
    to /data/local/tmp/edgesdk; a phone without python is measured with a TFLite benchmark_model binary
    you supply (?benchmark_model=PATH on this machine), read into the same schema.

    Before the model is uploaded, the device's runtime is asked whether it has a kernel for every
    operator version in it; a runtime too old for the model is refused then.

    With --accelerator gpu (or a GPU profile) the model runs on the device's GPU through LiteRT's
    CompiledModel: the output says whether it was fully accelerated, which operators fell back to the
    CPU, the GPU adapter (a software one is flagged: its timings are not GPU speed) and how far the
    GPU's fp16 outputs are from the CPU's (SQNR). A device without that accelerator is an error.

    Examples:

    \b
      edgesdk bench model_int8.tflite --runs 100 --threads 1
      edgesdk bench model_fp16.tflite -p mobile-gpu --device adb://R58M123ABC
      edgesdk bench model.tflite --device ssh://pi@raspberrypi.local?python=/home/pi/venv/bin/python
      edgesdk bench model.tflite --device "adb://R58M123ABC?benchmark_model=./android_aarch64_benchmark_model"
    """
    from ..measure import bench as run_bench
    from ..profiles import load_profile
    from ..store import Store

    prof = load_profile(profile) if profile else None
    try:
        settings = BenchSettings(runs=runs, warmup=warmup, min_time_s=min_time, threads=threads, windows=windows,
                                 power=not no_power, power_cmd=power_cmd,
                                 accelerator=accelerator or (prof.accelerator if prof else None))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    with err.status(f"measuring on {device}…"):
        m = run_bench(model, device, settings, store=Store(store), fresh=fresh, timeout_s=timeout,
                      trust_new_host=trust_new_host, data=data)
    doc = m.document
    check = _prediction(model, prof, doc.get("accelerator"))
    if as_json:
        print_json({**m.to_dict(), **({"prediction": check} if check else {})})
        return
    warn(doc["warnings"] + ([check["disagreement"]] if check and check.get("disagreement") else []))
    _print_bench(model, m, check, prof.name if prof else "")


def _print_bench(model: Path, m: Any, check: dict | None, profile: str) -> None:
    """The measurement as a table: latency, memory, runtime, accelerator, device, power."""
    doc = m.document
    lat, mem, dev = doc["latency"], doc["memory"], doc["device"]
    origin = Text.assemble(("from the store", "cyan"), " (use --fresh to measure again)") if m.cached \
        else "measured now"
    out.print(tag(str(model), "bold"), f"on {m.device}:", origin)
    table = Table(show_header=False, box=None)
    table.add_row("latency", f"p50 {duration(lat['p50_ms'])} · mean {duration(lat['mean_ms'])} · "
                  f"p90 {duration(lat['p90_ms'])} · p99 {duration(lat['p99_ms'])} · min {duration(lat['min_ms'])} · "
                  f"std {duration(lat['std_ms'])} ({lat['runs']} runs, {lat['warmup_runs']} warm-up)")
    table.add_row("first inference", f"{duration(lat['first_inference_ms'])} (init {duration(lat['init_ms'])})")
    table.add_row("memory", f"peak RSS {human_bytes(mem['peak_rss_bytes'])} "
                  f"(+{human_bytes(mem['peak_rss_increase_bytes'])} to load and run it); "
                  f"model {human_bytes(mem['model_bytes'])}")
    table.add_row("runtime", f"{doc['runtime']['name']} {doc['runtime']['version']}, threads {doc['threads']}")
    if doc.get("accelerator"):
        table.add_row("accelerator", accelerator_text(doc["accelerator"]))
        if check:
            table.add_row("predicted", "fully accelerated" if not check["fallback_ops"] else
                          f"{', '.join(check['fallback_ops'])} on the CPU ({profile})")
    table.add_row("device", f"{dev['hostname']} · {dev['cpu_model']} · {dev['cores']} cores · "
                  + (f"GPU {dev['gpu']} · " if dev.get("gpu") else "") + f"fingerprint {dev['fingerprint']}")
    power = doc["power"]
    if power.get("source") is None:
        table.add_row("power", f"not measured: {power.get('reason')}")
    else:
        flag = " (estimated)" if power.get("estimated") else ""
        table.add_row("energy", f"{power['energy_per_inference_mj']:.4f} mJ per inference{flag} · active "
                      f"{power['active_w']:.3f} W, idle {power['idle_w']:.3f} W ({power['source']}, "
                      f"{power['samples']} samples)")
    out.print(table)


def accelerator_text(acc: dict) -> str:
    """One line: what ran the model, whether all of it, on which adapter, how close to the CPU."""
    used = str(acc.get("used") or "cpu")
    if used == "cpu":
        return "cpu" + (f" ({acc['note']})" if acc.get("note") else "")
    text = used.upper()
    adapter = acc.get("adapter")
    if adapter:
        text += f" · {adapter['name']} ({adapter['backend']}, {'SOFTWARE' if adapter['software'] else 'hardware'})"
    if acc.get("fully_accelerated"):
        text += " · fully accelerated"
    elif acc.get("fully_accelerated") is False:
        text += f" · NOT fully accelerated: {', '.join(acc.get('fallback_ops') or []) or '?'} on the CPU"
    fid = acc.get("fidelity")
    if fid:
        text += " · outputs identical to the CPU's" if fid.get("identical") else \
            f" · SQNR {fid['sqnr_db']:.1f} dB against the CPU (max |diff| {fid['max_abs_diff']:.3g})"
        text += f" on {fid.get('inputs')} {fid.get('on', 'generated inputs')}"
    return text


def _prediction(model: Path, prof: Any, acc: dict | None) -> dict | None:
    """The profile's prediction of CPU fallbacks, and whether the accelerator agreed (GPU profiles)."""
    if prof is None or prof.accelerator not in OFFLOADED or not acc or acc.get("used") == "cpu":
        return None
    from ..targets import gpu
    from ..tflite.facts import analyze

    report = analyze(model)
    return {"profile": prof.name, "fallback_ops": gpu.predicted_ops(report, prof),
            "disagreement": gpu.disagreement(report, prof, acc)}
