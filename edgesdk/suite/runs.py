"""Suite runs in the results store: one row per run, one per cell, claimed atomically by workers.

Several ``suite run`` processes, on one host or many sharing a PostgreSQL store, fill the same run:
each cell moves pending -> running (claimed by one worker through :mod:`edgesdk.claims`, which only
one can win) -> passed / failed / skipped. A skip is provisional: a worker that can reach the device
later claims the cell. A cell whose worker died is claimed again once its lease has run out.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError

from ..claims import Claims
from ..errors import SuiteError
from ..store import Store, shown_url, suite_cells, suite_runs
from .spec import LoadedSuite

CLAIMABLE = ("pending", "skipped")
DONE = ("passed", "failed")


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def new_run_id(suite: str) -> str:
    return f"{suite}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def cell_id(model: str, recipe: str, device: str) -> str:
    return f"{model}|{recipe}|{device}"


def open_run(store: Store, run_id: str, suite: LoadedSuite, tag: str | None) -> bool:
    """Create the run and its cells, or join the run of that id. True when this call created it.

    Raises:
        SuiteError: a run of that id exists for a different suite (content hash differs).
    """
    spec = suite.spec
    now = datetime.now(UTC)
    created = False
    with store.db("open a suite run in"):
        try:
            with store.engine.begin() as conn:
                conn.execute(suite_runs.insert().values(
                    run_id=run_id, suite=spec.name, suite_sha256=suite.sha256, tag=tag,
                    document=json.dumps(suite.to_dict()), created_at=now))
            created = True
        except IntegrityError:
            with store.engine.connect() as conn:
                row = conn.execute(select(suite_runs.c.suite_sha256, suite_runs.c.suite)
                                   .where(suite_runs.c.run_id == run_id)).first()
            if row is None or row.suite_sha256 != suite.sha256:
                raise SuiteError(f"run {run_id!r} exists already, started from a different suite "
                                 f"({row.suite if row else '?'}); every process of one run needs the same suite "
                                 "file (or choose another --run-id)") from None
        for model in spec.models:
            for recipe in spec.recipes_of(model):
                for device in spec.devices:
                    try:  # one transaction each: another worker may be inserting the same cells
                        with store.engine.begin() as conn:
                            conn.execute(suite_cells.insert().values(
                                run_id=run_id, cell=cell_id(model.label, recipe, device.name), model=model.label,
                                recipe=recipe, device=device.name, status="pending", claims=0))
                    except IntegrityError:
                        pass
    return created


def claim(store: Store, run_id: str, device: str, worker: str, lease_s: float) -> str | None:
    """Claim the next cell of ``device`` that nobody has (or whose worker's lease ran out); None when
    none is left. Exactly one worker wins each cell: the claim is :class:`edgesdk.claims.Claims`' (the
    one mechanism tune's workers use too), then the cell is marked running."""
    now = datetime.now(UTC)
    open_cells = suite_cells.c.status.in_((*CLAIMABLE, "running"))   # running: perhaps a dead worker's
    mine = and_(suite_cells.c.run_id == run_id, suite_cells.c.device == device)
    with store.db("claim a cell in"):
        claims = Claims(store.engine)
        with store.engine.connect() as conn:
            candidates = [r[0] for r in conn.execute(
                select(suite_cells.c.cell).where(mine, open_cells).order_by(suite_cells.c.cell))]
        for cell in candidates:
            if claims.claim(run_id, cell, worker, lease_s=lease_s) != worker:
                continue  # another worker has it, and its lease holds
            with store.engine.begin() as conn:
                won = conn.execute(update(suite_cells).where(mine, suite_cells.c.cell == cell, open_cells).values(
                    status="running", worker=worker, claimed_at=now, claims=suite_cells.c.claims + 1)).rowcount
            if won == 1:
                return cell
        return None


def finish(store: Store, run_id: str, cell: str, worker: str, status: str, result: dict[str, Any]) -> None:
    """Record a claimed cell's outcome (passed, failed) in one transaction."""
    with store.db("record a cell in"):
        with store.engine.begin() as conn:
            conn.execute(update(suite_cells).where(suite_cells.c.run_id == run_id, suite_cells.c.cell == cell,
                                                   suite_cells.c.worker == worker)
                         .values(status=status, finished_at=datetime.now(UTC), result=json.dumps(result, default=str)))


def skip_device(store: Store, run_id: str, device: str, worker: str, reason: str) -> int:
    """Mark the device's unclaimed cells skipped (another worker that reaches it may still take them)."""
    with store.db("skip cells in"):
        with store.engine.begin() as conn:
            return int(conn.execute(update(suite_cells).where(
                suite_cells.c.run_id == run_id, suite_cells.c.device == device,
                suite_cells.c.status.in_(CLAIMABLE)).values(
                    status="skipped", worker=worker, finished_at=datetime.now(UTC),
                    result=json.dumps({"reason": reason}))).rowcount)


def load_run(store: Store, run_id: str) -> dict[str, Any]:
    """The run and every cell, as stored.

    Raises:
        SuiteError: no run of that id.
    """
    with store.db("read a run from"):
        with store.engine.connect() as conn:
            run = conn.execute(select(suite_runs).where(suite_runs.c.run_id == run_id)).first()
            if run is None:
                raise SuiteError(f"no suite run {run_id!r} in {shown_url(store.url)}; `edgesdk suite list` shows "
                                 "the runs")
            cells = conn.execute(select(suite_cells).where(suite_cells.c.run_id == run_id)
                                 .order_by(suite_cells.c.model, suite_cells.c.recipe, suite_cells.c.device)).all()
    suite_doc = json.loads(run.document)
    order = {"model": [m.get("name") or _label(m) for m in suite_doc["models"]], "recipe": suite_doc["recipes"],
             "device": [d["name"] for d in suite_doc["devices"]]}

    def position(c: Any) -> tuple[int, ...]:  # the suite file's order
        return tuple(order[k].index(getattr(c, k)) if getattr(c, k) in order[k] else len(order[k])
                     for k in ("model", "recipe", "device"))

    out = []
    for c in sorted(cells, key=position):
        result = json.loads(c.result) if c.result else {}
        out.append({"cell": c.cell, "model": c.model, "recipe": c.recipe, "device": c.device, "status": c.status,
                    "worker": c.worker, "claims": c.claims, "finished_at": c.finished_at, **result})
    return {"schema": "edgesdk.suite-run/1", "run_id": run.run_id, "suite": run.suite,
            "suite_sha256": run.suite_sha256, "tag": run.tag, "created_at": run.created_at,
            "suite_file": suite_doc, "cells": out}


def _label(model: dict[str, Any]) -> str:
    from .spec import ModelEntry

    return ModelEntry.model_validate({k: model.get(k) for k in ("name", "path", "tune", "data")}).label


def list_runs(store: Store, suite: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Runs newest first: id, suite, tag, created_at and cell counts by status."""
    query = select(suite_runs.c.run_id, suite_runs.c.suite, suite_runs.c.tag, suite_runs.c.created_at)
    if suite:
        query = query.where(suite_runs.c.suite == suite)
    with store.db("list the runs in"):
        with store.engine.connect() as conn:
            runs = conn.execute(query.order_by(suite_runs.c.created_at.desc()).limit(limit)).all()
            out = []
            for r in runs:
                statuses = [s[0] for s in conn.execute(select(suite_cells.c.status)
                                                       .where(suite_cells.c.run_id == r.run_id))]
                out.append({"run_id": r.run_id, "suite": r.suite, "tag": r.tag, "created_at": r.created_at,
                            "cells": {s: statuses.count(s) for s in sorted(set(statuses))}})
    return out


def run_ids(store: Store, suite: str, limit: int = 1000) -> list[str]:
    """Ids of the runs of ``suite``, newest first (no cell counts: cheaper than :func:`list_runs`)."""
    query = select(suite_runs.c.run_id).where(suite_runs.c.suite == suite) \
        .order_by(suite_runs.c.created_at.desc()).limit(limit)
    with store.db("list the runs in"):
        with store.engine.connect() as conn:
            return [r[0] for r in conn.execute(query)]


def previous_run(store: Store, suite: str, before: str) -> str | None:
    """The newest run of ``suite`` created before run ``before`` (the baseline called ``latest``)."""
    runs = run_ids(store, suite)
    later = runs.index(before) + 1 if before in runs else 0
    return runs[later] if later < len(runs) else None
