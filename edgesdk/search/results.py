"""What a tune leaves behind: every trial read back from the study, the Pareto set and the choice,
written as best.tflite, pareto/, results.json and report.html.

``pareto/`` may hold files of the user's: tune keeps a manifest of the files it wrote there
(``OUTDIR/.edgesdk-pareto.json``) and replaces only those.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..fileio import write_atomic
from . import space as spacemod
from .objectives import KEPT, Constraints, choose, pareto

MANIFEST = ".edgesdk-pareto.json"   # in OUTDIR: the files tune wrote into pareto/
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def trial(self, number: int) -> dict[str, Any]:
        return next(t for t in self.trials if t["number"] == number)


def collect(study: Any, out: Path, objectives: list[str], devices: list[str], new_measurements: int,
            interrupted: bool, space: spacemod.Space, constraints: Constraints, predictor: Any) -> TuneResult:
    """Every trial of the study as a row, judged by this run's limits (a resumed study may change them)."""
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
    best, meets = choose(kept, objectives, constraints.bounded())
    notes = list(space.notes)
    basis = next(((r.get("target") or {}).get("basis") for r in kept if (r.get("target") or {}).get("basis")), None)
    if not devices and basis:
        notes.append(f"no device: every latency is ESTIMATED ({basis}) for profile {predictor.profile}, "
                     "not measured")
    elif not devices:
        kind = "calibrated" if predictor.calibrated else "uncalibrated roofline"
        notes.append(f"no device: every latency is ESTIMATED by the {kind} predictor of profile "
                     f"{predictor.profile}, not measured")
    hardware = {tuple((r.get("device") or {}).get(k) for k in ("machine", "cpu_model", "cores", "ram_bytes"))
                for r in kept if r.get("device")}
    if len(hardware) > 1:
        notes.append("the devices differ in hardware: latencies measured on different devices are compared")
    if best is None:
        notes.append("no candidate could be measured")
    elif not meets:
        notes.append("no candidate meets every constraint: best.tflite is the closest (fewest violations)")
    return TuneResult(outdir=str(out), study=study.study_name, objectives=objectives, trials=trials, pareto=front,
                      best=best, best_meets_constraints=meets, devices=devices, new_measurements=new_measurements,
                      interrupted=interrupted, notes=notes)


def _ours(pareto_dir: Path, out: Path) -> set[str]:
    """The files of pareto/ that tune wrote: listed in its manifest, or (from before the manifest) a copy
    of the candidate of the same name."""
    manifest = out / MANIFEST
    names: set[str] = set()
    try:
        names = {str(n) for n in json.loads(manifest.read_text(encoding="utf-8"))}
    except (OSError, ValueError, TypeError):
        pass
    for file in pareto_dir.glob("*.tflite"):
        twin = out / "candidates" / file.name
        if file.name not in names and twin.is_file() and twin.read_bytes() == file.read_bytes():
            names.add(file.name)
    return {n for n in names if "/" not in n and n not in ("", ".", "..")}


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
    write_atomic(out / MANIFEST, json.dumps(sorted(written)).encode())
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
    write_atomic(out / "results.json", json.dumps(result.to_dict(), indent=2, default=str).encode())
    write_html(result, out / "report.html")
