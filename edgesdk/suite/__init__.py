"""Automated on-device benchmark runs: a suite of models x recipes x devices, run unattended.

``run_suite`` runs (or joins) a run, writes results.json / results.csv / JUnit XML / index.html and,
given a baseline, applies the regression gates. ``load_results`` reads a run back from the store or
from a results.json, for ``compare``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import OutputError, SuiteError
from ..fileio import check_outputs, make_dirs
from ..progress import Progress
from ..store import Store, shown_url
from . import outputs, runs
from .gates import Comparison, Gates, compare
from .runner import confirm, execute
from .spec import LoadedSuite, load

__all__ = ["Comparison", "Gates", "SuiteRunResult", "compare", "load", "load_results", "run_suite"]
HISTORY = 10   # earlier runs shown in the trend lines


@dataclass
class SuiteRunResult:
    run: dict[str, Any]                       # the run as stored: every cell, from every worker
    counts: dict[str, dict[str, int]]         # what this process did, per device
    comparison: Comparison | None
    paths: dict[str, Path]
    allow_empty: bool = False

    @property
    def measured(self) -> int:
        """Cells of the run that were measured (passed)."""
        return sum(1 for c in self.run["cells"] if c["status"] == "passed")

    @property
    def ok(self) -> bool:
        """No failed cell, at least one measured one (unless ``allow_empty``: a run whose every device was
        skipped measured nothing, and must not pass a CI job), and the gates passed when a baseline was given."""
        return not any(c["status"] == "failed" for c in self.run["cells"]) and \
            (self.measured > 0 or self.allow_empty) and (self.comparison is None or self.comparison.passed)


def check_suite_outputs(loaded: LoadedSuite, outdir: Path, junit: Path | None) -> None:
    """Before anything is measured: no output (results.json/.csv, junit, index.html, the artifacts and
    baseline-models folders) may overwrite the suite file, a model, its data, a tune folder or the profile,
    nor two outputs each other. A baseline results.json in OUTDIR is read before it is replaced (a run gated
    against the previous one in the same folder), so it is not an input here.

    Raises:
        OutputError: naming the output and the input.
    """
    if outdir.exists() and not outdir.is_dir():
        raise OutputError(f"{outdir}: the output must be a folder; this is a file. Choose another -o")
    inputs = [loaded.path]
    for entry in loaded.spec.models:
        inputs.append(loaded.resolve(entry.path) if entry.path is not None else loaded.resolve(entry.tune or ""))
        if entry.data:
            inputs.append(loaded.resolve(entry.data))
    if Path(loaded.spec.profile).is_file():
        inputs.append(Path(loaded.spec.profile))
    files = [outdir / name for name in outputs.NAMES]
    files.append(junit or outdir / "junit.xml")
    check_outputs(files, inputs, folders=[outdir / "artifacts", outdir / "baseline-models"])


def load_results(ref: str, store: Store, *, relative_to: str | None = None) -> dict[str, Any]:
    """A run document from a results.json (or the folder holding one), a run id, or ``latest`` (the
    newest run of the suite that ``relative_to`` belongs to, before it).

    Raises:
        SuiteError: nothing of that name.
    """
    path = Path(ref)
    if path.is_dir():
        path = path / "results.json"
    if path.is_file():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SuiteError(f"{path}: not a suite results.json ({exc})") from exc
        if not isinstance(doc, dict) or doc.get("schema") != "edgesdk.suite-run/1":
            raise SuiteError(f"{path}: not a suite results.json (schema edgesdk.suite-run/1 expected)")
        return doc
    if ref == "latest":
        if relative_to is None:
            raise SuiteError("'latest' is only meaningful as a baseline of `suite run`; name a run id or results.json")
        current = runs.load_run(store, relative_to)
        earlier = runs.previous_run(store, current["suite"], relative_to)
        if earlier is None:
            raise SuiteError(f"no earlier run of suite {current['suite']!r} in {shown_url(store.url)} to compare with")
        return runs.load_run(store, earlier)
    return runs.load_run(store, ref)


def run_suite(suite: str | Path | LoadedSuite, outdir: str | Path, *, store: Store | None = None,
              tag: str | None = None, run_id: str | None = None, serve: list[str] | None = None,
              baseline: str | None = None, gates: Gates | None = None, junit: str | Path | None = None,
              progress: Progress | None = None, allow_empty: bool = False) -> SuiteRunResult:
    """Run every cell of a suite this process serves and write the outputs to ``outdir``.

    Args:
        suite: the suite file (or a loaded one).
        store: the results store; a PostgreSQL store lets processes on several hosts fill one run.
        run_id: join (or create) this run; by default a new run.
        serve: the device names this process measures (default: all of the suite's).
        baseline: a run id, ``latest`` or a results.json to gate this run against.
        allow_empty: a run that measured no cell (every device skipped) is ok; by default it is not.

    Raises:
        SuiteError: an invalid suite, a run id taken by another suite, or an unknown baseline.
    """
    loaded = suite if isinstance(suite, LoadedSuite) else load(suite)
    store = store or Store()
    outdir = Path(outdir)
    check_suite_outputs(loaded, outdir, Path(junit) if junit else None)
    make_dirs(outdir)
    run_id = run_id or runs.new_run_id(loaded.spec.name)
    runs.open_run(store, run_id, loaded, tag)
    base = load_results(baseline, store, relative_to=run_id) if baseline else None
    counts, artifacts = execute(loaded, store, run_id, outdir, serve=serve, progress=progress)
    run = runs.load_run(store, run_id)
    earlier = [r for r in runs.run_ids(store, loaded.spec.name, limit=HISTORY + 1) if r != run_id]
    history = [runs.load_run(store, r) for r in reversed(earlier[:HISTORY])]
    comparison = None
    if base is not None:
        comparison = compare(base, run, gates, history)
        if confirm(loaded, store, run, comparison, base, history, artifacts, outdir, progress):
            run = runs.load_run(store, run_id)
            comparison = compare(base, run, gates, history)
    paths = outputs.write_all(run, outdir, history, comparison, Path(junit) if junit else None)
    return SuiteRunResult(run, counts, comparison, paths, allow_empty)
