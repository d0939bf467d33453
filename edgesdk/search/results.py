"""What a tune leaves behind: every trial read back from the study, the Pareto set and the choice,
written as best.tflite, pareto/, results.json and report.html.

OUTDIR may hold files of the user's (``tune -o .``): tune keeps a manifest of the files it wrote
(``OUTDIR/.edgesdk-tune.json``: the top-level files with their sha256, and pareto/'s names), replaces only
those, and refuses to start where a file of the same name is not one of its own.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import OutputError
from ..fileio import dumps, sha256_file, write_atomic
from ..quality import Quality
from . import space as spacemod
from .objectives import KEPT, Constraints, choose, gains, objective_value, pareto

MANIFEST = ".edgesdk-tune.json"     # in OUTDIR: the files tune wrote, {"files": {name: sha256}, "pareto": [...]}
LEGACY_MANIFEST = ".edgesdk-pareto.json"   # before 0.x: pareto/'s names only
REPLACED = ("best.tflite", "results.json", "report.html")   # the top-level files each run replaces
OUTPUTS = ("best.tflite", "results.json", "report.html", "study.sqlite3", "pareto", "candidates")


@dataclass
class TuneResult:
    """What a tune produced: every trial (kept, rejected or failed), the Pareto set and the choice."""

    outdir: str
    study: str
    objectives: list[str]
    trials: list[dict[str, Any]]
    pareto: list[int]
    best: int | None
    best_meets_constraints: bool
    devices: list[str]
    new_measurements: int
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    budget: int | None = None
    baseline: dict[str, Any] | None = None     # the original model, measured like a candidate
    beats_original: bool | None = None         # False: no candidate is better than the original on an objective
    limits: dict[str, float] = field(default_factory=dict)   # what the report marks: quality (its unit), latency_ms
    estimate_within: float | None = None       # estimated latencies (no device, uncalibrated): within this factor

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def trial(self, number: int) -> dict[str, Any]:
        return next(t for t in self.trials if t["number"] == number)


def collect(study: Any, out: Path, objectives: list[str], devices: list[str], new_measurements: int,
            interrupted: bool, space: spacemod.Space, constraints: Constraints, predictor: Any,
            baseline: dict[str, Any] | None = None) -> TuneResult:
    """Every trial of the study as a row, judged by this run's limits (a resumed study may change them),
    each kept one with its change against ``baseline`` (the original); the best is chosen among those
    that beat the original on an objective."""
    import optuna

    trials = []
    for t in study.get_trials(deepcopy=False):
        row = dict(t.user_attrs.get("row") or {"number": t.number, "recipe": None, "status": "failed",
                                               "reason": f"trial {t.state.name.lower()}"})
        if t.state == optuna.trial.TrialState.FAIL and row.get("status") in KEPT:
            row["status"] = "failed"
        if row.get("status") in KEPT:
            row["violations"] = constraints.violations(row)
        trials.append(row)
    kept = [r for r in trials if r.get("status") in KEPT]
    front = pareto(kept, objectives)
    notes = list(space.notes)
    eligible, beats = kept, None
    if baseline is not None:
        baseline = with_reference_quality(baseline, kept)
        if baseline.get("status") in KEPT:
            baseline["violations"] = constraints.violations(baseline)
            for r in kept:
                r["versus"] = versus(r, baseline)
            eligible = [r for r in kept if r.get("sha256") != baseline.get("sha256") and gains(r, baseline, objectives)]
            beats = bool(eligible) if kept else None
            if kept and not eligible:
                notes.append(f"nothing beats the original model: no candidate is {_better(objectives)} than it "
                             "(by 1 % in size, 3 % in latency or energy); keep the original (no best.tflite)")
    best, meets = choose(eligible, objectives, constraints.bounded())
    basis = next(((r.get("target") or {}).get("basis") for r in kept if (r.get("target") or {}).get("basis")), None)
    if not devices and basis:
        notes.append(f"no device: every latency is ESTIMATED ({basis}) for profile {predictor.profile}, "
                     "not measured")
    elif not devices:
        kind = "calibrated" if predictor.calibrated else "uncalibrated roofline"
        notes.append(f"no device: every latency is ESTIMATED by the {kind} predictor of profile "
                     f"{predictor.profile} ({predictor.uncertainty()}), not measured")
    hardware = {tuple((r.get("device") or {}).get(k) for k in ("machine", "cpu_model", "cores", "ram_bytes"))
                for r in kept if r.get("device")}
    if len(hardware) > 1:
        notes.append("the devices differ in hardware: latencies measured on different devices are compared")
    if best is None and not kept:
        notes.append("no candidate could be measured")
    elif best is not None and not meets:
        notes.append("no candidate meets every constraint: best.tflite is the closest (fewest violations)")
    return TuneResult(outdir=str(out), study=study.study_name, objectives=objectives, trials=trials, pareto=front,
                      best=best, best_meets_constraints=meets, devices=devices, new_measurements=new_measurements,
                      interrupted=interrupted, notes=notes, baseline=baseline, beats_original=beats,
                      limits=plotted_limits(constraints, kept),
                      estimate_within=None if devices else predictor.within if not predictor.calibrated or basis
                      else None)


def plotted_limits(constraints: Constraints, kept: list[dict[str, Any]]) -> dict[str, float]:
    """The limits in the units the report plots: the lowest accuracy accepted (from --max-accuracy-drop
    and --min-accuracy), or the SQNR floor where SQNR is the quality; the latency limit."""
    out: dict[str, float] = {}
    found = next((q for r in kept if (q := Quality.from_dict(r.get("quality"))) is not None), None)
    if found is not None and found.metric == "accuracy" and found.before is not None:
        floors = [v for v in (None if constraints.max_accuracy_drop is None else
                              found.before - constraints.max_accuracy_drop, constraints.min_accuracy) if v is not None]
        if floors:
            out["quality"] = max(floors)
    elif found is not None and found.top1_agreement is None and found.metric == "fidelity" and \
            constraints.min_sqnr_db is not None:
        out["quality"] = constraints.min_sqnr_db
    if constraints.max_latency_ms is not None:
        out["latency_ms"] = constraints.max_latency_ms
    return out


def with_reference_quality(baseline: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The original's quality: the reference every candidate was compared with (its accuracy on the labels,
    or, for fidelity, the original itself: top-1 agreement 1)."""
    found = next((q for r in rows if (q := Quality.from_dict(r.get("quality"))) is not None), None)
    if found is None:
        return baseline
    reference = Quality(found.metric, found.samples, before=found.before, after=found.before,
                        top1_agreement=1.0 if found.top1_agreement is not None else None, inputs=found.inputs)
    return {**baseline, "quality": {**reference.to_dict(), "reference": True}}


def versus(row: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float | None]:
    """A kept row against the original: how many times smaller and faster, and the quality gained (negative:
    lost; accuracy or top-1 agreement, in its own unit)."""
    def ratio(name: str) -> float | None:
        try:
            ours, theirs = objective_value(name, row), objective_value(name, baseline)
        except (KeyError, TypeError):
            return None
        return theirs / ours if ours > 0 and theirs < float("inf") else None

    ours, theirs = Quality.from_dict(row.get("quality")), Quality.from_dict(baseline.get("quality"))
    delta = None
    if ours is not None and theirs is not None and ours.metric == theirs.metric:
        if ours.metric != "fidelity" and ours.after is not None and theirs.after is not None:
            delta = ours.score - theirs.score
        elif ours.top1_agreement is not None:
            delta = ours.top1_agreement - 1.0
    return {"smaller": ratio("size"), "faster": ratio("latency"), "quality_delta": delta}


def _better(objectives: list[str]) -> str:
    words = {"size": "smaller", "latency": "faster", "energy": "less energy-hungry"}
    shown = [words[o] for o in objectives if o in words]
    return " or ".join(shown) if shown else "better"


def _manifest(out: Path) -> dict[str, Any]:
    """The manifest of OUTDIR (empty when there is none or it cannot be read)."""
    try:
        doc = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict):
        doc = {}
    files = doc.get("files")
    files = files if isinstance(files, dict) else {}
    listed = doc.get("pareto") if isinstance(doc.get("pareto"), list) else None
    if listed is None:
        try:
            listed = json.loads((out / LEGACY_MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            listed = []
    names = [str(n) for n in listed] if isinstance(listed, list) else []
    return {"files": {str(k): str(v) for k, v in files.items()}, "pareto": names}


def _ours(pareto_dir: Path, out: Path) -> set[str]:
    """The files of pareto/ that tune wrote: listed in its manifest, or (from before the manifest) a copy
    of the candidate of the same name."""
    names = set(_manifest(out)["pareto"])
    for file in pareto_dir.glob("*.tflite"):
        twin = out / "candidates" / file.name
        if file.name not in names and twin.is_file() and twin.read_bytes() == file.read_bytes():
            names.add(file.name)
    return {n for n in names if "/" not in n and n not in ("", ".", "..")}


def _wrote(out: Path, name: str, recorded: dict[str, str]) -> bool:
    """Whether OUTDIR/name is a file tune wrote: its sha256 is the manifest's, or (a folder from before the
    manifest) it is what tune writes there: a copy of a candidate, tune's results or tune's report."""
    path = out / name
    if recorded.get(name) is not None and sha256_file(path) == recorded[name]:
        return True
    if name == "best.tflite":
        content = path.read_bytes()
        folder = out / "candidates"
        return folder.is_dir() and any(c.is_file() and c.stat().st_size == len(content) and c.read_bytes() == content
                                       for c in folder.glob("*.tflite"))
    head = path.read_bytes()[:1 << 20].decode("utf-8", errors="replace")
    if name == "report.html":
        return "<title>edgesdk tune · " in head
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and {"study", "objectives", "trials", "pareto"} <= doc.keys()


def refuse_overwriting_input(out: Path, inputs: list[Any]) -> None:
    """No input (the model, the data) may be one of the files tune writes into OUTDIR (best.tflite,
    pareto/, ...), be inside one of them, or hold them."""
    for given in inputs:
        target = Path(given).resolve()
        for name in OUTPUTS:
            written = (out / name).resolve()
            if target == written or target.is_relative_to(written) or written.is_relative_to(target):
                raise OutputError(f"{out}: tune writes {name} there, which would overwrite the input {given}; "
                                  "choose another -o")


def check_outdir(out: Path) -> None:
    """Refuse an OUTDIR where tune would replace a file that is not its own (``tune -o .`` in a folder with
    the user's results.json): before any trial.

    Raises:
        OutputError: naming the file.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: the output must be a folder; this is a file. Choose another -o")
    recorded = _manifest(out)["files"]
    for name in REPLACED:
        path = out / name
        if path.is_symlink() or (path.exists() and not path.is_file()):
            raise OutputError(f"{path}: tune writes a file there and this is not a regular file; "
                              "choose another -o (a new or empty folder)")
        try:
            ours = not path.exists() or _wrote(out, name, recorded)
        except OSError as exc:
            raise OutputError(f"{path}: cannot be read ({exc.strerror}); tune would replace it") from exc
        if not ours:
            raise OutputError(f"{path}: this file was not written by edgesdk tune and tune would replace it; "
                              "choose another -o (a new or empty folder) or move the file")


def write_outputs(result: TuneResult, out: Path) -> None:
    """best.tflite, pareto/, results.json and report.html, each replaced atomically."""
    from .report import write_html

    pareto_dir = out / "pareto"
    pareto_dir.mkdir(exist_ok=True)
    for name in _ours(pareto_dir, out):
        (pareto_dir / name).unlink(missing_ok=True)
    elsewhere, written = [], []
    for number in result.pareto:
        row = result.trial(number)
        if Path(row["path"]).is_file():
            shutil.copyfile(row["path"], pareto_dir / Path(row["path"]).name)
            written.append(Path(row["path"]).name)
        else:
            elsewhere.append(row["recipe"])
    recorded = _manifest(out)["files"]
    write_atomic(out / MANIFEST, json.dumps({"files": recorded, "pareto": sorted(written)}).encode())
    best_file = out / "best.tflite"
    if result.best is not None and Path(result.trial(result.best)["path"]).is_file():
        write_atomic(best_file, Path(result.trial(result.best)["path"]).read_bytes())
    else:
        if result.best is not None:
            elsewhere.append(result.trial(result.best)["recipe"])
        best_file.unlink(missing_ok=True)
    if elsewhere:  # made by a worker on another host: its file is there, not here
        result.notes.append(f"made by another worker, not copied here: {', '.join(sorted(set(elsewhere)))} "
                            "(see each trial's path in results.json)")
    write_atomic(out / "results.json", dumps(result.to_dict(), indent=2, default=str).encode())
    write_html(result, out / "report.html")
    recorded = {name: sha256_file(out / name) for name in REPLACED if (out / name).is_file()}
    write_atomic(out / MANIFEST, json.dumps({"files": recorded, "pareto": sorted(written)}).encode())
    (out / LEGACY_MANIFEST).unlink(missing_ok=True)
