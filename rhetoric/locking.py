"""One run at a time per store, whoever starts it and however the store is spelled.

The lock belongs to the store, not to a project folder: two projects writing to one store
share it. On PostgreSQL it is a session-level advisory lock held on a connection of its
own; on SQLite an OS lock on a file next to the database, keyed on the database file's
real path, so that two spellings of one path take the same lock. Both are released by
the operating system or the server when the holding process dies, even by kill -9.
"""

from __future__ import annotations

import os
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text as sql_text
from sqlalchemy.engine import Engine

# pg_try_advisory_lock(int, int): a constant pair naming "rhetoric's run lock" within the database
_ADVISORY_KEY = (0x72686574, 0x72756E)  # "rhet", "run"
_ALIVE_CLASS = 0x616C6976  # "aliv": (this, crc32 of the run id) is the lock a live run holds on itself
_POLL_SECONDS = 0.2


class RunLock:
    """The run lock of one store: acquire(wait) takes it, release() gives it back, holder() says who has it."""

    def acquire(self, wait: float = 0.0) -> bool:
        """Take the lock, waiting up to `wait` seconds; False when another process still holds it then."""
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            if self._try():
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0.01)))

    def is_held_elsewhere(self) -> bool:
        """Whether a run (another process, or another lock object here) holds the lock now."""
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def holder(self) -> str:
        raise NotImplementedError

    def end(self) -> None:
        """Release the lock for good (a run's own alive lock when it ends): what it leaves behind goes too."""
        self.release()

    def _try(self) -> bool:
        raise NotImplementedError

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class FileRunLock(RunLock):
    """An OS lock (flock) on DB.run-lock beside a SQLite database file."""

    def __init__(self, path: Path):
        self.path = path
        self._handle = None

    def _try(self) -> bool:
        if self._handle is not None:
            return True
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            _lock_file(handle)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC\n")
        handle.flush()
        self._handle = handle
        return True

    def is_held_elsewhere(self) -> bool:
        if self._handle is not None or not self.path.exists():  # held here, so by nobody else
            return False
        with open(self.path, "a+", encoding="utf-8") as handle:
            try:
                _lock_file(handle)
            except OSError:
                return True
            _unlock_file(handle)
            return False

    def release(self) -> None:
        if self._handle is not None:
            _unlock_file(self._handle)
            self._handle.close()
            self._handle = None

    def end(self) -> None:
        if self._handle is not None:  # removed while still held, so no other process has it meanwhile
            self.path.unlink(missing_ok=True)
        self.release()

    def holder(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8").strip() or "unknown"
        except OSError:
            return "unknown"


class AdvisoryRunLock(RunLock):
    """A PostgreSQL session-level advisory lock, held on a dedicated connection for the whole run."""

    def __init__(self, engine: Engine, key: tuple[int, int] = _ADVISORY_KEY):
        self.engine = engine
        self.key = key
        self._conn = None

    def _try(self) -> bool:
        if self._conn is not None:
            return True
        conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            taken = conn.execute(sql_text("SELECT pg_try_advisory_lock(:a, :b)"),
                                 {"a": self.key[0], "b": self.key[1]}).scalar_one()
        except BaseException:
            conn.close()
            raise
        if not taken:
            conn.close()
            return False
        self._conn = conn
        return True

    def _holders(self) -> list[tuple]:
        query = sql_text(
            "SELECT l.pid, a.client_addr, a.backend_start FROM pg_locks l "
            "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :a AND l.objid = :b "
            "AND l.objsubid = 2 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())")
        with self.engine.connect() as conn:
            return list(conn.execute(query, {"a": self.key[0], "b": self.key[1]}))

    def is_held_elsewhere(self) -> bool:
        own = None
        if self._conn is not None:
            own = self._conn.execute(sql_text("SELECT pg_backend_pid()")).scalar_one()
        return any(pid != own for pid, *_ in self._holders())

    def release(self) -> None:
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        try:
            conn.execute(sql_text("SELECT pg_advisory_unlock(:a, :b)"),
                         {"a": self.key[0], "b": self.key[1]})
        finally:  # closing the session releases it too
            conn.invalidate()
            conn.close()

    def holder(self) -> str:
        try:
            rows = self._holders()
        except Exception:  # naming the holder is a courtesy; the lock itself decides
            return "unknown"
        if not rows:
            return "unknown"
        pid, client, since = rows[0]
        return f"PostgreSQL session {pid} from {client or 'a local socket'} since {since:%Y-%m-%d %H:%M:%S %Z}"


class NoRunLock(RunLock):
    """An in-memory database is private to its process: nothing to exclude."""

    def _try(self) -> bool:
        return True

    def is_held_elsewhere(self) -> bool:
        return False

    def release(self) -> None:
        pass

    def holder(self) -> str:
        return "nobody"


def store_lock(engine: Engine) -> RunLock:
    """The run lock of the store behind this engine."""
    if engine.dialect.name == "postgresql":
        return AdvisoryRunLock(engine)
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return NoRunLock()
    return FileRunLock(Path(os.path.realpath(database) + ".run-lock"))


def alive_lock(engine: Engine, run_id: str) -> RunLock:
    """The lock a run holds on itself from start to end: free while its row says running means it died.

    The store's run lock cannot tell that once runs prepare their articles side by side and
    take the run lock only to write; a lock per run can, for any process that asks.
    """
    if engine.dialect.name == "postgresql":
        key = zlib.crc32(run_id.encode("utf-8"))
        return AdvisoryRunLock(engine, (_ALIVE_CLASS, key - 2**32 if key >= 2**31 else key))
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return NoRunLock()
    folder = Path(os.path.realpath(database) + ".runs")
    folder.mkdir(exist_ok=True)
    return FileRunLock(folder / f"{run_id}.lock")


def is_dead(lock: RunLock) -> bool:
    """Whether nobody holds this run's alive lock (its run ended or died); a file lock's file is then removed."""
    if not lock.acquire(0):
        return False
    lock.release()
    if isinstance(lock, FileRunLock):
        lock.path.unlink(missing_ok=True)
    return True


def _lock_file(handle) -> None:
    if os.name == "nt":
        import msvcrt
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock_file(handle) -> None:
    if os.name == "nt":
        import msvcrt
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
    else:
        import fcntl
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
