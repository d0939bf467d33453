"""Which worker took which candidate, in a table of the study's own database.

Workers on several hosts sharing one study (PostgreSQL) so never compress and measure a candidate
twice. A claim is released when its trial fails or is interrupted, and taken over when the trial that
holds it was failed (by its worker, or by Optuna's heartbeat check after the worker died).
"""

from __future__ import annotations

from typing import Any


class Claims:
    """Claims of one study: (study, recipe) -> the trial number working on it."""

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

    def owners(self) -> dict[str, int]:
        """Every claim of the study: recipe -> trial."""
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            rows: Any = conn.execute(sa.select(self.table.c.recipe, self.table.c.trial)
                                     .where(self.table.c.study == self.study))
            return {str(r[0]): int(r[1]) for r in rows}
