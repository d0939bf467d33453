"""The Optuna study a tune lives in: opened with a heartbeat, so the trial of a worker that died is retried.

Every running trial records a heartbeat in the storage (SQLite or PostgreSQL alike). A trial whose
heartbeat stopped for longer than the grace period (its process was killed, or its host went away) is
failed by Optuna's own check and queued again with the same parameters by
:class:`optuna.storages.RetryHeartbeatStaleTrialCallback`; an interrupted trial is failed and queued the same way.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

from ..errors import RecipeError

HEARTBEAT_S = 10          # how often a running trial says it is alive
GRACE_FACTOR = 3          # missed heartbeats before a trial counts as dead
MAX_RETRY = 3             # a candidate that kills its worker every time is not tried forever

# The heartbeat is Optuna's (stable since 2.9, still marked experimental); driving it from an ask/tell
# loop instead of Study.optimize is what this module does on purpose.
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")


DRIVERS = ("sqlite", "postgresql", "postgresql+psycopg")


def shown(url: str) -> str:
    """A storage URL as printed: without its password."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return url


def check_url(url: str) -> None:
    """A storage URL edgesdk can open: ``sqlite:///path`` or ``postgresql://user@host/db``.

    Raises:
        RecipeError: another scheme, or not a URL.
    """
    import sqlalchemy as sa

    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise RecipeError(f"--storage {url!r} is not a database URL; expected sqlite:///path/study.sqlite3 or "
                          "postgresql://user@host/db") from exc
    if parsed.drivername not in DRIVERS:
        raise RecipeError(f"--storage {shown(url)!r}: {parsed.drivername} is not supported; expected "
                          "sqlite:///path/study.sqlite3 or postgresql://user@host/db")


def db_reason(exc: BaseException) -> str:
    """What the database said, in one line, with a hint for the usual causes."""
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc
    text = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    text = re.sub(r"^\([\w.]+\) ", "", text)   # SQLAlchemy's "(sqlite3.OperationalError) " prefix
    if "file is not a database" in text:
        text += " (the study file is something else: choose another -o or --storage)"
    elif "readonly database" in text or "unable to open database file" in text:
        text += " (the folder or the file is read-only or missing: choose another -o or --storage)"
    elif "disk is full" in text or "database or disk is full" in text:
        text += " (free space or write elsewhere)"
    elif "Connection refused" in text or "could not translate host name" in text or "timeout expired" in text:
        text += " (is the database server running and reachable?)"
    return text


def open_study(name: str, url: str, sampler: Any, directions: list[Any], heartbeat_s: int = HEARTBEAT_S) -> Any:
    """Create or load the study. Workers starting together race to create Optuna's tables in a fresh
    database (one of them gets a unique-key error); the loser tries again and finds them made."""
    import optuna
    import sqlalchemy as sa

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    check_url(url)
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
                raise RecipeError(f"cannot open study {name!r} in {shown(url)}: {db_reason(exc)}") from exc
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
            recipe = spacemod.Candidate(**params).recipe
        except TypeError:  # not one of our candidates
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
