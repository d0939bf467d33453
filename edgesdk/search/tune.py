"""`tune`: search compression candidates for a profile, measure them on devices, keep the best.

An explicit ask/tell loop over the Optuna study: one worker per device (the first in the calling
thread), each asking the study for a candidate, running it (:mod:`edgesdk.search.trial`: compress,
check, measure or estimate) and telling the result. Asking and telling go through one lock, so two
workers never take the same queued trial. Each trial beats a heartbeat while it runs
(:mod:`edgesdk.search.study`): a worker that died leaves a trial that is failed and queued again, and
its claim (:mod:`edgesdk.claims`) passes to the retry. The study lives in
``OUTDIR/study.sqlite3`` (or ``storage``), so the same command resumes it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from device_agent.protocol import OFFLOADED

from .. import interrupt
from ..claims import Claims
from ..errors import EdgeSdkError, RecipeError, StoreError
from ..fileio import make_dirs
from ..kinds import TrialStatus
from ..measure import with_accelerator
from ..profiles import Profile, load_profile
from ..progress import Event, Progress
from ..quality import LOW_FIDELITY_DB
from ..techniques.training import DEFAULT_EPOCHS
from . import plan as planmod
from . import predict
from . import space as spacemod
from . import study as studymod
from .objectives import KEPT, OBJECTIVES, Constraints, check_objectives, choose, objective_value
from .results import TuneResult, check_outdir, collect, refuse_overwriting_input, write_outputs
from .row import repeat_row
from .trial import CandidateRunner

log = logging.getLogger(__name__)

DEFAULT_BUDGET = 24   # distinct candidates without --budget or --time-budget: minutes, not hours
PROPOSALS_PER_CANDIDATE = 5   # samplers re-propose known points of a small space; repeats cost nothing


def default_budget(space_size: int, budget: int | None, time_budget_s: float | None) -> int:
    """The number of distinct candidates a tune tries: ``budget``, the whole space under a time limit,
    else at most DEFAULT_BUDGET."""
    if budget is not None:
        return min(budget, space_size)
    return space_size if time_budget_s is not None else min(DEFAULT_BUDGET, space_size)


def _storage_errors(func: Callable[..., TuneResult]) -> Callable[..., TuneResult]:
    """A study storage that fails mid-search (a full disk, a database gone) is one error that says so;
    the trials it stored are kept for a resume."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> TuneResult:
        import optuna
        import sqlalchemy as sa

        try:
            return func(*args, **kwargs)
        except (optuna.exceptions.StorageInternalError, sa.exc.SQLAlchemyError) as exc:
            raise StoreError(f"the study storage failed: {studymod.db_reason(exc)}; the trials stored before are "
                             "kept (run the same command again to resume)") from exc

    return wrapper


@_storage_errors
def tune(model: str | os.PathLike[str], profile: str | Profile, outdir: str | os.PathLike[str], *,
         devices: list[str] | None = None, data: str | os.PathLike[str] | None = None,
         train_data: str | os.PathLike[str] | None = None, constraints: Constraints | None = None,
         objectives: list[str] | None = None, budget: int | None = None, time_budget_s: float | None = None,
         storage: str | None = None, study_name: str | None = None, seed: int = 0, epochs: int = DEFAULT_EPOCHS,
         settings: Any = None, store: Any = None, space: spacemod.Space | None = None,
         progress: Progress | None = None, trust_model_code: bool = False,
         heartbeat_s: int = studymod.HEARTBEAT_S) -> TuneResult:
    """Search compressions of ``model`` for ``profile``, measured on ``devices``; write OUTDIR.

    Several devices measure candidates in parallel, each one at a time. With no device, latency is
    predicted by the profile's predictor (calibrated by ``edgesdk calibrate``) and the trials are
    ``estimated``.

    Writes ``best.tflite``, ``pareto/*.tflite``, ``candidates/*.tflite``, ``results.json`` and
    ``report.html``. ``budget`` is the total number of distinct candidates of the study (those of an
    earlier run count); without it, :data:`DEFAULT_BUDGET` (or the whole space under ``time_budget_s``).

    Raises:
        EdgeSdkError: bad input (model, profile, devices, data, objectives, limits) before any trial;
            device errors stop the search with what was measured kept.
    """
    from .. import devices as devmod
    from .. import intake
    from ..store import Store

    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    handle = intake.open_model(model, trust_code=trust_model_code)
    source = handle.source
    handle.check_code()  # before any trial
    store = store if store is not None else Store()
    devices = list(dict.fromkeys(devices or []))
    for name in devices:  # before anything is compressed: an unknown name or a bad URL is a typo
        devmod.validate_url(devmod.resolve(name, store))
    objectives = objectives if objectives is not None else (["accuracy", "latency"] if data is not None
                                                            else ["latency", "size"])
    check_objectives(objectives, data is not None)
    constraints = _quality_limits(constraints or Constraints(), data, train_data)
    space = spacemod.for_model(space or spacemod.build(prof), handle)
    if budget is not None and budget < 1:
        raise RecipeError(f"budget must be at least 1 trial. Received: {budget}")
    out = Path(outdir)
    refuse_overwriting_input(out, [p for p in (source.path, data, train_data) if p is not None])
    check_outdir(out)
    make_dirs(out / "candidates")
    storage = storage or f"sqlite:///{(out / 'study.sqlite3').resolve()}"
    study_name = study_name or f"{source.path.stem}-{source.sha256[:8]}-{prof.name}"
    study = _study(study_name, storage, objectives, seed, budget, len(space), heartbeat_s)
    settings = with_accelerator(settings, prof)
    if constraints.require_full_acceleration and settings.accelerator not in OFFLOADED:
        raise RecipeError(f"--require-full-acceleration needs a GPU or NPU to run on: {prof.name} runs on the "
                          f"{settings.accelerator or 'cpu'}; give --accelerator gpu or a GPU profile (mobile-gpu)")
    predictor = predict.load(prof)
    total = default_budget(len(space), budget, time_budget_s)
    runner = CandidateRunner(source.path, prof, out, data, train_data, constraints, predictor, settings, store,
                             epochs, seed, trust_model_code)
    ranked = planmod.ranked_precisions(space, handle, prof, predictor, objectives)
    plan = None if total >= len(space) else planmod.Plan(space, objectives, constraints, ranked)
    search = _Search(study, space, Claims(storage), runner, objectives, constraints, total,
                     time_budget_s, progress, heartbeat_s, plan)
    if plan is None:  # the budget covers the space: every candidate, in grid order
        _seed_queue(study, space)
    search.report(None)
    interrupted, stopped = search.run(list[str | None](devices) or [None])
    baseline = search.baseline(handle.as_given(), devices, finished=not interrupted and stopped is None)
    result = collect(study, out, objectives, devices, runner.new_measurements, interrupted, space, constraints,
                     predictor, baseline)
    result.budget = total
    if budget is None and time_budget_s is None and total < len(space):
        result.notes.append(f"tried up to {total} of the {len(space)} candidates (the default budget); "
                            "--budget N or --time-budget S to search further")
    if stopped is not None:
        result.notes.append(f"stopped by an error: {stopped}")
    write_outputs(result, out)
    if stopped is not None:
        raise stopped
    return result


def _quality_limits(constraints: Constraints, data: Any, train_data: Any) -> Constraints:
    """``constraints`` checked against the data (read now: unreadable, non-numeric or non-finite data fails
    before any trial); without labels fidelity is the quality, and a collapsed one (below
    LOW_FIDELITY_DB) is no answer."""
    from .. import data as datamod

    constraints.check(data is not None)
    labelled = False
    for path in (data, train_data):
        if path is not None:
            labelled = labelled or (path == data and datamod.load_npz(path).y is not None)
    if not labelled and constraints.min_accuracy is not None:
        raise RecipeError("--min-accuracy needs labels: give --data an .npz with 'y' (without labels, "
                          "--max-accuracy-drop limits a classifier's top-1 agreement, --min-sqnr the fidelity)")
    if not labelled and constraints.min_sqnr_db is None:
        constraints = replace(constraints, min_sqnr_db=LOW_FIDELITY_DB)
    return constraints


def _study(name: str, storage: str, objectives: list[str], seed: int, budget: int | None, size: int,
           heartbeat_s: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler: optuna.samplers.BaseSampler
    if len(objectives) > 1:
        population = max(4, min(20, budget or size, size // 2))
        sampler = optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, size))
    study = studymod.open_study(name, storage, sampler, [OBJECTIVES[o] for o in objectives], heartbeat_s)
    if study.user_attrs.get("objectives", objectives) != objectives:
        raise RecipeError(f"study {name!r} was run with objectives {study.user_attrs['objectives']}; "
                          f"use those, or another --study / OUTDIR")
    study.set_user_attr("objectives", objectives)
    return study


def _seed_queue(study: Any, space: spacemod.Space) -> None:
    """Queue the whole grid (the budget covers the space), but what the study tried already."""
    tried = {tuple(sorted(t.params.items())) for t in study.get_trials(deepcopy=False)}
    for cand in space.grid():
        if tuple(sorted(cand.params().items())) not in tried:
            study.enqueue_trial(cand.params(), skip_if_exists=True)


class _Search:
    """The ask/tell loop shared by the workers of one tune."""

    def __init__(self, study: Any, space: spacemod.Space, claims: Claims, runner: CandidateRunner,
                 objectives: list[str], constraints: Constraints, total: int, time_budget_s: float | None,
                 progress: Progress | None, heartbeat_s: int, plan: planmod.Plan | None = None) -> None:
        self.study, self.space, self.claims, self.runner, self.plan = study, space, claims, runner, plan
        self.objectives, self.constraints, self.total = objectives, constraints, total
        self.time_budget_s, self.progress, self.heartbeat_s = time_budget_s, progress, heartbeat_s
        self.lock = threading.RLock()        # every ask, tell and claim
        self.stop = threading.Event()        # an error in one worker stops the others
        self.ctrl_c = threading.Event()    # replaced by the interrupt watch's flag while running
        self.active: dict[int, tuple[Any, str]] = {}   # this process's running trials, with their recipes
        self.error: BaseException | None = None
        self.proposals = 0
        self.started = time.monotonic()

    def done_rows(self) -> dict[str, dict[str, Any]]:
        import optuna

        rows: dict[str, dict[str, Any]] = {}
        for t in self.study.get_trials(deepcopy=False):
            row = t.user_attrs.get("row")
            if row and t.state != optuna.trial.TrialState.RUNNING and "repeat_of" not in row and \
                    row.get("status") != TrialStatus.SKIPPED.value:
                rows.setdefault(row["recipe"], row)
        return rows

    def run(self, devices: list[str | None]) -> tuple[bool, EdgeSdkError | None]:
        """Run one worker per device until the budget is spent: (interrupted, the error that stopped it)."""
        others = [threading.Thread(target=self._worker, args=(d,), name=f"tune-{d}", daemon=True)
                  for d in devices[1:]]
        interrupted = False
        try:
            with interrupt.watch() as flag:
                self.ctrl_c = flag
                for thread in others:
                    thread.start()
                self._worker(devices[0])
                while any(t.is_alive() for t in others):
                    for t in others:
                        t.join(timeout=0.2)
                if self.ctrl_c.is_set():
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            interrupted = True
            self.ctrl_c.set()
            self.stop.set()
            with self.lock:  # the other workers' trials are retried on resume; their threads are left to end
                for number in list(self.active):
                    self._give_back(number)
            log.warning("interrupted: keeping the %d candidates finished so far", len(self.done_rows()))
        error = None if interrupted else self.error   # after Ctrl-C, a wrapped interrupt is no error
        if error is not None and not isinstance(error, EdgeSdkError):
            raise error
        return interrupted, error

    def baseline(self, content: bytes, devices: list[str], finished: bool) -> dict[str, Any]:
        """The original's row: measured on the first device when the search finished and measured a
        candidate (no device time for a search that measured nothing), else estimated."""
        done = list(self.done_rows().values())
        measured = bool(devices) and finished and any(r.get("status") in KEPT for r in done)
        return self.runner.baseline(content, devices[0] if measured else None, done).to_dict()

    def _worker(self, device: str | None) -> None:
        try:
            while (asked := self._ask()) is not None:
                self._evaluate(*asked, device)
        except KeyboardInterrupt:
            self.ctrl_c.set()
            raise
        except BaseException as exc:  # noqa: BLE001 - one worker's failure stops the search; said once
            log.debug("trial failed on %s", device, exc_info=True)
            with self.lock:
                if self.error is None and not self.stop.is_set():
                    self.error = exc
            self.stop.set()

    def _finished(self, done: dict[str, dict[str, Any]]) -> bool:
        over_time = self.time_budget_s is not None and time.monotonic() - self.started > self.time_budget_s
        return self.stop.is_set() or self.ctrl_c.is_set() or over_time or len(done) >= self.total

    def _ask(self) -> tuple[Any, spacemod.Candidate] | None:
        """The next trial to run, or None when the search is over. A dead worker's trial turns stale after
        the grace period and is queued again; while only other trials run, this waits for that."""
        waited = 0.0
        while True:
            with self.lock:
                done = self.done_rows()
                if self._finished(done):
                    studymod.drop_queued_repeats(self.study, done)
                    return None
                studymod.fail_stale(self.study)
                queued = studymod.waiting(self.study) > 0
                if not queued and self.plan is not None:
                    planned = self.plan.next(done, self._busy())
                    if planned is not None:
                        self.study.enqueue_trial(planned.params())
                        queued = True
                if queued or self.proposals < PROPOSALS_PER_CANDIDATE * self.total:
                    trial = self.study.ask()
                    self.proposals += 0 if queued else 1
                    dims = self.space.dimensions()
                    cand = spacemod.Candidate.of({d: trial.suggest_categorical(d, list(v)) for d, v in dims.items()})
                    why = None if queued or self.plan is None else self.plan.ruled_out(cand, done)
                    if why is not None:  # what the trials taught rules it out: told, at no cost
                        self._skip(trial, cand, why)
                        continue
                    self.active[trial.number] = (trial, cand.recipe)
                    return trial, cand
                elsewhere = studymod.running_elsewhere(self.study, set(self.active))
            if not elsewhere or waited > (studymod.GRACE_FACTOR + 1) * self.heartbeat_s:
                return None
            time.sleep(self.heartbeat_s)
            waited += self.heartbeat_s

    def _evaluate(self, trial: Any, cand: spacemod.Candidate, device: str | None) -> None:
        import optuna

        row: dict[str, Any] = {"number": trial.number, "recipe": cand.recipe, "params": cand.params()}
        with self.lock:
            earlier = self.done_rows().get(cand.recipe)
            # A trial that Optuna failed (its worker died or was interrupted) gives its claim up to this one.
            holder = None if earlier is not None else self.claims.claim(
                self.study.study_name, cand.recipe, str(trial.number), stale=lambda n: self._failed(int(n)))
            owner = None if holder is None else int(holder)
            if earlier is not None or owner != trial.number:
                # Proposed again, here or by another worker: no work, and no budget spent.
                trial.set_user_attr("row", repeat_row(earlier or row, trial.number,
                                                      earlier["number"] if earlier else owner))
                self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                self.active.pop(trial.number, None)
                return
        try:
            with studymod.heartbeat(self.study, trial):
                row = replace(self.runner.run(cand, device), **row).to_dict()
        except BaseException:
            with self.lock:  # an interrupted or failed trial is queued again: a resume tries it
                if trial.number in self.active:
                    self._give_back(trial.number)
            raise
        with self.lock:
            if trial.number not in self.active:  # given back after an interrupt: its result is not kept
                return
            trial.set_user_attr("row", row)
            if row["status"] in KEPT:
                self.study.tell(trial, [objective_value(o, row) for o in self.objectives])
            else:
                self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            self.active.pop(trial.number, None)
            self.report(row)

    def _busy(self) -> set[str]:
        """The recipes running now, here or in another worker."""
        import optuna

        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        found = {recipe for _, recipe in self.active.values()}
        for t in running:
            with contextlib.suppress(RecipeError):
                found.add(spacemod.Candidate.of(t.params).recipe)
        return found

    def _skip(self, trial: Any, cand: spacemod.Candidate, why: str) -> None:
        import optuna

        trial.set_user_attr("row", {"number": trial.number, "recipe": cand.recipe, "params": cand.params(),
                                    "status": TrialStatus.SKIPPED.value, "reason": f"not tried: {why}"})
        self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)

    def _give_back(self, number: int) -> None:
        """Fail a trial of this process that will not finish, release its claim and queue it again."""
        trial, recipe = self.active.pop(number)
        self.claims.release(self.study.study_name, recipe)
        studymod.fail_and_retry(self.study, trial)

    def _failed(self, number: int) -> bool:
        import optuna

        return any(t.number == number and t.state == optuna.trial.TrialState.FAIL
                   for t in self.study.get_trials(deepcopy=False))

    def report(self, row: dict[str, Any] | None) -> None:
        """Tell ``progress`` how far the search is (also once before the first trial, for a resume): an
        Event whose detail has the trial's row, the best row so far, the time spent and the time budget."""
        if self.progress is None:
            return
        done = self.done_rows()
        kept = [{**r, "violations": self.constraints.violations(r)} for r in done.values() if r.get("status") in KEPT]
        best, _ = choose(kept, self.objectives, self.constraints.bounded())
        text = f"{row['recipe']}: {row.get('status')}" if row else "starting"
        self.progress(Event(text, done=min(len(done), self.total), total=self.total, detail={
            "row": row, "best": next((r for r in kept if r["number"] == best), None),
            "elapsed_s": time.monotonic() - self.started, "time_budget_s": self.time_budget_s}))


__all__ = ["DEFAULT_BUDGET", "OBJECTIVES", "Constraints", "TuneResult", "default_budget", "objective_value", "tune"]
