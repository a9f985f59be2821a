"""The runs table, and the locks a run holds on the store and on itself (rhetoric.locking)."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy import select

from rhetoric.locking import RunLock, alive_lock, is_dead, store_lock
from rhetoric.store.schema import runs
from rhetoric.store.sql import insert_ignoring, utcnow


class RunLedger:
    """The runs side of Store (rhetoric.store): a mixin that uses the store's engine."""

    def run_lock(self) -> RunLock:
        """The lock a run holds while it writes to this store (rhetoric.locking): shared by every spelling
        of the store's address and every project folder that writes to it."""
        return store_lock(self.engine)

    def start_run(self, run_id: str, model_version: str | None = None, status: str = "running") -> None:
        """Record a run (again, when a retried flow run starts over with the same id)."""
        with self.engine.begin() as conn:
            conn.execute(insert_ignoring(self.engine, runs).values(run_id=run_id, started=utcnow(), status=status,
                                                            model_version=model_version))
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(status=status, finished=None))

    def mark_interrupted(self, except_run: str | None = None) -> int:
        """Mark every run recorded as running whose own alive lock is free as interrupted; how many.

        A live run holds its alive lock (rhetoric.locking.alive_lock) from start to end, so a
        row still "running" with that lock free belongs to a run that was killed or lost its machine.
        """
        with self.engine.connect() as conn:
            running = conn.execute(select(runs.c.run_id).where(runs.c.status == "running",
                                                               runs.c.run_id != (except_run or ""))).scalars().all()
        dead = [run_id for run_id in running if is_dead(self.alive_lock(run_id))]
        if not dead:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(runs.update().where(runs.c.run_id.in_(dead), runs.c.status == "running")
                                .values(status="interrupted", finished=utcnow())).rowcount

    def alive_lock(self, run_id: str) -> RunLock:
        """The lock a run holds on itself while it is alive (rhetoric.locking.alive_lock)."""
        return alive_lock(self.engine, run_id)

    def finish_run(self, run_id: str, status: str, counts: dict, details: dict | None = None) -> None:
        values = {k: counts[k] for k in ("articles_new", "articles_seen", "articles_refused",
                                         "sentences_new", "sentences_rescored", "model_version")
                  if k in counts}
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(
                finished=utcnow(), status=status, details=json.dumps(details or {}, default=str), **values))

    def export_runs(self) -> pd.DataFrame:
        """Runs, oldest first, with the columns of `rhetoric export runs`."""
        query = select(runs.c.run_id, runs.c.started, runs.c.finished, runs.c.status,
                       runs.c.articles_new, runs.c.sentences_new, runs.c.model_version).order_by(runs.c.started)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=[
                "run_id", "started", "finished", "status", "articles_new", "sentences_new", "model_version"])

    def last_run(self) -> dict | None:
        """The runs table's row of the run started last, as a plain dict (its keys plain strings: SQLAlchemy's
        own key type, pickled, made a process that unpickles it import SQLAlchemy, 0.13 s)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).order_by(runs.c.started.desc()).limit(1)).mappings().first()
        return {str(key): value for key, value in row.items()} if row else None
