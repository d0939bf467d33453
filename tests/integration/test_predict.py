"""The latency predictor: roofline features, calibration on the local device, estimated figures in tune."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import edgesdk
from device_agent.protocol import BenchSettings
from edgesdk.profiles import load_profile
from edgesdk.search import build, predict, tune
from edgesdk.tflite.facts import analyze

from .test_tune import MODEL, TRAIN, VAL

QUICK = BenchSettings(runs=20, warmup=2, min_time_s=0.1)


def test_fit_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    truth = {k: 0.0 for k in predict.FEATURES} | {"fixed_ms": 0.05, "per_op_ms": 0.002, "float_conv": 2e-8,
                                                   "int8_conv": 1e-8, "memory": 1e-9}
    rows = []
    for _ in range(40):
        f = dict.fromkeys(predict.FEATURES, 0.0) | {"fixed_ms": 1.0, "per_op_ms": float(rng.integers(2, 40)),
                                                    "memory": float(rng.integers(10**4, 10**7))}
        f["float_conv" if rng.random() < 0.5 else "int8_conv"] = float(rng.integers(10**5, 10**8))
        rows.append((f, sum(truth[k] * f[k] for k in predict.FEATURES)))
    base = predict.roofline(load_profile("host"))
    coefficients, mape = predict.fit_coefficients(rows, base)
    assert mape < 1e-6
    for key in ("fixed_ms", "per_op_ms", "float_conv", "int8_conv", "memory"):
        assert coefficients[key] == pytest.approx(truth[key], rel=1e-3)
    assert coefficients["int16x8_conv"] == base["int16x8_conv"]  # not exercised: the roofline stays


def test_a_calibration_for_other_features_falls_back_to_the_roofline(tmp_path, caplog):
    """A calibration file from an earlier predictor (other feature names) does not stop a search: the
    roofline is used, uncalibrated, and the log says to calibrate again."""
    import json

    mine = tmp_path / "mybox.yaml"
    shutil.copyfile(load_profile("host").path, mine)
    profile = load_profile(mine)
    old = {"fixed_ms": 0.001, "per_op_ms": 1e-5, "memory": 1e-8, "float_dense": 2e-8, "int8_dense": 2e-8}
    predict.calibration_path(profile).write_text(json.dumps({"profile": "mybox", "coefficients": old,
                                                             "calibrated": True}))
    with caplog.at_level("WARNING"):
        loaded = predict.load(profile)
    assert not loaded.calibrated and loaded.coefficients == predict.roofline(profile)
    assert "calibrate" in caplog.text


def test_fp16_weights_unpacked_once_cost_what_float32_weights_cost(tmp_path):
    """An fp16 model's DEQUANTIZE of its constant weights runs when the interpreter is prepared: per
    inference it costs what the float32 model costs (same MACs, operators and bytes read)."""
    from edgesdk.compress import compress

    half = tmp_path / "half.tflite"
    compress(MODEL, "host", "fp16", half, VAL)
    report = analyze(half)
    assert report.precision == "fp16" and report.op_counts.get("DEQUANTIZE", 0) >= 2
    full = tmp_path / "full.tflite"
    compress(MODEL, "host", "fp32", full, VAL)
    assert predict.features(report) == pytest.approx(predict.features(analyze(full)))


def test_quantized_kernels_are_costed_on_whole_tiles(tmp_path):
    """On the host profile (XNNPACK, AVX2) an int8 convolution reduces over input channels in blocks of
    8 and a depthwise one runs 16 channels at a time: a 3-channel stem costs 8/3 of its MACs, 24
    depthwise channels cost 32. Float convolutions are costed on their plain MACs."""
    import tf_keras as k

    from edgesdk.techniques import Step
    from edgesdk.techniques.conversion import convert

    inp = k.Input((16, 16, 3))
    x = k.layers.Conv2D(24, 3, padding="same")(inp)                  # 16*16 * 9*3 * 24 MACs
    x = k.layers.DepthwiseConv2D(3, padding="same")(x)               # 16*16 * 9 * 24
    model = k.Model(inp, k.layers.Dense(5)(k.layers.Flatten()(x)))   # 6144 * 5
    calibration = np.random.default_rng(0).standard_normal((8, 16, 16, 3)).astype(np.float32)
    host = load_profile("host")
    conv, depthwise, fc = 256 * 27 * 24, 256 * 9 * 24, 6144 * 5
    for precision, klass, stem in (("fp32", "float", conv), ("int8", "int8", conv * 8 / 3)):
        path = tmp_path / f"{precision}.tflite"
        path.write_bytes(convert(model, Step(precision), calibration))
        report = analyze(path)
        plain = predict.features(report)
        assert (plain[f"{klass}_conv"], plain[f"{klass}_depthwise"], plain[f"{klass}_fc"]) == (conv, depthwise, fc)
        tiled = predict.features(report, host)
        assert tiled[f"{klass}_conv"] == pytest.approx(stem)
        assert tiled[f"{klass}_depthwise"] == pytest.approx(depthwise * 32 / 24)
        assert tiled[f"{klass}_fc"] == fc  # 6144 input features: whole tiles already


def _estimate(path, name):
    profile = load_profile(name)
    return predict.Predictor(name, predict.roofline(profile)).predict_ms(analyze(path), profile)


def test_kernel_facts_make_estimates_differ_where_the_hardware_does(tmp_path):
    """Uncalibrated, the shipped profiles differ where their hardware does: rpi5's slower memory makes 8 MiB
    of fp32 weights (past its 2 MiB cache) cost more than on android-cpu while a small CNN costs the same;
    the GPU pays per operator, so a deep thin model is bound by launches and halving a CNN's width gains
    less there than on a CPU; fp32 and fp16 cost the same on the GPU (it computes in fp16); dynamic runs
    at the int8 rate on XNNPACK."""
    import tf_keras as k

    from edgesdk.techniques import Step
    from edgesdk.techniques.conversion import convert

    def write(name, model, precision="fp32"):
        shape = [8, *model.input_shape[1:]]
        path = tmp_path / f"{name}-{precision}.tflite"
        path.write_bytes(convert(model, Step(precision), np.random.default_rng(0).standard_normal(shape)
                                 .astype(np.float32)))
        return path

    inp = k.Input((1024,))
    fc = k.Model(inp, k.layers.Dense(1024)(k.layers.Dense(1024, activation="relu")(inp)))   # 8 MiB of fp32
    wide = write("fc", fc)

    def cnn(width):
        x = inp = k.Input((32, 32, 3))
        for _ in range(3):
            x = k.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
        return k.Model(inp, k.layers.Dense(10)(k.layers.GlobalAveragePooling2D()(x)))

    small, half = write("cnn", cnn(32)), write("cnn16", cnn(16))
    x = inp = k.Input((8,))
    for _ in range(30):
        x = k.layers.Dense(8, activation="relu")(x)
    thin = write("thin", k.Model(inp, x))

    assert _estimate(wide, "rpi5") / _estimate(wide, "android-cpu") > 1.25
    assert 0.9 < _estimate(small, "rpi5") / _estimate(small, "android-cpu") < 1.15
    ops = len(analyze(thin).layers)
    assert _estimate(thin, "mobile-gpu") >= (100 + 10 * ops) / 1e3 > 10 * _estimate(thin, "android-cpu")
    gain_cpu = _estimate(small, "android-cpu") / _estimate(half, "android-cpu")
    gain_gpu = _estimate(small, "mobile-gpu") / _estimate(half, "mobile-gpu")
    assert gain_cpu > 2.5 and 1.0 < gain_gpu < gain_cpu
    assert _estimate(write("thin", k.Model(inp, x), "fp16"), "mobile-gpu") == \
        pytest.approx(_estimate(thin, "mobile-gpu"))
    assert _estimate(write("fc", fc, "dynamic"), "host") < 1.5 * _estimate(write("fc", fc, "int8"), "host")


def test_a_profile_names_its_kernel_facts_correctly(tmp_path):
    import yaml

    from edgesdk.errors import ProfileError

    doc = yaml.safe_load(open(load_profile("rpi5").path))
    doc["name"] = "mine"
    doc["roofline"]["kernel_efficiency"] = {"int8_depthwsie": 0.1}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ProfileError, match="unknown kernel class.*int8_depthwsie"):
        load_profile(tmp_path / "mine.yaml")
    doc["roofline"]["kernel_efficiency"] = {"depthwise": 0}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(ProfileError, match="share of the peak"):
        load_profile(tmp_path / "mine.yaml")


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    """A model no micro-model resembles exactly (three 3x3 convolutions at 32x32, int8), big enough
    (about 20 M MACs) that its latency stands well above the noise of a shared machine."""
    import tf_keras as k

    from edgesdk.techniques import Step
    from edgesdk.techniques.conversion import convert

    x = inp = k.Input((32, 32, 3))
    for width in (24, 32, 32):
        x = k.layers.Conv2D(width, 3, padding="same", activation="relu")(x)
    model = k.Model(inp, k.layers.Dense(10)(k.layers.GlobalAveragePooling2D()(x)))
    path = tmp_path_factory.mktemp("heldout") / "heldout_int8.tflite"
    calibration = np.random.default_rng(0).standard_normal((16, 32, 32, 3)).astype(np.float32)
    path.write_bytes(convert(model, Step("int8"), calibration))
    return path


@pytest.mark.slow
def test_calibrate_on_the_local_device_and_predict_held_out(held_out, tmp_path):
    tflite_path = held_out
    profile = load_profile("host")
    roofline_ms = predict.load(profile).predict_ms(tflite_path, profile)
    measured = edgesdk.bench(tflite_path, "local", QUICK).latency["p50_ms"]
    # Uncalibrated: the profile's peak rates only (a fast CI machine can beat the assumed peak, so no order).
    assert not predict.load(profile).calibrated and roofline_ms > 0 and measured > 0
    fitted = predict.calibrate(profile, "local", count=8, precisions=["fp32", "int8"], settings=QUICK)
    assert fitted.calibrated and fitted.samples == 16 and fitted.device_fingerprint
    assert predict.calibration_path(profile).is_file()
    loaded = predict.load(profile)
    assert loaded.calibrated and loaded.coefficients == fitted.coefficients
    # The held-out model (not a micro-model): within a factor of two of its measurement.
    estimate = loaded.predict_ms(tflite_path, profile)
    assert measured / 2 < estimate < measured * 2, (estimate, measured)
    # A user's profile keeps its calibration beside its YAML.
    mine = tmp_path / "mybox.yaml"
    shutil.copyfile(profile.path, mine)
    own = load_profile(mine)
    assert predict.calibration_path(own) == tmp_path / "mybox.calibration.json"


@pytest.mark.slow
def test_tune_without_a_device_estimates_and_says_so(tmp_path):
    store = edgesdk.Store()
    space = build(load_profile("host"), precision=["fp32", "int8"], prune=["none"], cluster=["none"],
                  structure=["none"], post=["none"])
    result = tune(MODEL, "host", tmp_path / "t", data=VAL, train_data=TRAIN, space=space, store=store, epochs=0)
    rows = [r for r in result.trials if r["status"] == "estimated"]  # never "measured": nothing was
    assert not any(r["status"] == "measured" for r in result.trials)
    assert len(rows) == 2 and all(r["estimated"] and r["latency_ms"] > 0 for r in rows)
    assert store.count_measurements() == 0 and result.new_measurements == 0
    assert any("ESTIMATED" in note and "expect within 1.5× of the device's latency" in note for note in result.notes)
    assert result.estimate_within == 1.5   # the host profile's uncalibrated_error
    html = (tmp_path / "t/report.html").read_text()
    assert "expect each within 1.5×" in html
    # the two candidates' latencies and the original's, each marked
    trials = html.split('id="trials"')[1].split("</table>")[0]
    assert "ESTIMATED" in html and trials.count('<span class="est">estimated</span>') == 3
    assert analyze(tmp_path / "t/best.tflite").precision in ("fp32", "int8")
