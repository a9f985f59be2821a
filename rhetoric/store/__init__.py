"""The store: the one door to the database (SQLAlchemy Core; SQLite by default, PostgreSQL-ready).

Store is one object, cut by what is asked of it, a module each:
- schema: the tables; upgrades: creating them and upgrading stores made by earlier versions;
- writes: what a run asks before writing (known texts, addresses, near-duplicate candidates)
  and writing articles, their sources, sentences and band keys;
- scoring: the sentences a model version has yet to score, and its scores (frames: their columns);
- ledger: the runs table and the run's locks;
- reads: what the exports, the audit and the dashboard read;
- sql: the chunked lookups and inserts they share.

Every insert is idempotent (ON CONFLICT DO NOTHING), and a row the database refuses is
refused alone, by name, while the rest of its batch is stored. One run at a time writes
to a store: run_lock() is keyed on the store itself (rhetoric.locking).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event, text as sql_text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from rhetoric.errors import StoreError
from rhetoric.store.writes import AddResult, ArticleWrites, NewArticle
from rhetoric.store.upgrades import create_schema
from rhetoric.store.reads import Reads
from rhetoric.store.ledger import RunLedger
from rhetoric.store.schema import (
    article_bands, article_sources, articles, metadata, migrations, predictions, runs, scores, sentences,
)
from rhetoric.store.scoring import Scoring

__all__ = ["AddResult", "NewArticle", "Store", "article_bands", "article_sources", "articles", "metadata",
           "migrations", "predictions", "runs", "scores", "sentences"]


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # a write waits this long for another connection's; a run holds the run lock, so only short
    # writes (charts reading, an interrupted run's last update) ever compete
    cursor.execute("PRAGMA busy_timeout=10000")
    # a page cache of up to 64 MiB instead of SQLite's 2 MiB: a chunk's band keys land all over the band index,
    # which outgrows 2 MiB at a few thousand articles (storing 10,000 synthetic articles' 320,000 band rows:
    # 0.37 s against 0.78 s). The cache holds only pages read, so a small store costs no more memory.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


class Store(ArticleWrites, Scoring, RunLedger, Reads):
    """All reads and writes of articles, sentences, predictions and runs."""

    def __init__(self, url: str):
        self.url = url
        try:
            if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, future=True)
        except (SQLAlchemyError, OSError, ValueError) as exc:
            raise StoreError(f"cannot open the store at {url!r}: {exc}; check --db / RHETORIC_DB") from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def create_schema(self) -> None:
        """Create the tables that do not exist yet, and bring a store made by an earlier version up to date."""
        create_schema(self.engine, self.url)

    def drop_all(self) -> None:
        """Drop the predictions view and every table: the store is empty, and create_schema starts it again."""
        with self.engine.begin() as conn:
            conn.execute(sql_text("DROP VIEW IF EXISTS predictions"))
        metadata.drop_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()
