"""`tune`: search compression candidates for a profile, measure them on a device, keep the best.

Each Optuna trial is one candidate of the space (:mod:`edgesdk.search.space`): compress it (the
profile's precision, operator and memory rules refuse it before any device time), check the memory
constraint against the .tflite's weights and peak activations, evaluate its quality, then measure it
through the agent (the results store answers repeats). The study lives in ``OUTDIR/study.sqlite3`` (or
``storage``), so running the same command again resumes it: trials already done are not repeated.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import EdgeSdkError, RecipeError
from ..profiles import Profile, load_profile
from . import predict
from . import space as spacemod

log = logging.getLogger(__name__)

OBJECTIVES: dict[str, Literal["maximize", "minimize"]] = {"accuracy": "maximize", "latency": "minimize",
                                                          "size": "minimize", "energy": "minimize"}


@dataclass(frozen=True)
class Constraints:
    """Limits a candidate must meet to be chosen. Quality limits need evaluation data."""

    max_accuracy_drop: float | None = None
    min_accuracy: float | None = None
    max_latency_ms: float | None = None
    max_memory_bytes: int | None = None

    def bounded(self) -> frozenset[str]:
        """The objectives these limits already bound."""
        out = set()
        if self.max_accuracy_drop is not None or self.min_accuracy is not None:
            out.add("accuracy")
        if self.max_latency_ms is not None:
            out.add("latency")
        return frozenset(out)

    def violations(self, row: dict[str, Any]) -> list[str]:
        """What ``row`` (a trial's result) breaks, as sentences; empty when it meets every limit."""
        out = []
        quality = row.get("quality") or {}
        if self.max_accuracy_drop is not None and "before" in quality:
            drop = quality["before"] - quality["after"] if quality["metric"] == "accuracy" else \
                quality["after"] - quality["before"]
            if drop > self.max_accuracy_drop:
                out.append(f"{quality['metric']} drop {drop:.4f} > {self.max_accuracy_drop}")
        if self.min_accuracy is not None and quality.get("metric") == "accuracy" and \
                quality["after"] < self.min_accuracy:
            out.append(f"accuracy {quality['after']:.4f} < {self.min_accuracy}")
        if self.max_latency_ms is not None and row.get("latency_ms") is not None and \
                row["latency_ms"] > self.max_latency_ms:
            out.append(f"latency {row['latency_ms']:.3f} ms > {self.max_latency_ms} ms")
        if self.max_memory_bytes is not None and row.get("memory_bytes", 0) > self.max_memory_bytes:
            out.append(f"memory {row['memory_bytes']:,} B > {self.max_memory_bytes:,} B")
        return out


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def trial(self, number: int) -> dict[str, Any]:
        return next(t for t in self.trials if t["number"] == number)


def objective_value(name: str, row: dict[str, Any]) -> float:
    """The number Optuna optimizes for one objective of a finished candidate."""
    if name == "accuracy":
        q = row.get("quality") or {}
        if q.get("metric") == "accuracy":
            return float(q["after"])
        if "top1_agreement" in q:
            return float(q["top1_agreement"])
        if q.get("metric") == "mse":
            return -float(q["after"])
        return float(q.get("sqnr_db") or 0.0)
    if name == "latency":
        return float(row["latency_ms"])
    if name == "size":
        return float(row["model_bytes"])
    if name == "energy":
        energy = row.get("energy_mj")
        return float(energy) if energy is not None else float("inf")
    raise RecipeError(f"unknown objective {name!r}; expected: {', '.join(OBJECTIVES)}")


def _pareto(rows: list[dict[str, Any]], objectives: list[str]) -> list[int]:
    """Trial numbers on the Pareto front of the kept rows (non-dominated on every objective)."""
    signs = [1.0 if OBJECTIVES[o] == "minimize" else -1.0 for o in objectives]
    vecs = {r["number"]: [s * objective_value(o, r) for s, o in zip(signs, objectives, strict=True)] for r in rows}

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))

    return sorted(n for n, v in vecs.items() if not any(dominates(w, v) for m, w in vecs.items() if m != n))


def _choose(rows: list[dict[str, Any]], objectives: list[str],
            constrained: frozenset[str] = frozenset()) -> tuple[int | None, bool]:
    """The best measured row: among those meeting every constraint, best on the first objective that no
    constraint already bounds (with --max-accuracy-drop, the fastest model within that drop), ties by the
    others in order; if none meets them, the one with the fewest violations."""
    if not rows:
        return None, False
    order = [o for o in objectives if o not in constrained] + [o for o in objectives if o in constrained]

    def key(r: dict[str, Any]) -> tuple[float, ...]:
        return tuple((1.0 if OBJECTIVES[o] == "minimize" else -1.0) * objective_value(o, r) for o in order)

    meeting = [r for r in rows if not r["violations"]]
    if meeting:
        return min(meeting, key=key)["number"], True
    return min(rows, key=lambda r: (len(r["violations"]), key(r)))["number"], False


def tune(model: str | os.PathLike[str], profile: str | Profile, outdir: str | os.PathLike[str], *,
         devices: list[str] | None = None, data: str | os.PathLike[str] | None = None,
         train_data: str | os.PathLike[str] | None = None, constraints: Constraints | None = None,
         objectives: list[str] | None = None, budget: int | None = None, time_budget_s: float | None = None,
         storage: str | None = None, study_name: str | None = None, seed: int = 0, epochs: int = 1,
         settings: Any = None, store: Any = None, space: spacemod.Space | None = None,
         progress: Callable[[dict[str, Any]], None] | None = None) -> TuneResult:
    """Search compressions of ``model`` for ``profile``, measured on ``devices``; write OUTDIR.

    Several devices measure candidates in parallel, each one at a time. With no device, latency is
    predicted by the profile's predictor (calibrated by ``edgesdk calibrate``) and flagged estimated.

    Writes ``best.tflite``, ``pareto/*.tflite``, ``candidates/*.tflite``, ``results.json`` and
    ``report.html``. ``budget`` is the total number of trials of the study (trials of an earlier run
    count); with neither ``budget`` nor ``time_budget_s`` every candidate of the space is tried once.

    Raises:
        EdgeSdkError: bad input (model, profile, data, objectives) before any trial; device errors
            stop the search with what was measured kept.
    """
    import optuna

    from .. import models
    from ..compress import compress
    from ..inspect import analyze
    from ..measure import bench
    from ..store import Store

    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    source = models.identify(model)
    devices = list(dict.fromkeys(devices or []))
    objectives = objectives or (["accuracy", "latency"] if data is not None else ["latency", "size"])
    for name in objectives:
        if name not in OBJECTIVES:
            raise RecipeError(f"unknown objective {name!r}; expected: {', '.join(OBJECTIVES)}")
    if "accuracy" in objectives and data is None:
        raise RecipeError("the accuracy objective needs evaluation data (--data)")
    constraints = constraints or Constraints()
    space = space or spacemod.build(prof)
    if budget is not None and budget < 1:
        raise RecipeError(f"budget must be at least 1 trial. Received: {budget}")
    store = store if store is not None else Store()
    out = Path(outdir)
    (out / "candidates").mkdir(parents=True, exist_ok=True)
    storage = storage or f"sqlite:///{(out / 'study.sqlite3').resolve()}"
    study_name = study_name or f"{source.path.stem}-{source.sha256[:8]}-{prof.name}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler: optuna.samplers.BaseSampler
    if len(objectives) > 1:
        population = max(4, min(20, budget or len(space), len(space) // 2))
        sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, len(space)))
    study = _open_study(optuna, study_name, storage, sampler, [OBJECTIVES[o] for o in objectives])
    if study.user_attrs.get("objectives", objectives) != objectives:
        raise RecipeError(f"study {study_name!r} was run with objectives {study.user_attrs['objectives']}; "
                          f"use those, or another --study / OUTDIR")
    study.set_user_attr("objectives", objectives)
    claims = _Claims(storage, study_name)
    predictor = predict.load(prof)
    pool: queue.Queue[str] = queue.Queue()
    for name in devices:
        pool.put(name)
    host_lock = threading.Lock()  # compression (TensorFlow, Keras) runs one at a time; devices in parallel
    counter_lock = threading.Lock()
    new_measurements = 0
    started = time.monotonic()
    total = min(budget, len(space)) if budget is not None else len(space)
    tried = {tuple(sorted(t.params.items())) for t in study.get_trials(deepcopy=False)}
    if total >= len(space):  # the whole space fits in the budget: try every candidate once, in grid order
        first = space.grid()
    else:
        # Precision sets latency and most of the accuracy; unstructured sparsity and clustering change
        # neither the speed nor the raw size on most runtimes. So each precision is tried plain first,
        # ranked by the predictor (fastest first) before anything is measured; the sampler explores the rest.
        plain = [c for c in space.grid() if c.prune == spacemod.NONE and c.cluster == spacemod.NONE
                 and c.structure == spacemod.NONE and tuple(sorted(c.params().items())) not in tried]
        if len(plain) > 1:
            rank = _predicted_ranks(source, prof, predictor, [c.precision for c in plain])
            plain.sort(key=lambda c: rank[c.precision])
        first = plain[:max(0, total - len(tried))]
    for cand in first:
        if tuple(sorted(cand.params().items())) not in tried:
            study.enqueue_trial(cand.params(), skip_if_exists=True)

    def done_rows() -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for t in study.get_trials(deepcopy=False):
            row = t.user_attrs.get("row")
            if row and t.state != optuna.trial.TrialState.RUNNING and "repeat_of" not in row:
                rows.setdefault(row["recipe"], row)
        return rows

    def objective(trial: optuna.Trial) -> tuple[float, ...] | float:
        if ctrl_c.is_set():  # an interrupt swallowed somewhere (see _catch_ctrl_c): no new trial
            raise KeyboardInterrupt
        cand = spacemod.Candidate(**{dim: trial.suggest_categorical(dim, list(values))
                                     for dim, values in space.dimensions().items()})
        row: dict[str, Any] = {"number": trial.number, "recipe": cand.recipe, "params": cand.params()}
        earlier = done_rows().get(cand.recipe)
        owner = None if earlier is not None else claims.claim(cand.recipe, trial.number)
        if owner is not None and owner != trial.number and _failed(study, owner):
            owner = claims.take_over(cand.recipe, trial.number)  # its worker died: try it again here
        if earlier is not None or owner != trial.number:
            # Proposed again, here or by another worker: no work, and no budget spent.
            trial.set_user_attr("row", {**(earlier or row), "number": trial.number, "status": "repeat",
                                        "repeat_of": earlier["number"] if earlier else owner,
                                        "reason": "already tried"})
            raise optuna.TrialPruned("already tried")
        try:
            row.update(run_candidate(cand))
        except BaseException:
            claims.release(cand.recipe)  # a failed or interrupted trial leaves the candidate to be tried again
            raise
        trial.set_user_attr("row", row)
        if row["status"] != "measured":
            raise optuna.TrialPruned(row["reason"])
        values = tuple(objective_value(o, row) for o in objectives)
        return values if len(values) > 1 else values[0]

    def run_candidate(cand: spacemod.Candidate) -> dict[str, Any]:
        nonlocal new_measurements
        path = out / "candidates" / f"{cand.slug}.tflite"
        with host_lock:
            try:
                result = compress(source.path, prof, cand.recipe, path, data, train_data=train_data, epochs=epochs,
                                  seed=seed, store=store)
            except RecipeError as exc:  # the profile refuses it (precision, operators, memory): no device time
                return {"status": "rejected", "reason": str(exc), "stage": "compress"}
            report = analyze(path)
        memory = (report.weight_bytes if prof.memory.weights_in_ram else 0) + report.peak_activation_bytes
        predicted = predictor.predict_ms(report, prof)
        target = result.target or {}
        memory_what = "weights + peak activations"
        if target.get("ram_bytes") is not None:  # MCU/NPU: the real arena, and the target's own estimate
            memory, memory_what = target["ram_bytes"], f"{target['target']} RAM (arena)"
        if target.get("latency_ms") is not None:
            predicted = target["latency_ms"]
        facts = {"path": str(path), "sha256": result.sha256, "model_bytes": result.model_bytes,
                 "gzip_bytes": result.gzip_bytes, "weight_entropy_bytes": result.weight_entropy_bytes,
                 "memory_bytes": memory, "quality": result.quality,
                 "precision": result.precision, "warnings": result.warnings, "predicted_ms": predicted,
                 "predictor_calibrated": predictor.calibrated or target.get("latency_ms") is not None,
                 "flash_bytes": target.get("flash_bytes"), "target": target or None}
        if constraints.max_memory_bytes is not None and memory > constraints.max_memory_bytes:
            return {**facts, "status": "rejected", "stage": "memory",
                    "reason": f"{memory_what} {memory:,} B > --max-memory {constraints.max_memory_bytes:,} B"}
        if constraints.max_latency_ms is not None and predictor.calibrated and devices and \
                predicted > 2 * constraints.max_latency_ms:
            return {**facts, "status": "rejected", "stage": "predicted",
                    "reason": f"predicted p50 {predicted:.4g} ms (estimated) is over twice --max-latency-ms; "
                              "not measured"}
        if not devices:  # no device: the calibrated (or roofline) prediction stands in, flagged
            facts.update(latency_ms=predicted, estimated=True, energy_mj=target.get("energy_mj"), device=None,
                         cached=False, runtime=None, latency=None)
            facts["violations"] = constraints.violations(facts)
            return {**facts, "status": "measured", "reason": None}
        name = pool.get()  # one measurement at a time per device
        try:
            m = bench(path, name, settings, store=store)
        finally:
            pool.put(name)
        with counter_lock:
            new_measurements += 0 if m.cached else 1
        doc = m.document
        power = doc.get("power") or {}
        facts.update(latency_ms=doc["latency"]["p50_ms"] if doc["latency"]["p50_ms"] is not None
                     else doc["latency"]["mean_ms"], latency=doc["latency"], measured_memory=doc["memory"],
                     energy_mj=power.get("energy_per_inference_mj"), energy_estimated=bool(power.get("estimated")),
                     measurement_key=m.key, cached=m.cached, device=doc["device"], runtime=doc["runtime"],
                     measured_on=name, window=[doc.get("started_at"), doc.get("finished_at")], estimated=False)
        facts["violations"] = constraints.violations(facts)
        return {**facts, "status": "measured", "reason": None}

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if ctrl_c.is_set():
            raise KeyboardInterrupt
        distinct = len(done_rows())
        if progress is not None:
            rows = [r for r in done_rows().values() if r.get("status") == "measured"]
            best, _ = _choose(rows, objectives, constraints.bounded())
            progress({"done": min(distinct, total), "total": total, "row": trial.user_attrs.get("row"),
                      "best": next((r for r in rows if r["number"] == best), None),
                      "elapsed_s": time.monotonic() - started, "time_budget_s": time_budget_s})
        if distinct >= total:
            study.stop()

    interrupted = False
    ctrl_c = threading.Event()
    stopped: EdgeSdkError | None = None
    if len(done_rows()) < total:
        # The budget counts distinct candidates: a proposal already tried costs no work and no budget.
        # Samplers can keep proposing known points of a small space; five times the budget is the cap.
        try:
            with _catch_ctrl_c(ctrl_c):
                study.optimize(objective, n_trials=5 * total, timeout=time_budget_s, callbacks=[callback],
                               catch=(), gc_after_trial=False, n_jobs=max(1, len(devices)))
        except KeyboardInterrupt:
            interrupted = True
            log.warning("interrupted: keeping the %d candidates finished so far", len(done_rows()))
        except EdgeSdkError as exc:  # a device or the agent failed: write what was finished, then say why
            stopped = exc
    result = _collect(study, out, objectives, devices, new_measurements, interrupted, space, constraints, predictor)
    if stopped is not None:
        result.notes.append(f"stopped by an error: {stopped}")
    _write_outputs(result, out)
    if stopped is not None:
        raise stopped
    return result


@contextlib.contextmanager
def _catch_ctrl_c(flag: threading.Event) -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt wherever Python is, and where that is a destructor or a callback
    from native code (TensorFlow has many), it is printed and dropped: the search would go on. So the
    interrupt is also recorded, and the search checks the flag before and after every trial. Only the
    main thread can install a handler; elsewhere Python's own stays."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        flag.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _predicted_ranks(source: Any, profile: Profile, predictor: Any, precisions: list[str]) -> dict[str, float]:
    """Predicted latency of the float model at each precision (the predictor's cost per precision class
    applied to its MACs and bytes), from one fp32 conversion; nothing is measured."""
    import dataclasses

    from .. import models
    from ..inspect import analyze
    from ..techniques import Step
    from ..techniques.convert import convert

    report = analyze(source.path, data=convert(models.load_source(source), Step("fp32"), None))
    return {p: predictor.predict_ms(dataclasses.replace(report, precision=p.partition("=")[0]), profile)
            for p in precisions}


def _open_study(optuna: Any, name: str, storage: str, sampler: Any, directions: list[str]) -> Any:
    """Create or load the study. Workers starting together race to create Optuna's tables in a fresh
    database (one of them gets a unique-key error); the loser tries again and finds them made."""
    import sqlalchemy as sa

    for attempt in range(5):
        try:
            return optuna.create_study(study_name=name, storage=storage, load_if_exists=True, sampler=sampler,
                                       directions=directions)
        except ValueError as exc:
            raise RecipeError(f"study {name!r} in {storage} has other objectives: {exc}") from exc
        except sa.exc.SQLAlchemyError as exc:
            if attempt == 4:
                raise RecipeError(f"cannot open study {name!r} in {storage}: {exc}") from exc
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def _failed(study: Any, number: int) -> bool:
    import optuna

    return any(t.number == number and t.state == optuna.trial.TrialState.FAIL
               for t in study.get_trials(deepcopy=False))


def _finished(study: Any) -> int:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _collect(study: Any, out: Path, objectives: list[str], devices: list[str], new_measurements: int,
             interrupted: bool, space: spacemod.Space, constraints: Constraints, predictor: Any) -> TuneResult:
    import optuna

    bounded = constraints.bounded()
    trials = []
    for t in study.get_trials(deepcopy=False):
        row = dict(t.user_attrs.get("row") or {"number": t.number, "recipe": None, "status": "failed",
                                               "reason": f"trial {t.state.name.lower()}"})
        if t.state == optuna.trial.TrialState.FAIL and row.get("status") == "measured":
            row["status"] = "failed"
        if row.get("status") == "measured":  # judged by this run's limits: a resumed study may change them
            row["violations"] = constraints.violations(row)
        trials.append(row)
    kept = [r for r in trials if r.get("status") == "measured"]
    pareto = _pareto(kept, objectives)
    best, meets = _choose(kept, objectives, bounded)
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
    return TuneResult(outdir=str(out), study=study.study_name, objectives=objectives, trials=trials, pareto=pareto,
                      best=best, best_meets_constraints=meets, devices=devices, new_measurements=new_measurements,
                      interrupted=interrupted, notes=notes)


def _write_outputs(result: TuneResult, out: Path) -> None:
    from .report import write_html

    pareto_dir = out / "pareto"
    if pareto_dir.exists():
        shutil.rmtree(pareto_dir)
    pareto_dir.mkdir()
    elsewhere = []
    for number in result.pareto:
        row = result.trial(number)
        if Path(row["path"]).is_file():
            shutil.copyfile(row["path"], pareto_dir / Path(row["path"]).name)
        else:
            elsewhere.append(row["recipe"])
    best_file = out / "best.tflite"
    if result.best is not None and Path(result.trial(result.best)["path"]).is_file():
        tmp = out / ".best.tflite.tmp"
        shutil.copyfile(result.trial(result.best)["path"], tmp)
        os.replace(tmp, best_file)
    else:
        if result.best is not None:
            elsewhere.append(result.trial(result.best)["recipe"])
        if best_file.exists():
            best_file.unlink()
    if elsewhere:  # made by a worker on another host: its file is there, not here
        result.notes.append(f"made by another worker, not copied here: {', '.join(sorted(set(elsewhere)))} "
                            "(see each trial's path in results.json)")
    tmp_json = out / ".results.json.tmp"
    tmp_json.write_text(json.dumps(result.to_dict(), indent=2, default=str))
    os.replace(tmp_json, out / "results.json")
    write_html(result, out / "report.html")


__all__ = ["OBJECTIVES", "Constraints", "TuneResult", "tune"]


class _Claims:
    """Which worker took which candidate, in a table of the study's own database, so that workers on
    several hosts sharing one study (PostgreSQL) never compress and measure a candidate twice."""

    def __init__(self, url: str, study: str) -> None:
        import sqlalchemy as sa

        self.study = study
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.table = sa.Table("edgesdk_claims", sa.MetaData(), sa.Column("study", sa.String(512), primary_key=True),
                              sa.Column("recipe", sa.String(512), primary_key=True),
                              sa.Column("trial", sa.Integer, nullable=False))
        try:
            self.table.create(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:  # another worker created it at the same moment
            pass

    def claim(self, recipe: str, trial: int) -> int:
        """The trial that owns ``recipe``: ``trial`` itself if it got there first."""
        import sqlalchemy as sa

        try:
            with self.engine.begin() as conn:
                conn.execute(self.table.insert().values(study=self.study, recipe=recipe, trial=trial))
            return trial
        except sa.exc.IntegrityError:
            with self.engine.connect() as conn:
                owner = conn.execute(sa.select(self.table.c.trial).where(
                    self.table.c.study == self.study, self.table.c.recipe == recipe)).scalar()
            return int(owner) if owner is not None else trial

    def take_over(self, recipe: str, trial: int) -> int:
        import sqlalchemy as sa

        with self.engine.begin() as conn:
            conn.execute(sa.update(self.table).where(self.table.c.study == self.study, self.table.c.recipe == recipe)
                         .values(trial=trial))
        return trial

    def release(self, recipe: str) -> None:
        import sqlalchemy as sa

        with self.engine.begin() as conn:
            conn.execute(sa.delete(self.table).where(self.table.c.study == self.study, self.table.c.recipe == recipe))
