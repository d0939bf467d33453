"""The Optuna study a tune lives in: opened with a heartbeat, so the trial of a worker that died is retried.

Every running trial records a heartbeat in the storage (SQLite or PostgreSQL alike). A trial whose
heartbeat stopped for longer than the grace period (its process was killed, or its host went away) is
failed by Optuna's own check and queued again with the same parameters by
:class:`optuna.storages.RetryHeartbeatStaleTrialCallback`; an interrupted trial is failed and queued the same way.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

from ..errors import RecipeError, StoreError
from ..store import check_url, db_reason, shown_url

HEARTBEAT_S = 10          # how often a running trial says it is alive
GRACE_FACTOR = 3          # missed heartbeats before a trial counts as dead
MAX_RETRY = 3             # a candidate that kills its worker every time is not tried forever

# The heartbeat is Optuna's (stable since 2.9, still marked experimental); driving it from an ask/tell
# loop instead of Study.optimize is what this module does on purpose.
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


def open_study(name: str, url: str, sampler: Any, directions: list[Any], heartbeat_s: int = HEARTBEAT_S) -> Any:
    """Create or load the study. Workers starting together race to create Optuna's tables in a fresh
    database (one of them gets a unique-key error); the loser tries again and finds them made."""
    import optuna
    import sqlalchemy as sa

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        check_url(url)
    except StoreError as exc:
        raise RecipeError(f"--storage: {exc}") from exc
    for attempt in range(5):
        try:
            storage = optuna.storages.RDBStorage(
                url, heartbeat_interval=heartbeat_s, grace_period=GRACE_FACTOR * heartbeat_s,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(MAX_RETRY))
            return optuna.create_study(study_name=name, storage=storage, load_if_exists=True, sampler=sampler,
                                       directions=directions)
        except ValueError as exc:
            raise RecipeError(f"study {name!r} in {url} has other objectives: {exc}") from exc
        except (sa.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
            racing = isinstance(exc, sa.exc.IntegrityError) or "locked" in str(exc)
            if attempt == 4 or not racing:
                raise RecipeError(f"cannot open study {name!r} in {shown_url(url)}: {db_reason(exc)}") from exc
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def fail_stale(study: Any) -> None:
    """Fail the running trials whose worker stopped beating; each is queued again with its parameters."""
    import optuna

    optuna.storages.fail_stale_trials(study)


def fail_and_retry(study: Any, trial: Any) -> None:
    """Fail a trial that was interrupted or crashed, and queue it again, as the heartbeat check would."""
    import optuna

    try:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
    except (ValueError, RuntimeError):  # already finished (a stale check or another thread got there first)
        return
    frozen = study._storage.get_trial(trial._trial_id)
    optuna.storages.RetryHeartbeatStaleTrialCallback(MAX_RETRY)(study, frozen)


@contextlib.contextmanager
def heartbeat(study: Any, trial: Any) -> Iterator[None]:
    """Record the trial's heartbeat every interval while the block runs."""
    storage = study._storage
    interval = storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a database hiccup must not kill the trial
                storage.record_heartbeat(trial._trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def drop_queued_repeats(study: Any, done: dict[str, dict[str, Any]]) -> None:
    """Close the queued trials whose candidate is done already (two workers that open a study together
    can both queue the same grid point): each becomes a pruned repeat, so no finished study keeps a
    trial waiting. A queued candidate not yet tried stays queued, for a later run with a larger budget."""
    import optuna

    from . import space as spacemod
    from .row import repeat_row

    storage, state = study._storage, optuna.trial.TrialState
    for t in study.get_trials(deepcopy=False, states=(state.WAITING,)):
        params = t.system_attrs.get("fixed_params") or t.params
        try:
            recipe = spacemod.Candidate.of(params).recipe
        except RecipeError:  # not one of our candidates
            continue
        earlier = done.get(recipe)
        if earlier is None or not storage.set_trial_state_values(t._trial_id, state=state.RUNNING):
            continue  # not tried yet, or another worker took it
        storage.set_trial_user_attr(t._trial_id, "row", repeat_row(earlier, t.number, earlier["number"]))
        storage.set_trial_state_values(t._trial_id, state=state.PRUNED)


def running_elsewhere(study: Any, mine: set[int]) -> list[int]:
    """Trials running that are not this process's own: another worker's, or a dead one's not yet stale."""
    import optuna

    return [t.number for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            if t.number not in mine]


def waiting(study: Any) -> int:
    import optuna

    return len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))
