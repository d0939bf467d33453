"""The `edgesdk` console script as a user runs it: exit codes, one-line errors, JSON output."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EDGESDK = shutil.which("edgesdk", path=str(Path(sys.executable).parent)) or "edgesdk"


def run(*args, check_rc=None):
    proc = subprocess.run([EDGESDK, *map(str, args)], capture_output=True, text=True, env=os.environ.copy(),
                          stdin=subprocess.DEVNULL, check=False, timeout=600)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stderr + proc.stdout
    return proc


def test_help_lists_every_command():
    """Every command (and every command of a group) is listed in its parent's --help, and has a --help of
    its own that explains it: a one-line summary, and its options."""
    import typer
    from typer.testing import CliRunner

    from edgesdk.cli import app

    out = run("--help", check_rc=0).stdout  # the console script itself
    root = typer.main.get_command(app)
    assert hasattr(root, "commands")
    seen = []

    def walk(group, path: list[str], listing: str) -> None:
        for name, command in group.commands.items():
            if command.hidden:
                continue
            assert name in listing, f"{' '.join(path)} --help does not list {name}"
            shown = CliRunner().invoke(app, [*path, name, "--help"], terminal_width=200)
            assert shown.exit_code == 0, shown.output
            summary = (command.help or "").strip().splitlines()
            assert summary and len(summary[0]) > 15, f"{' '.join([*path, name])} has no summary"
            assert "--help" in shown.output and "Usage:" in shown.output
            seen.append(" ".join([*path, name]))
            if hasattr(command, "commands"):
                walk(command, [*path, name], shown.output)

    walk(root, [], out)
    assert {"inspect", "compress", "bench", "tune", "techniques", "profiles list", "suite run"} <= set(seen), seen
    assert "--recipe" in run("compress", "--help", check_rc=0).stdout


def test_help_reads_at_80_columns():
    """At 80 columns every option names its value (``--runs RUNS``, not typer's ``<int range>``), every
    example is a whole command on a line of its own (not run into the text or broken for copy-paste), and
    no URL form of --device is cut inside."""
    import shlex

    import typer
    from typer.testing import CliRunner

    from edgesdk.cli import app

    def walk(group, path):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):
                yield from walk(command, [*path, name])
            elif not command.hidden:
                yield [*path, name]

    examples = 0
    for path in walk(typer.main.get_command(app), []):
        shown = CliRunner().invoke(app, [*path, "--help"], terminal_width=80).output
        where = " ".join(path)
        for typed in ("<int range>", "<float range>", "<list[", "<str>", "<float>", "<int>"):
            options = shown.split("Options:", 1)[-1]
            assert typed not in options, f"{where} --help shows {typed}"
        assert "Example:" not in shown, f"{where} --help runs an example into its text"
        lines = shown.splitlines()
        if "  Examples:" in lines:
            block = lines[lines.index("  Examples:") + 2:]
            for line in block[:block.index("") if "" in block else len(block)]:
                words = shlex.split(line)
                assert words[:1 + len(path)] == ["edgesdk", *path], f"{where}: example {line!r} is not whole"
                examples += 1
        for line in lines:
            assert not line.rstrip().endswith(("://", "adb://SERIAL[?")), f"{where}: a URL is cut: {line!r}"
    assert examples >= 10


def test_profiles_list_and_show(tmp_path):
    names = {p["name"] for p in json.loads(run("profiles", "list", "--json", check_rc=0).stdout)}
    assert {"host", "rpi5", "cortex-m4", "edgetpu"} <= names
    shown = json.loads(run("profiles", "show", "cortex-m4", "--json", check_rc=0).stdout)
    assert shown["memory"]["ram_bytes"] == 655360 and "CONV_2D" in shown["operators"]
    shown = run("profiles", "show", "rpi5", check_rc=0).stdout
    # every figure also in the unit a person reads, as a comment: the text is still a profile that loads
    assert "ram_bytes: 2147483648  # 2 GiB" in shown and "# 76.8 GMAC/s" in shown and "# 17 GB/s" in shown
    copy = tmp_path / "mine.yaml"
    copy.write_text("".join(line + "\n" for line in shown.splitlines() if not line.startswith("path:")))
    assert run("profiles", "show", str(copy), "--json", check_rc=0).stdout.count('"ram_bytes": 2147483648') == 1


@pytest.mark.parametrize("args, fragment", [
    (["inspect", "{tmp}/missing.tflite"], "no such file"),
    (["inspect", "{tmp}/empty.tflite"], "the file is empty"),
    (["inspect", "{tmp}/corrupt.tflite"], "not a TFLite flatbuffer"),
    (["inspect", "{tmp}/corrupt.keras"], "not a valid .keras file"),
    (["inspect", "{tmp}/model.onnx"], "unsupported model format"),
    (["inspect", "{tflite}", "--profile", "nope"], "unknown profile 'nope'"),
    (["compress", "{keras}", "-p", "host", "-r", "int9", "-o", "{tmp}/o.tflite"], "unknown technique 'int9'"),
    (["compress", "{keras}", "-p", "edgetpu", "-r", "fp16", "-o", "{tmp}/o.tflite"], "does not run fp16"),
    (["compress", "{keras}", "-p", "host", "-r", "int8", "-d", "{tmp}/no.npz", "-o", "{tmp}/o.tflite"],
     "no such data file"),
    (["compress", "{keras}", "-p", "host", "-r", "int8", "-d", "{tmp}/x.npy", "-o", "{tmp}/o.tflite"],
     "a .npy file holds one unnamed array"),
    (["bench", "{tflite}", "-d", "{tmp}/x.npy"], "a .npy file holds one unnamed array"),
    (["bench", "{keras}"], "bench measures .tflite models"),
    (["bench", "{tflite}", "--device", "ftp://pi@nowhere"], "unsupported device"),
    (["bench", "{tflite}", "--device", "ssh://pi@no-such-host.invalid"], "cannot connect"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, tflite_path, keras3_path, args, fragment):
    (tmp_path / "empty.tflite").write_bytes(b"")
    (tmp_path / "corrupt.tflite").write_bytes(b"not a model at all")
    (tmp_path / "corrupt.keras").write_bytes(b"not a zip")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    np.save(tmp_path / "x.npy", np.zeros((4, 8, 8, 1), np.float32))
    argv = [a.format(tmp=tmp_path, tflite=tflite_path, keras=keras3_path) for a in args]
    proc = run(*argv)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr
    assert not (tmp_path / "o.tflite").exists()


def test_usage_errors_exit_2_with_usage():
    proc = run("compress", "model.keras", "-p", "host", "-o", "x.tflite")
    assert proc.returncode == 2 and "Missing option" in proc.stderr and "Traceback" not in proc.stderr
    assert run("bench", "x.tflite", "--runs", "0").returncode == 2


@pytest.mark.slow
def test_compress_then_bench_then_cached(keras3_path, data_files, tmp_path):
    train, val, _ = data_files
    out = tmp_path / "model.tflite"
    done = json.loads(run("compress", keras3_path, "-p", "rpi5", "-r", "prune=0.5,int8", "-d", val,
                          "--train-data", train, "--epochs", "1", "-o", out, "--json", check_rc=0).stdout)
    assert done["precision"] == "int8" and out.is_file() and done["quality"]["metric"] == "accuracy"
    human = run("compress", keras3_path, "-p", "host", "-r", "int8", "-d", val, "-o", tmp_path / "b.tflite",
                check_rc=0)
    assert "accuracy" in human.stdout and "SQNR" in human.stdout
    first = json.loads(run("bench", out, "--runs", "10", "--min-time", "0.05", "--json", check_rc=0).stdout)
    assert first["cached"] is False and first["latency"]["p50_ms"] > 0
    second = run("bench", out, "--runs", "10", "--min-time", "0.05", check_rc=0)
    assert "from the store" in second.stdout
    third = json.loads(run("bench", out, "--runs", "10", "--min-time", "0.05", "--fresh", "--json",
                           check_rc=0).stdout)
    assert third["cached"] is False


def test_inspect_json_and_table(tflite_path):
    doc = json.loads(run("inspect", tflite_path, "--profile", "cortex-m4", "--json", check_rc=0).stdout)
    assert doc["report"]["precision"] == "int8" and doc["fit"]["ok"]
    table = run("inspect", tflite_path, "-p", "cortex-m4", check_rc=0).stdout
    assert "CONV_2D" in table and "MACs" in table and "fits" in table


def test_inspect_counts_trivial_operators_below_the_layers_and_all_shows_them(tmp_path, keras3_path):
    import edgesdk

    weights = tmp_path / "w4.tflite"
    edgesdk.compress(keras3_path, "host", "weights=int4", weights)
    short = run("inspect", weights, check_rc=0).stdout
    full = run("inspect", weights, "--all", check_rc=0).stdout
    layers = short.split("layers")[-1]
    assert "DEQUANTIZE" not in layers.split("not shown")[0] and "not shown (--all shows them):" in short
    assert "DEQUANTIZE" in full.split("layers")[-1] and "not shown" not in full
    assert ";" in full and ";" not in layers.split("not shown")[0]   # fused names in full only with --all


def test_tensorflow_chatter_stays_off_the_terminal():
    """TensorFlow prints absl's "All log messages before absl::InitializeLog()" and "oneDNN custom
    operations are on" straight to fd 2 when it is first imported, whichever module imports it (tf_keras
    here, as `calibrate` does); the CLI's import hook sends that to the log (--verbose shows it)."""
    hooked = "from edgesdk import _native; _native.quiet_tensorflow_imports(); import tf_keras; import tensorflow"
    loud = subprocess.run([sys.executable, "-c", "import tf_keras"], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
    quiet = subprocess.run([sys.executable, "-c", hooked], capture_output=True, text=True,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert loud.returncode == 0 and quiet.returncode == 0, quiet.stderr
    assert "oneDNN" in loud.stderr or "absl" in loud.stderr   # the chatter exists without the hook
    assert "oneDNN" not in quiet.stderr and "absl" not in quiet.stderr, quiet.stderr
