"""Who works on what, when several workers (threads, processes, hosts) share one database.

One idea, used twice: a tune's workers claim candidates in the study's own database (the PostgreSQL
they share), and a suite's workers claim cells in the results store. A claim is a row (scope, key) ->
worker, inserted once: the database's primary key decides who got there first. A claim can be taken
over when its worker is known to be gone: its lease ran out (a suite cell whose worker died), or the
caller says its holder is stale (a tune trial that Optuna failed); the take-over is a conditional
update that only one worker wins.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

TABLE = "edgesdk_work_claims"


class Claims:
    """The claims of one database (a table created on first use)."""

    def __init__(self, engine: sa.engine.Engine | str) -> None:
        self.engine = sa.create_engine(engine, poolclass=sa.pool.NullPool) if isinstance(engine, str) else engine
        self.table = sa.Table(TABLE, sa.MetaData(), sa.Column("scope", sa.String(512), primary_key=True),
                              sa.Column("key", sa.String(512), primary_key=True),
                              sa.Column("worker", sa.String(256), nullable=False),
                              sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False))
        try:
            self.table.create(self.engine, checkfirst=True)
        except sa.exc.DBAPIError:  # another worker created it at the same moment
            pass

    def claim(self, scope: str, key: str, worker: str, *, lease_s: float | None = None,
              stale: Callable[[str], bool] | None = None) -> str:
        """The worker that holds ``key``: ``worker`` itself if it got there first, or took it over from a
        holder whose lease ran out or that ``stale`` says is gone."""
        now = datetime.now(UTC)
        t = self.table
        try:
            with self.engine.begin() as conn:
                conn.execute(t.insert().values(scope=scope, key=key, worker=worker, claimed_at=now))
            return worker
        except sa.exc.IntegrityError:
            pass
        where = sa.and_(t.c.scope == scope, t.c.key == key)
        with self.engine.connect() as conn:
            row: Any = conn.execute(sa.select(t.c.worker, t.c.claimed_at).where(where)).first()
        if row is None:  # released in between: try again
            return self.claim(scope, key, worker, lease_s=lease_s, stale=stale)
        holder, since = str(row[0]), row[1]
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)   # SQLite keeps no time zone
        expired = lease_s is not None and since is not None and since < now - timedelta(seconds=lease_s)
        if holder != worker and (expired or (stale is not None and stale(holder))):
            with self.engine.begin() as conn:
                won = conn.execute(sa.update(t).where(where, t.c.worker == holder)
                                   .values(worker=worker, claimed_at=now)).rowcount
            return worker if won == 1 else self.holder(scope, key) or worker
        return holder

    def holder(self, scope: str, key: str) -> str | None:
        t = self.table
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(t.c.worker).where(t.c.scope == scope, t.c.key == key)).scalar()
        return None if found is None else str(found)

    def release(self, scope: str, key: str) -> None:
        t = self.table
        with self.engine.begin() as conn:
            conn.execute(sa.delete(t).where(t.c.scope == scope, t.c.key == key))

    def holders(self, scope: str) -> dict[str, str]:
        """Every claim of ``scope``: key -> worker."""
        t = self.table
        with self.engine.connect() as conn:
            return {str(k): str(w) for k, w in conn.execute(sa.select(t.c.key, t.c.worker).where(t.c.scope == scope))}
