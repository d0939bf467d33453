"""Reading TFLite benchmark_model logs and device descriptions into the measurement schema.

The logs are in the formats tensorflow/lite/tools/benchmark prints: a current build (with p5, median and
p95 on its statistics lines) and an older one (mean, min, max, std only; no "INFO:" prefix).
"""

import pytest

from device_agent.protocol import BenchSettings, validate
from edgesdk.deploy import benchmark_model as bm
from edgesdk.errors import MeasurementError

CURRENT = """INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [4]
INFO: Graph: [/data/local/tmp/edgesdk/1f2e-model.tflite]
INFO: Loaded model /data/local/tmp/edgesdk/1f2e-model.tflite
INFO: The input model file size (MB): 24.6229
INFO: Initialized session in 119.515ms.
INFO: Running benchmark for at least 5 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=9 first=87112 curr=51629 min=51629 max=87112 avg=58147.4 std=11478 p5=51629 median=51962 p95=87112

INFO: Running benchmark for at least 1000 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=1000 first=52162 curr=49785 min=49088 max=686105 avg=63743.2 std=60716 p5=49620 median=51891 p95=68628

INFO: Inference timings in us: Init: 119515, First inference: 87112, Warmup (avg): 58147.4, Inference (avg): 63743.2
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the \
actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=55.4961 overall=55.4961
INFO: Peak memory footprint (MB): init=58.1 overall=60.25
"""

OLDER = """Initialized session in 0.896ms
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=215 first=12231 curr=2106 min=2065 max=12231 avg=2331.42 std=746

Running benchmark for at least 100 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=459 first=2143 curr=2101 min=2056 max=2656 avg=2177.1 std=124

Inference timings in us: Init: 896, First inference: 12231, Warmup (avg): 2331.42, Inference (avg): 2177.1
"""

FAILED = """INFO: STARTING!
INFO: Graph: [/data/local/tmp/edgesdk/ab-dense.tflite]
INFO: Loaded model /data/local/tmp/edgesdk/ab-dense.tflite
ERROR: Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'. An older version of this builtin \
might be supported. Are you using an old TFLite binary with a newer model?
ERROR: Registration failed.
ERROR: Failed to construct interpreter
ERROR: Benchmarking failed.
"""

ANDROID = """@serial
38121FDJH000AB
@hostname
localhost
@machine
aarch64
@kernel
5.15.110-android14-11
@android
14
@model
Pixel 8
@manufacturer
Google
@soc
Tensor G3
@osrelease
@cpuinfo
processor\t: 0
BogoMIPS\t: 49.15
processor\t: 1
processor\t: 2
@meminfo
MemTotal:        7840124 kB
@governor
sched_pixel
@freq
1704000
@temps
38200
41500
@end
"""


def doc_from(log):
    return bm.document(log, model_sha256="ab" * 32, model_bytes=1234, binary_sha256="cd" * 32,
                       device=bm.describe(ANDROID, "serial"), settings=BenchSettings(runs=100), started_at=0.0)


def test_current_log_fills_the_schema():
    doc = validate(doc_from(CURRENT))
    lat = doc["latency"]
    assert lat["runs"] == 1000 and lat["mean_ms"] == pytest.approx(63.7432) and lat["p50_ms"] == pytest.approx(51.891)
    assert lat["min_ms"] == pytest.approx(49.088) and lat["max_ms"] == pytest.approx(686.105)
    assert lat["p95_ms"] == pytest.approx(68.628) and lat["p90_ms"] is None and lat["p99_ms"] is None
    assert lat["init_ms"] == pytest.approx(119.515) and lat["first_inference_ms"] == pytest.approx(87.112)
    assert doc["memory"]["peak_rss_bytes"] == int(60.25 * 2**20)
    assert doc["memory"]["peak_rss_increase_bytes"] == int(55.4961 * 2**20)
    assert doc["runtime"] == {"name": "benchmark_model", "version": "sha256:" + "cd" * 8}
    assert doc["output_checksum"] is None and doc["power"]["source"] is None
    assert any("high run-to-run variation" in w for w in doc["warnings"])  # std 60.7 ms on 63.7 ms


def test_older_log_leaves_what_it_lacks_null_and_says_so():
    doc = validate(doc_from(OLDER))
    assert doc["latency"]["runs"] == 459 and doc["latency"]["mean_ms"] == pytest.approx(2.1771)
    assert doc["latency"]["p50_ms"] is None and doc["memory"]["peak_rss_bytes"] is None
    assert any("no median" in w for w in doc["warnings"]) and any("peak memory" in w for w in doc["warnings"])


def test_failed_run_names_the_missing_kernel():
    assert bm.unsupported(FAILED) == "FULLY_CONNECTED version 12"
    with pytest.raises(MeasurementError, match="no timings: ERROR: Benchmarking failed"):
        bm.parse(FAILED)


def test_android_description_and_fingerprint():
    info = bm.describe(ANDROID, "serial")
    assert info["hostname"] == "38121FDJH000AB" and info["cores"] == 3 and info["ram_bytes"] == 7840124 * 1024
    assert info["os"] == "Android 14 on Google Pixel 8 (kernel 5.15.110-android14-11)"
    assert info["cpu_model"] == "Tensor G3" and info["temperature_c"] == 41.5 and info["cpu_freq_khz"] == 1704000
    other = bm.describe(ANDROID.replace("38121FDJH000AB", "OTHERPHONE"), "serial")
    assert other["fingerprint"] != info["fingerprint"]  # two phones of one model are two devices
    warmer = bm.describe(ANDROID.replace("41500", "52000"), "serial")
    assert warmer["fingerprint"] == info["fingerprint"]  # temperature is not identity


def test_command_carries_the_settings():
    argv = bm.command("/d/bm", "/d/m.tflite", BenchSettings(runs=80, warmup=3, min_time_s=2.0, threads=2))
    assert argv == ["/d/bm", "--graph=/d/m.tflite", "--num_runs=80", "--warmup_runs=3", "--min_secs=2",
                    "--warmup_min_secs=0", "--num_threads=2"]
