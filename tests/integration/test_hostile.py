"""Hostile and sloppy input, through the CLI as a user meets it: no code from a model file runs, nothing
crashes or computes garbage, nothing of the user's is lost, and every failure is one line with exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgesdk.cli import main

ROOT = Path(__file__).resolve().parent.parent.parent
MODEL = ROOT / "examples/digits/model.keras"
VAL, TRAIN = ROOT / "examples/digits/val.npz", ROOT / "examples/digits/train.npz"
EDGESDK = str(Path(sys.executable).parent / "edgesdk")


def cli(capsys, *args):
    """(exit code, stdout, stderr) of `edgesdk ARGS` run in this process (stdout is not a terminal)."""
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def one_line_error(rc, stderr, fragment, code=2):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert rc == code, stderr
    assert "Traceback" not in stderr and "internal error" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], stderr


# --- code in model files ----------------------------------------------------------------------------------

def _lambda_models(tmp_path):
    """The same tf_keras model with a Lambda layer whose body writes a marker file, as .h5 and SavedModel,
    and a Keras 3 twin as .keras."""
    import keras
    import tf_keras

    marker = tmp_path / "code-ran"
    body = f"lambda x: (__import__('pathlib').Path({str(marker)!r}).write_text('ran'), x)[1]"
    inputs = tf_keras.Input((8, 8, 1))
    h = tf_keras.layers.Lambda(eval(body), name="evil")(inputs)  # noqa: S307 - the test's own payload
    model = tf_keras.Model(inputs, tf_keras.layers.Dense(10, activation="softmax")(tf_keras.layers.Flatten()(h)))
    model.save(tmp_path / "evil.h5")
    model.save(tmp_path / "evil_sm", save_format="tf")
    k_in = keras.Input((8, 8, 1))
    k_out = keras.layers.Dense(10)(keras.layers.Flatten()(keras.layers.Lambda(eval(body), name="evil")(k_in)))
    keras.Model(k_in, k_out).save(tmp_path / "evil.keras")
    marker.unlink(missing_ok=True)  # building the models ran it; loading them must not
    return marker


def test_a_model_file_never_runs_its_code_unless_the_user_says_so(tmp_path, capsys):
    marker = _lambda_models(tmp_path)
    out = tmp_path / "o.tflite"
    for model in ("evil.h5", "evil.keras"):
        for args in (["inspect", tmp_path / model],
                     ["compress", tmp_path / model, "-p", "host", "-r", "fp32", "-o", out],
                     ["tune", tmp_path / model, "-p", "host", "--budget", "1", "-o", tmp_path / "t"]):
            rc, _, err = cli(capsys, *args)
            one_line_error(rc, err, "evil (Lambda)")
            assert "--trust-model-code" in err and not marker.exists() and not out.exists(), (args, err)
    assert not (tmp_path / "t" / "candidates").exists()
    # A SavedModel is converted from its graph, which runs no Python: quantization works, training steps
    # are refused naming the layer.
    rc, _, err = cli(capsys, "compress", tmp_path / "evil_sm", "-p", "host", "-r", "int8", "-o", out)
    assert rc == 0 and out.is_file() and not marker.exists(), err
    rc, _, err = cli(capsys, "compress", tmp_path / "evil_sm", "-p", "host", "-r", "prune=0.5,int8", "-o", out)
    one_line_error(rc, err, "evil (Lambda)")
    # Told explicitly: the code runs (that is what the refusal protected against).
    rc, _, err = cli(capsys, "inspect", tmp_path / "evil.h5", "--trust-model-code")
    assert rc == 0 and marker.read_text() == "ran", err


def test_export_c_sanitizes_what_goes_into_generated_code(tflite_path, tmp_path, capsys):
    if shutil.which("g++") is None:
        pytest.skip("g++ is not installed")
    sneaky = tmp_path / "m\nint injected = 1; \\.tflite"
    shutil.copyfile(tflite_path, sneaky)
    rc, _, err = cli(capsys, "export", "c", sneaky, "-o", tmp_path / "src")
    assert rc == 0, err
    header = (tmp_path / "src/model_data.h").read_text()
    assert not any(line.startswith("int injected") for line in header.splitlines())
    assert all(line.isascii() and "\\" not in line for line in header.splitlines() if line.startswith("//"))
    compiled = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-x", "c++", "-"], input=header, text=True,
                              capture_output=True, check=False)
    assert compiled.returncode == 0, compiled.stderr
    for name, fragment in (("int", "keyword"), ("a;b", "C identifier"), ("__x", "reserved"),
                           ("kModelSha256", "already defined"), ("9lives", "C identifier"),
                           ("std", "C/C++ library"), ("size_t", "C/C++ library"), ("NULL", "C/C++ library"),
                           ("TfLiteStatus", "TFLite Micro"), ("MODEL", "macro")):
        rc, _, err = cli(capsys, "export", "c", tflite_path, "-o", tmp_path / "bad", "--name", name)
        one_line_error(rc, err, fragment)
    rc, _, err = cli(capsys, "export", "c", tflite_path, "-o", tmp_path / "bad", "--arena", 10**12)
    one_line_error(rc, err, "--arena must be between 1 and")
    assert not (tmp_path / "bad").exists()
    rc, _, _ = cli(capsys, "export", "c", tflite_path, "-o", tmp_path / "src")   # its own files: replaced
    assert rc == 0
    (tmp_path / "src/model_ops.h").write_text("// my own resolver\n")
    rc, _, err = cli(capsys, "export", "c", tflite_path, "-o", tmp_path / "src")
    one_line_error(rc, err, "model_ops.h: this file was not written by edgesdk export c")
    assert (tmp_path / "src/model_ops.h").read_text() == "// my own resolver\n"


def _tmpfs(path, *options):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    return path


def test_export_c_on_a_full_disk_changes_nothing_and_leaves_no_temp_files(tflite_path, tmp_path, capsys):
    disk = _tmpfs(tmp_path / "disk", "size=256k")
    try:
        out = disk / "src"
        out.mkdir()
        (out / "model_data.h").write_text("// Generated by edgesdk export c from an earlier model\n")
        filler = disk / "filler"
        with filler.open("wb") as fh:  # leave less room than the sources need
            fh.write(b"\0" * (256 * 1024 - 3 * tflite_path.stat().st_size - 8192))
        rc, _, err = cli(capsys, "export", "c", tflite_path, "-o", out)
        one_line_error(rc, err, "disk is full")
        assert sorted(p.name for p in out.iterdir()) == ["model_data.h"]
        assert (out / "model_data.h").read_text() == "// Generated by edgesdk export c from an earlier model\n"
        filler.unlink()
        rc, _, err = cli(capsys, "export", "c", tflite_path, "-o", out)
        assert rc == 0 and sorted(p.name for p in out.iterdir()) == ["model_data.cc", "model_data.h", "model_ops.h"]
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# --- data -------------------------------------------------------------------------------------------------

def test_nan_in_data_is_refused_before_conversion(tmp_path, digits):
    """NaN in calibration data crashed the int8 converter (SIGSEGV, no message): a subprocess, so a crash
    fails this test instead of the whole run."""
    x = digits[2][:20].copy()
    x[3, 0, 0, 0] = np.nan
    x[7, 1, 1, 0] = np.inf
    np.savez(tmp_path / "nan.npz", x=x)
    proc = subprocess.run([EDGESDK, "compress", str(MODEL), "-p", "host", "-r", "int8", "-d", str(tmp_path / "nan.npz"),
                           "-o", str(tmp_path / "o.tflite")], capture_output=True, text=True, check=False, timeout=300)
    one_line_error(proc.returncode, proc.stderr, "NaN or infinite values in 2 of 20 samples (the first is sample 3)")


def test_data_bombs_and_npy_files_are_refused_before_loading(tmp_path, capsys):
    """An .npz whose header claims 64e12 elements in 192 bytes, and a bare .npy (however large its header
    says it is), are refused from their headers: no allocation, no MemoryError."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (8_000_000, 8_000_000)})
    with zipfile.ZipFile(tmp_path / "bomb.npz", "w") as archive:
        archive.writestr("x.npy", header.getvalue() + b"\0" * 64)
    (tmp_path / "bomb.npy").write_bytes(header.getvalue())
    for path, fragment in ((tmp_path / "bomb.npz", "claims shape (8000000, 8000000)"),
                           (tmp_path / "bomb.npy", "a .npy file holds one unnamed array")):
        rc, _, err = cli(capsys, "compress", MODEL, "-p", "host", "-r", "fp32", "-d", path, "-o", tmp_path / "o.tflite")
        one_line_error(rc, err, fragment)
    assert not (tmp_path / "o.tflite").exists()


def test_calibration_data_that_overflows_the_model_is_refused_not_a_segfault(tmp_path):
    """float32-max inputs drive the activations to infinity; the converter's quantizer would segfault on
    the infinite ranges. The tensor is named, exit 2, nothing written."""
    x = np.full((8, 8, 8, 1), np.finfo(np.float32).max, np.float32)
    np.savez(tmp_path / "huge.npz", x=x)
    proc = subprocess.run([EDGESDK, "compress", str(MODEL), "-p", "host", "-r", "int8", "-d",
                           str(tmp_path / "huge.npz"), "-o", str(tmp_path / "o.tflite")], capture_output=True,
                          text=True, check=False, timeout=300)
    one_line_error(proc.returncode, proc.stderr, "the calibration data overflows the float model: tensor ")
    assert not (tmp_path / "o.tflite").exists()


def test_a_fifo_or_a_huge_file_as_profile_or_suite_is_refused_without_waiting(tmp_path, capsys):
    fifo = tmp_path / "p.yaml"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as fh:
        fh.truncate(17 << 20)
    for path, fragment in ((fifo, "not a regular file"), (huge, "larger than 16,777,216 bytes")):
        for args in (["profiles", "show", path], ["suite", "run", path, "-o", tmp_path / "out"]):
            rc, _, err = cli(capsys, *args)
            one_line_error(rc, err, fragment)


def test_long_and_repeated_error_text_is_shortened(tmp_path, capsys):
    """An input echoed in an error (a 100 KB profile name) is cut; a line repeated in a row is said once."""
    from edgesdk.cli.common import MAX_MESSAGE, brief

    rc, _, err = cli(capsys, "profiles", "show", "x" * 100_000)
    one_line_error(rc, err, "characters left out")
    assert len(err) < MAX_MESSAGE + 200
    assert brief("Node 1 failed\n" * 50 + "last") == "Node 1 failed (x50) last"


@pytest.mark.parametrize("y, fragment", [
    (lambda y: y.astype(np.float32) + 0.5, "fractional values"),
    (lambda y: y.astype(str), "must hold numbers"),
    (lambda y: y + 10, "labels must be 0..9"),
    (lambda y: np.stack([y, y], axis=1), "needs one class index per sample"),
])
def test_labels_that_do_not_fit_the_output_are_refused(tmp_path, capsys, digits, y, fragment):
    _, _, x_val, y_val = digits
    np.savez(tmp_path / "bad.npz", x=x_val[:20], y=y(y_val[:20]))
    for flag in ("-d", "--train-data"):
        rc, _, err = cli(capsys, "compress", MODEL, "-p", "host", "-r", "fp32", flag, tmp_path / "bad.npz",
                         "-o", tmp_path / "o.tflite")
        one_line_error(rc, err, fragment)
    assert not (tmp_path / "o.tflite").exists()


def test_whole_float_labels_count_as_classes(tmp_path, capsys, digits):
    _, _, x_val, y_val = digits
    np.savez(tmp_path / "floaty.npz", x=x_val[:40], y=y_val[:40].astype(np.float64))
    rc, out, err = cli(capsys, "compress", MODEL, "-p", "host", "-r", "fp32", "-d", tmp_path / "floaty.npz",
                       "-o", tmp_path / "o.tflite", "--json")
    assert rc == 0, err
    assert json.loads(out)["quality"]["metric"] == "accuracy"


def test_quality_limits_without_data_are_refused(tmp_path, capsys):
    for flag, value in (("--max-accuracy-drop", "0.01"), ("--min-accuracy", "0.9")):
        rc, _, err = cli(capsys, "tune", MODEL, "-p", "host", flag, value, "-o", tmp_path / "t")
        one_line_error(rc, err, f"{flag} need evaluation data")
    for value, fragment in (("", "no empty entry"), ("latency,", "no empty entry"), ("size,size", "named twice")):
        rc, _, err = cli(capsys, "tune", MODEL, "-p", "host", "--objectives", value, "-o", tmp_path / "t")
        one_line_error(rc, err, fragment)
    assert not (tmp_path / "t").exists()


# --- outputs ----------------------------------------------------------------------------------------------

def test_compress_and_tune_never_overwrite_their_input(tmp_path, capsys, tflite_path):
    model = tmp_path / "model.keras"
    shutil.copyfile(MODEL, model)
    before = model.read_bytes()
    (tmp_path / "link.tflite").symlink_to(model)
    for output, fragment in ((model, "must be a .tflite file"), (tmp_path / "link.tflite", "would overwrite the input"),
                             (tmp_path / "out.txt", "must be a .tflite file"), (tmp_path, "must be a .tflite file")):
        rc, _, err = cli(capsys, "compress", model, "-p", "host", "-r", "fp32", "-o", output)
        one_line_error(rc, err, fragment)
    assert model.read_bytes() == before
    (tmp_path / "dir.tflite").mkdir()
    rc, _, err = cli(capsys, "compress", model, "-p", "host", "-r", "fp32", "-o", tmp_path / "dir.tflite")
    one_line_error(rc, err, "is a directory")
    (tmp_path / "t").mkdir()
    shutil.copyfile(tflite_path, tmp_path / "t/best.tflite")
    rc, _, err = cli(capsys, "tune", tmp_path / "t/best.tflite", "-p", "host", "-o", tmp_path / "t")
    one_line_error(rc, err, "would overwrite the input")
    assert (tmp_path / "t/best.tflite").read_bytes() == tflite_path.read_bytes()


def test_file_system_errors_are_one_line(tmp_path, capsys, tflite_path):
    rc, _, err = cli(capsys, "compress", MODEL, "-p", "host", "-r", "fp32", "-o", "/proc/edgesdk.tflite")
    one_line_error(rc, err, "/proc/edgesdk.tflite")
    for args in (["compress", MODEL, "-p", "host", "-r", "fp32", "-o", "/dev/null/o.tflite"],
                 ["tune", MODEL, "-p", "host", "--budget", "1", "-o", "/dev/null/t"]):
        rc, _, err = cli(capsys, *args)  # a file where a folder must be
        one_line_error(rc, err, "a part of the path is a file, not a directory")
    ro = _tmpfs(tmp_path / "ro", "ro", "size=64k")
    try:
        rc, _, err = cli(capsys, "compress", MODEL, "-p", "host", "-r", "fp32", "-o", ro / "o.tflite")
        one_line_error(rc, err, "read-only")
        rc, _, err = cli(capsys, "export", "c", tflite_path, "-o", ro / "src")
        one_line_error(rc, err, "read-only")
    finally:
        subprocess.run(["umount", str(ro)], check=False)


# --- profiles and suite files -----------------------------------------------------------------------------

@pytest.mark.parametrize("change, fragment", [
    (lambda doc: doc.update(path="/etc/passwd"), "field 'path' is set by edgesdk"),
    (lambda doc: doc.update({1: "x"}), "every field name must be text"),
    (lambda doc: doc.update(operators=[{"CONV_2D": 1}]), "every operator is a name"),
    (lambda doc: doc["roofline"]["peak_macs_per_s"].update(int8=0), "positive, finite MAC/s"),
    (lambda doc: doc["roofline"]["peak_macs_per_s"].update(fp32=-1e9), "positive, finite MAC/s"),
])
def test_bad_user_profiles_are_refused(tmp_path, capsys, change, fragment):
    doc = yaml.safe_load((ROOT / "edgesdk/profiles/host.yaml").read_text())
    change(doc)
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(doc))
    for args in (["profiles", "show", path], ["tune", MODEL, "-p", path, "--budget", "1", "-o", tmp_path / "t"]):
        rc, _, err = cli(capsys, *args)
        one_line_error(rc, err, fragment)


def test_files_that_are_not_utf8_are_refused(tmp_path, capsys):
    (tmp_path / "p.yaml").write_bytes(b"name: caf\xe9\n")
    rc, _, err = cli(capsys, "profiles", "show", tmp_path / "p.yaml")
    one_line_error(rc, err, "must be UTF-8 text")
    (tmp_path / "s.yaml").write_bytes(b"name: caf\xe9\n")
    rc, _, err = cli(capsys, "suite", "run", tmp_path / "s.yaml", "-o", tmp_path / "out")
    one_line_error(rc, err, "must be UTF-8 text")


def test_suite_outputs_never_overwrite_an_input_or_each_other(tmp_path, capsys, tflite_path):
    """`--junit` on the suite file, OUTDIR inside a tune folder (its results.json), a model inside OUTDIR's
    artifacts, two outputs on one file, `-o` a file: refused before anything is measured, nothing changed."""
    tune = tmp_path / "tuned"
    tune.mkdir()
    (tune / "best.tflite").write_bytes(tflite_path.read_bytes())
    (tune / "results.json").write_text('{"study": "mine"}')
    (tmp_path / "out/artifacts").mkdir(parents=True)
    inner = tmp_path / "out/artifacts/m.tflite"
    inner.write_bytes(tflite_path.read_bytes())
    suite = tmp_path / "s.yaml"

    def write(model):
        suite.write_text(yaml.safe_dump({"name": "s", "models": [model], "devices": ["local"],
                                         "bench": {"runs": 1, "warmup": 0, "min_time_s": 0}}))
        return suite.read_text()

    plain = {"path": str(tflite_path)}
    cases = [(plain, ["-o", tmp_path / "o1", "--junit", suite], "would overwrite the input"),
             ({"tune": str(tune)}, ["-o", tune], "would overwrite the input"),
             ({"tune": str(tune)}, ["-o", tune / "sub"], "would overwrite the input"),
             ({"path": str(inner)}, ["-o", tmp_path / "out"], "holds the input"),
             (plain, ["-o", tmp_path / "o2", "--junit", tmp_path / "o2/results.json"], "two outputs"),
             (plain, ["-o", suite], "must be a folder")]
    for model, args, fragment in cases:
        text = write(model)
        rc, _, err = cli(capsys, "suite", "run", suite, *args)
        one_line_error(rc, err, fragment)
        assert suite.read_text() == text and (tune / "results.json").read_text() == '{"study": "mine"}'
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["artifacts", "m.tflite"]


# --- tune -------------------------------------------------------------------------------------------------

def test_an_unknown_device_is_refused_before_anything_is_compressed(tmp_path, capsys):
    rc, _, err = cli(capsys, "tune", MODEL, "-p", "host", "--device", "nosuchdev", "--budget", "1",
                     "-o", tmp_path / "t")
    one_line_error(rc, err, "unknown device 'nosuchdev'")
    assert not (tmp_path / "t").exists()


def test_a_failing_trial_prints_one_line_and_no_traceback(tmp_path, capsys):
    rc, _, err = cli(capsys, "tune", MODEL, "-p", "host", "--device", "ssh://nobody@127.0.0.1:1", "--precision",
                     "fp32", "--prune", "none", "--cluster", "none", "--structure", "none",
                     "--space", "post=none", "--epochs", "0",
                     "-o", tmp_path / "t")
    assert rc == 2 and "Traceback" not in err and "Trial 0 failed" not in err, err
    assert [line for line in err.splitlines() if line.startswith("error: ")] == \
        [line for line in err.splitlines() if "cannot connect" in line]


def test_estimated_trials_the_pareto_folder_and_piped_output(tmp_path, digits, capsys):
    """No device: every trial is `estimated` (table, results.json, report, progress); a file of the user's in
    pareto/ survives; a results.json, report.html or best.tflite of the user's in OUTDIR is refused before any
    trial, untouched; piped output keeps recipes, numbers and the study name whole; the default budget is
    printed and a resume starts the bar from what was done."""
    out = tmp_path / "t"
    (out / "pareto").mkdir(parents=True)
    (out / "pareto" / "mine.txt").write_text("keep me")
    args = [EDGESDK, "tune", str(MODEL), "-p", "host", "-d", str(VAL), "--precision", "fp32", "--precision", "int8",
            "--prune", "none", "--prune", "sparsegpt=0.5", "--cluster", "none", "--structure", "none",
            "--space", "post=none",
            "--epochs", "0", "--budget", "2", "-o", str(out)]
    for name, content in (("results.json", '{"mine": 1}'), ("report.html", "<p>my report</p>"),
                          ("best.tflite", "my model")):
        (out / name).write_text(content)
        rc, _, err = cli(capsys, *args[1:])
        one_line_error(rc, err, f"{name}: this file was not written by edgesdk tune")
        assert (out / name).read_text() == content and not (out / "study.sqlite3").exists()
        (out / name).unlink()
    env = {**os.environ, "COLUMNS": "60"}
    first = subprocess.run(args, capture_output=True, text=True, check=False, timeout=600, env=env)
    assert first.returncode == 0, first.stderr
    assert "[1/2]" in first.stderr and ": estimated, p50" in first.stderr and "(estimated)" in first.stderr
    assert "…" not in first.stdout and "latency estimated, nothing measured" in first.stdout
    doc = json.loads((out / "results.json").read_text())
    assert {t["status"] for t in doc["trials"]} == {"estimated"} and doc["budget"] == 2
    assert doc["study"] in first.stdout and "2 trials (2 estimated)" in first.stdout
    assert all(t["recipe"] in first.stdout for t in doc["trials"])
    assert (out / "pareto" / "mine.txt").read_text() == "keep me"
    assert "2 estimated" in (out / "report.html").read_text()
    resumed = subprocess.run([*args[:-4], "--budget", "3", "-o", str(out)], capture_output=True, text=True,
                             check=False, timeout=600, env=env)
    assert resumed.returncode == 0 and "[3/3]" in resumed.stderr and "[1/3]" not in resumed.stderr, resumed.stderr
    assert (out / "pareto" / "mine.txt").is_file()
    assert set(json.loads((out / ".edgesdk-tune.json").read_text())["files"]) == \
        {"best.tflite", "results.json", "report.html"}
    umask = os.umask(0)
    os.umask(umask)
    assert {oct((out / n).stat().st_mode & 0o777) for n in ("best.tflite", "results.json", "report.html")} == \
        {oct(0o666 & ~umask)}   # what the umask gives, not mkstemp's 0600
    assert sorted(p.name for p in (out / "pareto").iterdir() if p.suffix == ".tflite") == \
        sorted(Path(t["path"]).name for t in json.loads((out / "results.json").read_text())["trials"]
               if t["number"] in json.loads((out / "results.json").read_text())["pareto"])


def test_study_storage_faults_are_one_line(tmp_path, capsys):
    """A study.sqlite3 that is not a database, an unreachable PostgreSQL (its password not echoed), a
    scheme edgesdk does not speak, a read-only tune folder: one line each, before any trial."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t/study.sqlite3").write_text("my notes")
    base = ["tune", MODEL, "-p", "host", "--budget", "1"]
    for extra, fragment in ((["-o", tmp_path / "t"], "file is not a database (the file is something else"),
                            (["-o", tmp_path / "u", "--storage", "postgresql://me:hunter2@127.0.0.1:1/db"],
                             "Connection refused (is the database server running and reachable?)"),
                            (["-o", tmp_path / "u", "--storage", "mysql://me@host/db"], "mysql is not supported")):
        rc, _, err = cli(capsys, *base, *extra)
        one_line_error(rc, err, fragment)
        assert "hunter2" not in err
    assert (tmp_path / "t/study.sqlite3").read_text() == "my notes"


def test_a_read_only_or_full_tune_folder_is_one_line_and_keeps_what_was_stored(tmp_path):
    disk = _tmpfs(tmp_path / "disk", "size=200k")
    try:
        args = ["tune", MODEL, "-p", "host", "--precision", "fp32", "--precision", "int8", "--prune", "none",
                "--prune", "0.5", "--cluster", "none", "--cluster", "16", "--structure", "none",
                "--space", "post=none", "--epochs", "0",
                "--budget", "8", "-o", disk / "t"]
        for fault, fragment in ((None, "the study storage failed: database or disk is full (free space or write"),
                                ("remount,ro", "attempt to write a readonly database (the folder or the file is")):
            if fault:
                done = subprocess.run(["mount", "-o", fault, str(disk)], capture_output=True, text=True, check=False)
                assert done.returncode == 0, done.stderr
            proc = subprocess.run([EDGESDK, *map(str, args)], capture_output=True, text=True, check=False,
                                  timeout=600)
            errors = [line for line in proc.stderr.splitlines() if "error" in line]   # after the progress lines
            assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
            assert len(errors) == 1 and errors[0].startswith("error: ") and fragment in errors[0], proc.stderr
        assert (disk / "t/study.sqlite3").stat().st_size > 0 and not (disk / "t/best.tflite").exists()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_without_a_budget_tune_says_what_it_will_try(tmp_path):
    import signal

    proc = subprocess.Popen([EDGESDK, "tune", str(MODEL), "-p", "host", "-o", str(tmp_path / "t")],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    title, first = proc.stderr.readline(), proc.stderr.readline()   # what it tunes, then what it will try
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=300)
    assert title.startswith("tuning model.keras for host (") and "candidates)" in title, title
    assert first.startswith("trying 24 of the ") and "--budget N" in first, first


# --- suites -----------------------------------------------------------------------------------------------

def _suite(path, models, devices, recipes=("none",)):
    path.write_text(yaml.safe_dump({"name": "lab", "models": models, "recipes": list(recipes), "devices": devices,
                                    "bench": {"runs": 5, "warmup": 1, "min_time_s": 0.05, "power": False},
                                    "health": {"retries": 0, "backoff_s": 0.1}}))
    return path


def test_a_suite_that_measures_nothing_fails(tmp_path, capsys, tflite_path):
    from tests import sshd

    closed = sshd._free_port()
    suite = _suite(tmp_path / "s.yaml", [{"path": str(tflite_path)}],
                   ["nosuchdev", {"name": "down", "url": f"ssh://nobody@127.0.0.1:{closed}"}])
    rc, _, err = cli(capsys, "suite", "run", suite, "-o", tmp_path / "out")
    assert rc == 1 and "no cell was measured (2 of 2 skipped" in err and "--allow-empty" in err, err
    rc, _, err = cli(capsys, "suite", "run", suite, "-o", tmp_path / "out", "--allow-empty")
    assert rc == 0, err


def test_a_suite_refuses_recipes_that_cannot_apply_when_it_loads(tmp_path, capsys, tflite_path):
    suite = _suite(tmp_path / "s.yaml", [{"name": "given", "path": str(tflite_path)}], ["local"], ["none", "qat"])
    rc, _, err = cli(capsys, "suite", "run", suite, "-o", tmp_path / "out")
    one_line_error(rc, err, "model 'given' is a .tflite, which has no training graph: recipe 'qat' cannot apply "
                            "(qat takes Keras models)")
    assert not (tmp_path / "out").exists()
    suite = _suite(tmp_path / "s.yaml", [{"name": "given", "path": str(tflite_path), "recipes": ["none"]},
                                         {"name": "k", "path": str(tmp_path / "x.keras")}], ["local"], ["int9"])
    rc, _, err = cli(capsys, "suite", "run", suite, "-o", tmp_path / "out")
    one_line_error(rc, err, "model 'k': recipe 'int9': unknown technique 'int9'")


def test_a_compression_failure_is_not_called_a_regression(tmp_path, capsys, digits):
    _, _, x_val, y_val = digits
    np.savez(tmp_path / "val.npz", x=x_val[:40], y=y_val[:40])
    suite = _suite(tmp_path / "s.yaml", [{"name": "digits", "path": str(MODEL), "data": str(tmp_path / "val.npz")}],
                   ["local"], ["int8"])
    rc, _, err = cli(capsys, "suite", "run", suite, "-o", tmp_path / "one")
    assert rc == 0, err
    np.savez(tmp_path / "val.npz", x=x_val[:40], y=y_val[:40] + 10)  # now the labels are out of range
    rc, out, err = cli(capsys, "suite", "run", suite, "-o", tmp_path / "two", "--baseline", "latest")
    assert rc == 1 and "1 cell(s) failed to compress (see above)" in err and "regressed" not in err, err
    assert "not a regression" in out + err
    assert "compression failed" in out and "labels must be 0..9" in out + err
    rc, out, _ = cli(capsys, "suite", "list", "--suite", "lab")
    ids = [json.loads((tmp_path / d / "results.json").read_text())["run_id"] for d in ("one", "two")]
    assert rc == 0 and all(run_id in out for run_id in ids), out  # whole, in a pipe


def test_ctrl_c_during_compress_writes_nothing(tmp_path):
    """Ctrl-C in the middle of fine-tuning: exit 130, one line saying so, no output and no temporary file."""
    import signal

    out = tmp_path / "out.tflite"
    proc = subprocess.Popen([EDGESDK, "-v", "compress", str(MODEL), "-p", "host", "-r", "prune=0.5,int8",
                             "-d", str(VAL), "--train-data", str(TRAIN), "--epochs", "50", "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "fine-tuning" in line:
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted; nothing half-written was kept" in rest and "Traceback" not in rest, rest
    assert [p.name for p in tmp_path.iterdir() if p.suffix != ".sqlite"] == []   # the results store may be here


def test_a_negative_tensor_index_is_refused_before_any_runtime(tflite_path, tmp_path, capsys):
    """An operator writing tensor -3 was read as tensors[-3] by inspect; the structure check names it,
    in inspect, bench and compress alike, and no runtime sees the file."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(tflite_path))
    model.subgraphs[0].operators[-1].outputs = np.array([-3], np.int32)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    for command in (["inspect", bad], ["bench", bad, "--runs", "1"],
                    ["compress", bad, "-p", "host", "-r", "int8", "-o", tmp_path / "o.tflite"]):
        rc, _, err = cli(capsys, *command)
        one_line_error(rc, err, "output is -3, outside 0..")
    assert not (tmp_path / "o.tflite").exists()
