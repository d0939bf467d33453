"""Microcontrollers and NPUs: the TFLite Micro arena, flash and cycle model, `export c` compiled with g++,
the serial transport against the firmware harness on a pseudo-terminal, Vela and the Edge TPU rules."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import edgesdk
from edgesdk.errors import DeployError, ModelError, RecipeError
from edgesdk.export_c import export_c
from edgesdk.profiles import PROFILE_DIR, load_profile
from edgesdk.targets import assess, mcu, tflm
from edgesdk.tflite import facts as tflite_facts

ROOT = Path(__file__).resolve().parents[2]
STUB = ROOT / "tests" / "tflm_stub"
COMMON = ROOT / "firmware_examples" / "common"
PUBLISHED_M4_MS = {"kws": 181.917, "ic": 704.225, "ad": 10.052, "vww": 600.601}  # results/tiny_v0.5_reference.csv
INT8 = {"kws": "kws/kws_ref_model.tflite", "ic": "ic/pretrainedResnet_quant.tflite", "ad": "ad/ad01_int8.tflite",
        "vww": "vww/vww_96_int8.tflite"}
needs_gpp = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


def _allocates(data: bytes, size: int) -> bool:
    code = ("import sys; from tflite_micro.python.tflite_micro import runtime\n"
            "try:\n runtime.Interpreter.from_bytes(open(sys.argv[1], 'rb').read(), arena_size=int(sys.argv[2]))\n"
            "except RuntimeError:\n sys.exit(3)")
    return subprocess.run([sys.executable, "-c", code, data, str(size)], capture_output=True).returncode == 0


@pytest.mark.mlperf
@pytest.mark.parametrize("name", ["kws", "ic"])
def test_arena_is_the_smallest_that_allocates(mlperf_dir, name):
    path = mlperf_dir / INT8[name]
    size, why = tflm.arena(path.read_bytes())
    assert why is None and size is not None and size % 16 == 0
    assert _allocates(path, size)
    assert not _allocates(path, size - 16)
    facts = assess(path.read_bytes(), tflite_facts.analyze(path), load_profile("cortex-m4"))
    assert facts.ram_bytes == size
    assert facts.flash_bytes > path.stat().st_size  # model + runtime + kernels


@pytest.mark.mlperf
def test_a_model_tflite_micro_cannot_run_is_refused_with_the_reason(mlperf_dir):
    path = mlperf_dir / "kws" / "kws_ref_model_float32.tflite"  # hybrid (dynamic-range) convolutions
    size, why = tflm.arena(path.read_bytes())
    assert size is None and "Hybrid models are not supported" in why
    fit = edgesdk.inspect_model(path, "cortex-m4").to_dict()["fit"]
    assert not fit["ok"] and any("TFLite Micro cannot run" in p for p in fit["problems"])


@pytest.mark.mlperf
def test_cycle_model_reproduces_published_cortex_m4_results(mlperf_dir):
    profile = load_profile("cortex-m4")
    for name, published in PUBLISHED_M4_MS.items():
        est = mcu.estimate(tflite_facts.analyze(mlperf_dir / INT8[name]), profile)
        assert abs(est.latency_ms / published - 1) <= 0.25, (name, est.latency_ms, published)
        assert est.energy_mj == pytest.approx(est.latency_ms * profile.mcu.active_w, rel=1e-9)
    refit = mcu.fit_cycle_model([(tflite_facts.analyze(mlperf_dir / INT8[n]), ms * 1e-3 * 120e6)
                                 for n, ms in PUBLISHED_M4_MS.items()],
                                profile.mcu.cycles_per_op, profile.mcu.cycles_per_element)
    for kind, value in profile.mcu.cycles_per_mac.items():  # the shipped numbers are this fit, rounded
        assert refit[kind] == pytest.approx(value, rel=0.01)


def test_compress_for_an_mcu_checks_the_real_arena(keras3_path, tmp_path):
    result = edgesdk.compress(keras3_path, "cortex-m4", "int8", tmp_path / "m.tflite")
    target = result.target
    assert target["target"] == "tflite-micro" and target["ram_bytes"] > 0 and target["estimated"]
    assert result.fit["ram_needed_bytes"] == target["ram_bytes"] and result.fit["ram_basis"] == "tflm arena"
    assert target["latency_ms"] > 0 and "cycle model" in target["basis"]
    raw = yaml.safe_load((PROFILE_DIR / "cortex-m4.yaml").read_text())
    raw["name"], raw["memory"]["ram_bytes"] = "tiny-m4", target["ram_bytes"] - 16  # one alignment step short
    small = tmp_path / "tiny-m4.yaml"
    small.write_text(yaml.safe_dump(raw))
    with pytest.raises(RecipeError, match="TFLite Micro tensor arena needs"):
        edgesdk.compress(keras3_path, str(small), "int8", tmp_path / "n.tflite")
    assert not (tmp_path / "n.tflite").exists()


def test_tune_for_an_mcu_uses_the_arena_and_the_cycle_model(keras3_path, data_files, tmp_path):
    from edgesdk.search.space import build

    profile = load_profile("cortex-m4")
    space = build(profile, precision=["int8", "fp32"], prune=["none"], cluster=["none"], structure=["none"],
                  post=["none"])
    result = edgesdk.tune(keras3_path, profile, tmp_path / "t", data=data_files[1], space=space, budget=2,
                          epochs=0)
    rows = [r for r in result.trials if r.get("status") == "estimated"]  # no device: nothing measured
    assert {r["precision"] for r in rows} == {"int8", "fp32"}
    for r in rows:
        assert r["estimated"] and r["memory_bytes"] == r["target"]["ram_bytes"] and r["flash_bytes"] > r["model_bytes"]
    by = {r["precision"]: r for r in rows}
    assert by["fp32"]["latency_ms"] > by["int8"]["latency_ms"]  # the M4F runs fp32 at half the int8 rate
    assert any("cycle model" in n for n in result.notes)


@needs_gpp
def test_export_c_compiles_with_the_harnesses(tflite_path, tmp_path):
    out = tmp_path / "src"
    export = export_c(tflite_path, out)
    header = (out / "model_data.h").read_text()
    assert f"kTensorArenaSize = {export.arena_bytes};" in header and export.arena_bytes >= export.host_arena_bytes
    assert hashlib.sha256(tflite_path.read_bytes()).hexdigest() in header
    source = (out / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_model[]" in source
    assert f"g_model_len = {tflite_path.stat().st_size};" in source
    ops = (out / "model_ops.h").read_text()
    assert "MicroMutableOpResolver<kModelOpCount>" in ops and f"kModelOpCount = {len(export.operators)};" in ops
    assert ops.count("resolver.Add") == len(export.operators)
    flags = ["g++", "-std=c++17", "-Wall", "-Werror", "-fsyntax-only", f"-I{STUB}", f"-I{COMMON}", f"-I{out}"]
    for source in (out / "model_data.cc", ROOT / "tests" / "firmware" / "host_board.cc"):
        subprocess.run([*flags, str(source)], check=True)
    sketch = ROOT / "firmware_examples" / "arduino" / "edgesdk_bench" / "edgesdk_bench.ino"
    subprocess.run([*flags, f"-I{ROOT / 'tests' / 'firmware_stub'}", "-x", "c++", str(sketch)], check=True)


def test_every_tflite_micro_builtin_has_a_resolver_method(tmp_path):
    from edgesdk.export_c import resolver_method

    methods = {resolver_method(op) for op in load_profile("cortex-m4").operators}
    stub = (STUB / "tensorflow" / "lite" / "micro" / "micro_mutable_op_resolver.h").read_text()
    assert not [m for m in methods if f" {m}()" not in stub]
    assert resolver_method("CONV_2D") == "AddConv2D" and resolver_method("BATCH_TO_SPACE_ND") == "AddBatchToSpaceNd"
    with pytest.raises(ModelError, match="no TFLite Micro registration"):
        resolver_method("CUSTOM:MyOp")


@pytest.fixture
def board(tflite_path, tmp_path):
    """The firmware harness built for the host (stand-in interpreter), on a pseudo-terminal."""
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    out = tmp_path / "src"
    export_c(tflite_path, out)
    exe = tmp_path / "board"
    subprocess.run(["g++", "-std=c++17", "-O1", f"-I{STUB}", f"-I{COMMON}", f"-I{out}", "-o", str(exe),
                    str(ROOT / "tests" / "firmware" / "host_board.cc"), str(COMMON / "edgesdk_report.cc"),
                    str(out / "model_data.cc")], check=True)
    procs = []

    def start(mode: str = "normal") -> str:
        master, slave = os.openpty()
        procs.append((subprocess.Popen([str(exe), mode], stdin=master, stdout=master), master, slave))
        return f"serial://{os.ttyname(slave)}?baud=115200&timeout=5"

    yield start
    for proc, master, slave in procs:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)


def test_serial_bench_reads_the_firmware_line_into_a_measurement(board, tflite_path):
    url = board()
    from edgesdk import devices

    check = devices.check(url)
    assert check.ok and check.runtime["name"] == "tflite-micro" and check.fingerprint == "host-board-0001"
    m = edgesdk.bench(tflite_path, url, edgesdk.BenchSettings(runs=30, warmup=3))
    doc = m.document
    assert doc["latency"]["runs"] == 30 and doc["latency"]["warmup_runs"] == 3
    lat = doc["latency"]
    assert 0 < lat["min_ms"] <= lat["p50_ms"] <= lat["p99_ms"] <= lat["max_ms"]
    assert doc["memory"]["arena_used_bytes"] == tflm.arena(tflite_path.read_bytes())[0]
    assert doc["output_checksum"].startswith("fnv1a32:") and doc["power"]["source"] is None
    assert doc["model_sha256"] == hashlib.sha256(tflite_path.read_bytes()).hexdigest()


def test_serial_garbled_line_is_asked_again(board, tflite_path):
    m = edgesdk.bench(tflite_path, board("garble"), edgesdk.BenchSettings(runs=5, warmup=0))
    assert m.document["latency"]["runs"] == 5
    assert any("garbled" in w for w in m.document["warnings"])


def test_serial_board_that_stops_answering_is_an_error(board, tflite_path):
    with pytest.raises(DeployError, match="no answer to 'bench' within 5 s"):
        edgesdk.bench(tflite_path, board("silent"), edgesdk.BenchSettings(runs=5, warmup=0))


def test_serial_refuses_a_model_the_board_does_not_run(board, keras3_path, tmp_path):
    other = tmp_path / "other.tflite"
    edgesdk.compress(keras3_path, "host", "fp32", other)
    with pytest.raises(DeployError, match="flash firmware built from"):
        edgesdk.bench(other, board(), edgesdk.BenchSettings(runs=5, warmup=0))


def test_serial_url_errors(tflite_path):
    from edgesdk.deploy.serial import parse_url

    assert parse_url("serial:///dev/ttyACM0")["baud"] == 115200
    assert parse_url("serial://COM3?baud=9600")["port"] == "COM3"
    with pytest.raises(DeployError, match="unknown option"):
        parse_url("serial:///dev/ttyACM0?speed=9600")
    with pytest.raises(DeployError, match="cannot open"):
        edgesdk.bench(tflite_path, "serial:///dev/does-not-exist")


def test_vela_on_an_int8_model(tflite_path):
    facts = assess(tflite_path.read_bytes(), tflite_facts.analyze(tflite_path), load_profile("ethos-u55"))
    assert facts.target == "vela" and facts.ram_bytes > 0 and facts.cycles > 0 and facts.latency_ms > 0
    assert float(facts.details["inferences_per_second"]) > 0 and facts.estimated
    # the float input and output conversions stay on the CPU; every layer between runs on the NPU
    assert facts.placements and all(p.unit == "npu" for p in facts.placements if p.op not in ("QUANTIZE", "DEQUANTIZE"))


def test_vela_cpu_fallback_is_shown_per_layer_and_costs_time(keras3_path, tmp_path):
    fp32 = tmp_path / "f.tflite"
    edgesdk.compress(keras3_path, "host", "fp32", fp32)
    int8 = tmp_path / "i.tflite"
    edgesdk.compress(keras3_path, "host", "int8", int8)
    profile = load_profile("ethos-u55")
    slow = assess(fp32.read_bytes(), tflite_facts.analyze(fp32), profile)
    fast = assess(int8.read_bytes(), tflite_facts.analyze(int8), profile)
    assert slow.fallback and all("Float32" in p.reason for p in slow.fallback)
    assert len(slow.fallback) == len([layer for layer in tflite_facts.analyze(fp32).layers])
    assert slow.latency_ms > 3 * fast.latency_ms
    assert any("fall back to the Cortex-M CPU" in w for w in slow.warnings)


@pytest.mark.mlperf
def test_edgetpu_maps_up_to_the_first_unsupported_layer(mlperf_dir, tmp_path):
    path = mlperf_dir / INT8["kws"]
    report = tflite_facts.analyze(path)
    assert all(p.unit == "npu" for p in assess(path.read_bytes(), report, load_profile("edgetpu")).placements)
    raw = yaml.safe_load((PROFILE_DIR / "edgetpu.yaml").read_text())
    raw["name"], raw["operators"] = "tpu-no-pool", [op for op in raw["operators"] if op != "AVERAGE_POOL_2D"]
    user = tmp_path / "tpu.yaml"
    user.write_text(yaml.safe_dump(raw))
    facts = assess(path.read_bytes(), report, load_profile(user))
    cut = next(layer.index for layer in report.layers if layer.op == "AVERAGE_POOL_2D")
    assert [p.unit for p in facts.placements] == ["npu"] * cut + ["cpu"] * (len(report.layers) - cut)
    assert "not an Edge TPU operator" in facts.placements[cut].reason
    assert "stops mapping" in facts.placements[-1].reason  # SOFTMAX is supported, but after the cut
