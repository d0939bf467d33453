"""The answer of `tune`: every candidate against the original model, a fidelity floor where there are no
labels, the steps a model's graph rules out left out of its space, and no best when nothing beats the
original."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import edgesdk
from edgesdk import intake
from edgesdk.cli import app
from edgesdk.profiles import load_profile
from edgesdk.search import build, tune
from edgesdk.search.space import for_model

from .test_tune import MODEL, VAL

pytestmark = pytest.mark.slow
ONLY = ["--space", "prune=none", "--cluster", "none", "--space", "structure=none", "--space", "post=none",
        "--epochs", "0"]


def test_the_original_is_the_first_row_and_each_candidate_is_compared_with_it(tmp_path):
    out = tmp_path / "t"
    args = ["tune", str(MODEL), "-p", "host", "-d", str(VAL), "--objectives", "size,accuracy",
            "--max-accuracy-drop", "0.05", "--precision", "fp32", "--precision", "weights=int4", *ONLY, "-o", str(out)]
    done = CliRunner().invoke(app, args, terminal_width=200)
    assert done.exit_code == 0, done.output
    saved = json.loads((out / "results.json").read_text())
    base = saved["baseline"]
    assert base["recipe"] == "original" and base["status"] == "estimated" and base["latency_ms"] > 0
    assert base["quality"]["reference"] and base["quality"]["after"] == base["quality"]["before"]
    assert (out / "candidates/original.tflite").stat().st_size == base["model_bytes"]
    int4 = next(t for t in saved["trials"] if t.get("recipe") == "weights=int4")
    assert int4["versus"]["smaller"] > 3 and int4["model_bytes"] * int4["versus"]["smaller"] == \
        pytest.approx(base["model_bytes"])
    assert saved["beats_original"] is True and saved["best"] == int4["number"]
    lines = done.output.splitlines()   # the default table: figures only, notes below it, short lines
    header = next(i for i, line in enumerate(lines) if "smaller" in line and "faster" in line)
    assert "accuracy" in lines[header] and "original" in lines[header + 2]   # the original comes first
    caption = next(i for i, line in enumerate(lines) if line.startswith("★ the best"))
    assert max(len(line) for line in lines[header:caption]) <= 100, done.output
    assert "KiB" in lines[header + 2] and "best: weights=int4" in done.output
    assert "━" not in done.output  # piped: one line per trial, no progress bar drawn into the log
    # --wide, on the finished study (nothing runs again): one line per trial, the change in words.
    wide = CliRunner().invoke(app, [*args, "--wide"], terminal_width=200)
    assert wide.exit_code == 0, wide.output
    assert "vs original" in wide.output and "× smaller" in wide.output
    fp32 = next(line for line in wide.output.splitlines() if "│ fp32" in line)
    assert "the same bytes as the original" in fp32
    page = (out / "report.html").read_text()   # the original: a square in each plot, the first table row
    assert 'id="plot-size-original"' in page and 'id="plot-latency-original"' in page
    assert '<tr class="original">' in page
    assert "against the original: " in page and "× smaller" in page


def test_nothing_beats_the_original_is_an_answer_not_a_failure(tmp_path):
    out = tmp_path / "t"
    args = ["tune", str(MODEL), "-p", "host", "-d", str(VAL), "--objectives", "size,accuracy",
            "--precision", "fp32", *ONLY, "-o", str(out)]
    done = CliRunner().invoke(app, args, terminal_width=200)
    assert done.exit_code == 0, done.output
    assert "nothing beats the original model" in done.output and not (out / "best.tflite").exists()
    saved = json.loads((out / "results.json").read_text())
    assert saved["best"] is None and saved["beats_original"] is False
    assert not any("meets every constraint" in n for n in saved["notes"])
    assert "Chosen: the original model" in (out / "report.html").read_text()


def test_without_labels_a_collapsed_fidelity_is_a_broken_limit(tmp_path):
    """No --data: fidelity on generated inputs is the quality, and the default floor (5 dB SQNR) refuses a
    candidate whose outputs are noise, so it is never the answer however small it is."""
    space = build(load_profile("host"), precision=["int8"], prune=["none"], cluster=["none"],
                  structure=["none", "channels=0.5"], post=["none"])
    result = tune(MODEL, "host", tmp_path / "t", space=space, epochs=0, objectives=["size"], store=edgesdk.Store())
    rows = {r["recipe"]: r for r in result.trials if r.get("recipe")}
    narrow = rows["channels=0.5,int8"]
    assert narrow["quality"]["inputs"] == "generated" and narrow["quality"]["sqnr_db"] < 5
    assert any("fidelity" in v and "< 5 dB" in v for v in narrow["violations"])
    assert rows["int8"]["quality"]["sqnr_db"] > 5 and not rows["int8"]["violations"]
    assert result.trial(result.best)["recipe"] == "int8"


def test_without_labels_an_accuracy_limit_holds_the_top1_agreement(tmp_path):
    """Unlabelled --data: --max-accuracy-drop D holds a classifier's top-1 agreement with the original at
    1 - D or more (the accuracy can drop by as much as the disagreement): channels=0.25 one-shot, which
    changes many classes, breaks it; int8 keeps it. --min-accuracy needs labels and is refused; --min-sqnr
    is a limit of its own."""
    import numpy as np

    unlabelled = tmp_path / "x.npz"
    np.savez(unlabelled, x=np.load(VAL)["x"])
    space = build(load_profile("host"), precision=["int8"], prune=["none"], cluster=["none"],
                  structure=["none", "channels=0.25"], post=["none"])
    common = {"space": space, "epochs": 0, "objectives": ["size"], "store": edgesdk.Store(), "data": unlabelled}
    result = tune(MODEL, "host", tmp_path / "t", constraints=edgesdk.search.Constraints(max_accuracy_drop=0.01),
                  **common)
    rows = {r["recipe"]: r for r in result.trials if r.get("recipe")}
    narrow, plain = rows["channels=0.25,int8"], rows["int8"]
    assert narrow["quality"]["metric"] == "fidelity" and narrow["quality"]["top1_agreement"] < 0.99
    assert any("top-1 agreement" in v and "< 0.9900" in v for v in narrow["violations"])
    assert plain["quality"]["top1_agreement"] >= 0.99 and not plain["violations"]
    assert result.trial(result.best)["recipe"] == "int8"
    with pytest.raises(edgesdk.RecipeError, match="--min-accuracy needs labels"):
        tune(MODEL, "host", tmp_path / "u", constraints=edgesdk.search.Constraints(min_accuracy=0.9), **common)
    shown = CliRunner().invoke(app, ["tune", str(MODEL), "-p", "host", "-d", str(unlabelled), "--min-sqnr", "60",
                                     "--epochs", "0", "--objectives", "size", *ONLY, "--precision", "int8",
                                     "-o", str(tmp_path / "v")], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "< 60 dB" in shown.output and "NOT every constraint" in shown.output


def test_the_space_leaves_out_steps_the_graph_cannot_take(tmp_path, tflite_path, keras3_path):
    """Low-rank on a .tflite factors float fully connected layers other than the output: an int8 file has
    none (the space says so); in its float twin the Dense layer feeds the softmax, and can be factored."""
    space = build(load_profile("host"))
    int8 = for_model(space, intake.open_model(tflite_path))
    assert not any(v.startswith("lowrank") for v in int8["structure"])
    assert any("lowrank" in n and "left out" in n for n in int8.notes) and len(int8) < len(space)
    fp32 = tmp_path / "float.tflite"
    edgesdk.compress(keras3_path, "host", "fp32", fp32)
    assert any(v.startswith("lowrank") for v in for_model(space, intake.open_model(fp32))["structure"])


def test_a_config_file_gives_the_options_and_the_command_line_overrides_it(tmp_path):
    config = tmp_path / "tune.yaml"
    config.write_text(f"model: {MODEL}\nprofile: host\ndata: {VAL}\nobjectives: size,accuracy\n"
                      "max-accuracy-drop: 0.05\nprecision: [fp32, weights=int4]\nbudget: 2\n"
                      "space: [prune=none, post=none]\ncluster: none\nstructure: none\nepochs: 0\n")
    out = tmp_path / "t"
    done = CliRunner().invoke(app, ["tune", "--config", str(config), "--budget", "1", "-o", str(out)])
    assert done.exit_code == 0, done.output
    saved = json.loads((out / "results.json").read_text())
    assert [t["recipe"] for t in saved["trials"]] == ["weights=int4"]   # --budget 1 won over the file's 2
    for text, why in (("budgett: 3\n", "unknown key 'budgett'"), ("budget: many\n", "budget: "),
                      ("- a\n", "must be a mapping"), ("budget: [1, 2]\n", "takes one value")):
        config.write_text(text)
        refused = CliRunner().invoke(app, ["tune", str(MODEL), "-p", "host", "--config", str(config),
                                           "-o", str(tmp_path / "refused")])
        assert refused.exit_code == 2 and why in refused.output and str(config) in refused.output, refused.output
    assert not (tmp_path / "refused").exists()
