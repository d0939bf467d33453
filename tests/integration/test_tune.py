"""`tune` end to end on the digits CNN with the local device: search, constraints, resume, cache, outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import edgesdk
from device_agent.protocol import BenchSettings
from edgesdk.errors import RecipeError
from edgesdk.profiles import load_profile
from edgesdk.search import Constraints, build, tune
from tests import browser

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent.parent
MODEL = ROOT / "examples/digits/model.keras"
VAL, TRAIN = ROOT / "examples/digits/val.npz", ROOT / "examples/digits/train.npz"
QUICK = BenchSettings(runs=10, warmup=1, min_time_s=0.05)


def small_space(**kwargs):
    return build(load_profile("host"), precision=kwargs.get("precision", ["fp32", "int8"]),
                 prune=kwargs.get("prune", ["none", "0.5"]), cluster=["none"], structure=["none"], post=["none"])


def run(outdir, store, **kwargs):
    kwargs.setdefault("space", small_space())
    kwargs.setdefault("devices", ["local"])
    kwargs.setdefault("epochs", 1)
    return tune(MODEL, "host", outdir, data=VAL, train_data=TRAIN, settings=QUICK, store=store, **kwargs)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """One tune of the small space, shared by the output tests."""
    store = edgesdk.Store(f"sqlite:///{tmp_path_factory.mktemp('store') / 'results.sqlite'}")
    seen: list[dict] = []
    outdir = tmp_path_factory.mktemp("tune") / "t"
    result = run(outdir, store, constraints=Constraints(max_accuracy_drop=0.02), progress=seen.append)
    return result, outdir, store, seen


def test_search_writes_best_pareto_results_and_report(searched):
    result, outdir, store, seen = searched
    rows = [r for r in result.trials if r["status"] == "measured"]
    assert sorted(r["recipe"] for r in rows) == ["fp32", "int8", "prune=0.5,fp32", "prune=0.5,int8"]
    assert result.best is not None and result.best_meets_constraints
    best = result.trial(result.best)
    assert best["quality"]["before"] - best["quality"]["after"] <= 0.02 and not best["violations"]
    # Accuracy is bounded by the constraint, so the choice is the fastest model within it.
    assert best["latency_ms"] == min(r["latency_ms"] for r in rows if not r["violations"])
    # Pruning 50% of the digits CNN without long fine-tuning costs more than 2 points: flagged, not chosen.
    assert all(r["violations"] for r in rows if r["recipe"].startswith("prune"))
    assert (outdir / "best.tflite").read_bytes() == Path(best["path"]).read_bytes()
    pareto_files = sorted(p.name for p in (outdir / "pareto").iterdir())
    assert pareto_files == sorted(Path(result.trial(n)["path"]).name for n in result.pareto) and pareto_files
    saved = json.loads((outdir / "results.json").read_text())
    assert saved["best"] == result.best and len(saved["trials"]) == len(result.trials)
    html = (outdir / "report.html").read_text()
    assert html.count('id="plot-latency-trial-') == html.count('id="plot-size-trial-') == len(rows)
    # nothing fetched at view time: no script, no link to anything
    assert 'id="plot-latency"' in html and "<script" not in html and not re.search(r"(src|href)=\S*https?:", html)
    assert result.new_measurements == store.count_measurements() == 4
    assert seen and seen[-1].done == 4 and seen[-1].total == 4 and seen[-1].detail["best"] is not None


@pytest.mark.skipif(browser.available() is not None, reason=str(browser.available()))
def test_report_renders_in_headless_chromium(searched):
    """The report as Chromium lays it out: both plots, a point per measured candidate, the Pareto points
    and the chosen one marked, the trial table. The screenshot is kept in tests/artifacts/."""
    from html.parser import HTMLParser

    result, outdir, _, _ = searched

    class Collect(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[tuple[str, dict[str, str]]] = []

        def handle_starttag(self, tag, attrs):
            self.tags.append((tag, {k: v or "" for k, v in attrs}))

    page = Collect()
    page.feed(browser.dom(outdir / "report.html"))
    svgs = [a["id"] for t, a in page.tags if t == "svg"]
    assert svgs == ["plot-latency", "plot-size"]
    ids = [a.get("id", "") for t, a in page.tags if t == "g"]
    measured = [r for r in result.trials if r["status"] == "measured"]
    for plot in svgs:   # a point per measured candidate, the front marked, the chosen one and the original
        points = [i for i in ids if i.startswith(f"{plot}-trial-")]
        assert len(points) == len(measured)
        assert {int(i.split("-")[3]) for i in points if i.endswith("-pareto")} == set(result.pareto)
        assert f"{plot}-best" in ids and f"{plot}-original" in ids and f"{plot}-limit-quality" in ids
    # Real axes: tick labels are text a person reads (more than the two ends), and the units are named.
    texts = re.findall(r"<text[^>]*>([^<]+)</text>", browser.dom(outdir / "report.html"))
    assert sum(1 for t in texts if re.fullmatch(r"[0-9.−-]+", t.strip())) >= 12
    assert any("latency p50 (µs)" in t or "latency p50 (ms)" in t for t in texts) and "size (KiB)" in texts
    assert sum(1 for t, a in page.tags if t == "tr") >= len(result.trials) + 2   # the header and the original
    # what a person checks in a screenshot: no text out of its box or plot, no page wider than the window
    for width in (1200, 800):
        assert browser.layout_problems(outdir / "report.html", width) == [], width
    shot = browser.screenshot(outdir / "report.html", ROOT / "tests/artifacts/tune_report.png")
    assert shot.stat().st_size > 10_000  # a rendered page, not an empty image


def test_constraints_prune_before_any_device_time(tmp_path):
    store = edgesdk.Store()
    result = run(tmp_path / "t", store, constraints=Constraints(max_memory_bytes=1000))
    assert [r["status"] for r in result.trials] == ["rejected"] * 4
    assert all("--max-memory" in r["reason"] and r["stage"] == "memory" for r in result.trials)
    assert store.count_measurements() == 0 and result.best is None
    assert not (tmp_path / "t/best.tflite").exists() and "no candidate could be measured" in result.notes
    # A profile that refuses a precision: the space leaves it out, and asking for it is an error.
    mcu = load_profile("edgetpu")
    assert "fp32" not in build(mcu)["precision"]
    with pytest.raises(RecipeError, match="refuses precision"):
        build(mcu, precision=["fp32"])


def test_resume_and_cache(tmp_path):
    store = edgesdk.Store()
    first = run(tmp_path / "t", store, budget=2)
    assert len([r for r in first.trials if r["status"] == "measured"]) == 2
    resumed = run(tmp_path / "t", store, budget=4)
    assert len({r["recipe"] for r in resumed.trials}) == 4 and resumed.new_measurements == 2
    again = run(tmp_path / "t", store, budget=4)  # the study is complete: no trial, no measurement
    assert len(again.trials) == len(resumed.trials) and again.new_measurements == 0
    # Stricter limits on the finished study: chosen again without measuring; none meets them, the closest is kept.
    strict = run(tmp_path / "t", store, budget=4, constraints=Constraints(max_latency_ms=1e-6))
    assert strict.new_measurements == 0 and strict.best is not None and not strict.best_meets_constraints
    assert any("closest" in note for note in strict.notes) and (tmp_path / "t/best.tflite").is_file()
    # A fresh study elsewhere with the same store: the same candidates, answered from the store.
    elsewhere = run(tmp_path / "other", store)
    assert elsewhere.new_measurements == 0 and store.count_measurements() == 4
    assert all(r["cached"] for r in elsewhere.trials if r["status"] == "measured")


def test_cli_tune(tmp_path):
    from typer.testing import CliRunner

    from edgesdk.cli import app

    out = tmp_path / "cli"
    args = ["tune", str(MODEL), "-p", "host", "--device", "local", "-d", str(VAL), "--train-data", str(TRAIN),
            "--precision", "int8", "--space", "prune=none", "--cluster", "none", "--space", "structure=none",
            "--space", "post=none",
            "--runs", "5", "--min-time", "0", "--epochs", "0", "-o", str(out)]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert "best: int8" in done.output and (out / "best.tflite").is_file() and (out / "report.html").is_file()
    # --space and the generated --NAME options restrict the same space: one candidate, int8 alone
    assert [t["recipe"] for t in json.loads((out / "results.json").read_text())["trials"] if t.get("recipe")] == \
        ["int8"]
    for form, why in (("speed=1", "unknown search dimension 'speed'"), ("prune", "expected NAME=VALUE"),
                      ("prune=0.3x", "0.3x")):
        refused = CliRunner().invoke(app, [*args[:-2], "--space", form, "-o", str(tmp_path / "refused")])
        assert refused.exit_code != 0 and why in (refused.output + str(refused.exception)), form
    assert not (tmp_path / "refused").exists()
    bad = CliRunner().invoke(app, [*args[:-2], "--objectives", "speed", "-o", str(out)])
    assert bad.exit_code != 0 and "unknown objective 'speed'" in str(bad.exception or bad.output)


def test_ctrl_c_stops_and_keeps_what_was_measured(tmp_path):
    import signal
    import subprocess
    import sys

    cli = Path(sys.executable).parent / "edgesdk"
    out = tmp_path / "t"
    proc = subprocess.Popen([str(cli), "tune", str(MODEL), "-p", "host", "--device", "local", "-d", str(VAL),
                             "--train-data", str(TRAIN), "--precision", "fp32", "--precision", "int8", "--prune",
                             "none", "--prune", "0.5", "--cluster", "none", "--structure", "none",
                             "--space", "post=none", "--epochs", "0",
                             "--runs", "5", "--min-time", "0", "-o", str(out)], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:  # logs get a line per finished trial: interrupt after the first
        if line.startswith("[1/4]"):
            break
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130
    saved = json.loads((out / "results.json").read_text())
    assert saved["interrupted"] and 1 <= sum(r["status"] == "measured" for r in saved["trials"]) < 4
    assert not list(out.glob(".*.tmp")) and not list((out / "candidates").glob("*.tmp*"))
    import optuna

    storage = f"sqlite:///{out / 'study.sqlite3'}"
    study = optuna.load_study(study_name=optuna.get_all_study_names(storage)[0], storage=storage)
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))  # none left claiming its candidate
    retries = {t.system_attrs.get("failed_trial"): t.params for t in study.trials
               if t.state == optuna.trial.TrialState.WAITING}
    assert all(retries.get(t.number) == t.params for t in study.trials if t.state == optuna.trial.TrialState.FAIL)
    resumed = run(out, edgesdk.Store(), budget=4)  # and the study goes on from there
    assert len({r["recipe"] for r in resumed.trials if r["status"] == "measured"}) == 4


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_a_killed_tune_retries_the_trial_it_was_on(tmp_path, how):
    """Killed in the middle of a trial: its heartbeat stops, the resumed search fails it (Optuna's stale
    check), queues it again and takes over its claim, so the candidate is measured, not skipped as a repeat.
    Interrupted (SIGINT) in the middle of a trial: the trial is failed and queued again at once."""
    import signal
    import subprocess
    import sys
    import time

    import optuna

    out = tmp_path / "t"
    script = (
        "from device_agent.protocol import BenchSettings\n"
        "from edgesdk.profiles import load_profile\n"
        "from edgesdk.search import build, tune\n"
        "space = build(load_profile('host'), precision=['fp32', 'int8'], prune=['none', '0.5'], cluster=['none'],"
        " structure=['none'], post=['none'])\n"
        f"tune({str(MODEL)!r}, 'host', {str(out)!r}, devices=['local'], data={str(VAL)!r}, space=space, epochs=0,"
        " settings=BenchSettings(runs=200, warmup=1, min_time_s=2), heartbeat_s=1,"
        " progress=lambda p: print(p.done, flush=True))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:  # the first candidate is done: the second is running now
        if line.strip() == "1":
            break
    storage = f"sqlite:///{out / 'study.sqlite3'}"
    name = optuna.get_all_study_names(storage)[0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        running = optuna.load_study(study_name=name, storage=storage).get_trials(
            states=(optuna.trial.TrialState.RUNNING,))
        if running:
            break
        time.sleep(0.2)
    time.sleep(1.5)  # a heartbeat or two recorded, the measurement (2 s at least) still running
    proc.send_signal(getattr(signal, how))
    proc.wait(timeout=60)
    assert len(running) == 1
    killed = running[0]
    after = optuna.load_study(study_name=name, storage=storage)
    state = after.trials[killed.number].state
    assert state == (optuna.trial.TrialState.RUNNING if how == "SIGKILL" else optuna.trial.TrialState.FAIL)
    resumed = run(out, edgesdk.Store(), budget=4, epochs=0, heartbeat_s=1)
    rows = [r for r in resumed.trials if r["status"] == "measured"]
    assert sorted(r["recipe"] for r in rows) == ["fp32", "int8", "prune=0.5,fp32", "prune=0.5,int8"]
    study = optuna.load_study(study_name=name, storage=storage)
    assert study.trials[killed.number].state == optuna.trial.TrialState.FAIL
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING))
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retried and retried[0].params == killed.params and retried[0].user_attrs["row"]["status"] == "measured"


def test_an_interrupt_dropped_by_native_code_still_stops_the_search():
    """Ctrl-C raised inside a destructor or a native callback is printed and dropped by Python; tune
    records it anyway and stops at the next trial boundary."""
    import os
    import signal
    import time

    from edgesdk import interrupt

    before = signal.getsignal(signal.SIGINT)
    with interrupt.watch() as flag:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.5)
        except KeyboardInterrupt:
            pass  # what a destructor does with it
        with pytest.raises(KeyboardInterrupt):
            interrupt.check()
    assert flag.is_set() and signal.getsignal(signal.SIGINT) is before


def test_a_device_failure_stops_the_search_and_keeps_the_outputs(tmp_path):
    from edgesdk.errors import DeployError

    with pytest.raises(DeployError, match="cannot connect"):
        run(tmp_path / "t", edgesdk.Store(), devices=["ssh://nobody@127.0.0.1:1"], epochs=0)
    saved = json.loads((tmp_path / "t/results.json").read_text())
    assert any("stopped by an error" in note for note in saved["notes"]) and saved["best"] is None
    assert (tmp_path / "t/report.html").is_file()


def test_a_small_budget_tries_the_precision_predicted_fastest_first(tmp_path):
    """Before anything is measured, the plain precisions are ranked by the profile's predictor: on the host
    roofline int8 (peak 3.84e11 MAC/s) is predicted faster than fp32 (9.6e10), so a budget of one tries it."""
    result = run(tmp_path / "t", edgesdk.Store(), budget=1, epochs=0)
    assert [r["recipe"] for r in result.trials if r["status"] == "measured"] == ["int8"]


def test_a_finished_study_keeps_no_duplicate_queued(tmp_path):
    """Two workers opening a shared study together can both queue the same grid point; once every
    candidate is done, the duplicate is closed as a repeat instead of waiting forever."""
    import optuna

    space = small_space(prune=["none"])
    first = tune(MODEL, "host", tmp_path / "t", space=space, epochs=0)  # no device: estimated, quick
    storage = f"sqlite:///{tmp_path / 't' / 'study.sqlite3'}"
    study = optuna.load_study(study_name=first.study, storage=storage)
    study.enqueue_trial({"structure": "none", "prune": "none", "cluster": "none", "precision": "int8"})
    again = tune(MODEL, "host", tmp_path / "t", space=space, epochs=0)
    assert not optuna.load_study(study_name=first.study, storage=storage).get_trials(
        states=(optuna.trial.TrialState.WAITING,))
    repeat = [r for r in again.trials if r["status"] == "repeat"]
    assert len(repeat) == 1 and repeat[0]["recipe"] == "int8" and again.best == first.best
