import copy

import pytest

from device_agent.protocol import SCHEMA, BenchSettings, ProtocolError, validate
from device_agent.sysinfo import describe, fingerprint

GOOD = {
    "schema": SCHEMA, "model_sha256": "ab" * 32, "runtime": {"name": "ai_edge_litert", "version": "2.3.0"},
    "threads": 1, "device": {"fingerprint": "f" * 16},
    "latency": {k: 1.0 for k in ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "std_ms", "cv",
                                 "first_inference_ms", "init_ms")} | {"runs": 10, "warmup_runs": 2},
    "memory": {"peak_rss_bytes": 10, "peak_rss_increase_bytes": 5, "model_bytes": 3},
    "power": {"source": None, "reason": "none"}, "output_checksum": "00", "warnings": [],
}


def test_a_good_document_validates():
    assert validate(copy.deepcopy(GOOD))["schema"] == SCHEMA


@pytest.mark.parametrize("mutate, fragment", [
    (lambda d: d.update(schema="edgesdk.measurement/0"), "expected schema"),
    (lambda d: d.pop("latency"), "lacks field 'latency'"),
    (lambda d: d["latency"].update(p50_ms=-1), "latency.p50_ms"),
    (lambda d: d["memory"].update(model_bytes="3"), "memory.model_bytes"),
    (lambda d: d.update(runtime={"name": "x"}), "runtime must name"),
    (lambda d: d.update(device={}), "fingerprint"),
    (lambda d: d.update(power=None), "power must be an object"),
    (lambda d: d.update(power={"source": None}), "must say why"),
    (lambda d: d.update(power={"source": "hwmon", "idle_w": 1.0, "active_w": 2.0}), "energy_per_inference_mj"),
])
def test_malformed_documents_are_rejected(mutate, fragment):
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    with pytest.raises(ProtocolError, match=None) as info:
        validate(doc)
    assert fragment in str(info.value)


def test_bench_settings_refuse_invalid_values_and_round_trip_to_args():
    with pytest.raises(ValueError, match="runs"):
        BenchSettings(runs=0)
    with pytest.raises(ValueError, match="threads"):
        BenchSettings(threads=0)
    args = BenchSettings(runs=7, threads=2).to_args()
    assert args[args.index("--runs") + 1] == "7" and args[args.index("--threads") + 1] == "2"


def test_fingerprint_ignores_volatile_fields():
    info = describe()
    assert info["fingerprint"] == fingerprint(info)
    changed = dict(info, temperature_c=99.0, cpu_freq_khz=1, governor="powersave")
    assert fingerprint(changed) == info["fingerprint"]
    assert fingerprint(dict(info, cores=info["cores"] + 1)) != info["fingerprint"]


def test_figures_a_runtime_does_not_report_may_be_null_only_with_a_warning():
    doc = copy.deepcopy(GOOD)
    doc["latency"]["p99_ms"] = None
    doc["memory"]["peak_rss_bytes"] = None
    with pytest.raises(ProtocolError, match="p99_ms, peak_rss_bytes not reported, and no warning"):
        validate(copy.deepcopy(doc))
    doc["warnings"] = ["benchmark_model reports no p99"]
    assert validate(doc)["latency"]["p99_ms"] is None
    doc["latency"]["mean_ms"] = None
    with pytest.raises(ProtocolError, match="latency.mean_ms"):
        validate(doc)
