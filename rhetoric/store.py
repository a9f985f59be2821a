"""The store: the one door to the database (SQLAlchemy Core; SQLite by default, PostgreSQL-ready).

Tables: articles (one row per distinct story), article_sources (every file/URL/outlet
that carried it), article_bands (the LSH band keys of each story's near-duplicate
signature, so a lookup reads only the candidates' signatures), sentences, predictions
(one row per sentence and frame, stamped with the model version), runs, and migrations
(the data migrations a store has had).

Text columns have no length limit (feeds carry 300-character titles and 5,000-character
URLs); every insert is idempotent (ON CONFLICT DO NOTHING), and a row the database refuses
is refused alone, by name, while the rest of its batch is stored. One run at a time writes
to a store: run_lock() is keyed on the store itself (rhetoric.locking).
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from itertools import chain
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger, Boolean, Column, Date, DateTime, Float, ForeignKey, Index, Integer, MetaData, SmallInteger,
    String, Table, Text, UniqueConstraint, create_engine, event, exists, func, inspect, or_, select,
    text as sql_text,
)
from sqlalchemy.dialects import postgresql as pg_dialect, sqlite as sqlite_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError

from rhetoric.dedupe import BANDS, band_keys, canonical_url, decode_signatures
from rhetoric.errors import StoreError
from rhetoric.ingest import Refusal
from rhetoric.locking import RunLock, alive_lock, is_dead, store_lock

metadata = MetaData()

articles = Table(
    "articles", metadata,
    Column("id", Integer, primary_key=True),
    Column("content_hash", String(64), nullable=False, unique=True),
    Column("title", Text),
    Column("published", Date, index=True),
    Column("date_missing", Boolean, nullable=False, default=False),
    Column("outlet", Text, index=True),
    Column("source", Text, nullable=False),
    Column("url", Text),
    Column("author", Text),
    Column("signature", Text),
    # ISO 639-1 code from rhetoric.language; NULL for articles stored before detection existed
    Column("language", String(16)),
    Column("n_sentences", Integer, nullable=False),
    Column("run_id", String(36)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

article_sources = Table(
    "article_sources", metadata,
    Column("id", Integer, primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("source", Text, nullable=False),
    Column("outlet", Text),
    Column("url", Text),
    Column("canonical_url", Text),
    # hash of the raw input (text and headline): an unchanged file is skipped before cleaning
    Column("fingerprint", String(64), index=True),
    Column("run_id", String(36)),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("article_id", "source", name="uq_article_source"),
    # a hash index on PostgreSQL: a btree refuses keys over 2,704 bytes, and URLs get longer than that
    Index("ix_article_sources_canonical_url", "canonical_url", postgresql_using="hash"),
)

article_bands = Table(
    "article_bands", metadata,
    # rhetoric.dedupe.band_keys of the article's signature: articles sharing a key are near-duplicate candidates
    Column("band_key", BigInteger, primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    sqlite_with_rowid=False,
)

# data migrations done on this store, by name (the schema itself is brought up to date by create_schema)
migrations = Table(
    "migrations", metadata,
    Column("name", String(64), primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)
BANDS_MIGRATION = "article_bands"

# columns earlier versions limited in length (PostgreSQL enforced it; SQLite never did)
_WIDENED = (("articles", "outlet"), ("article_sources", "outlet"), ("article_sources", "canonical_url"))

sentences = Table(
    "sentences", metadata,
    Column("id", Integer, primary_key=True),
    Column("article_id", Integer, ForeignKey("articles.id", ondelete="CASCADE"), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("text", Text, nullable=False),
    UniqueConstraint("article_id", "idx", name="uq_sentence_position"),
)

predictions = Table(
    "predictions", metadata,
    Column("sentence_id", Integer, ForeignKey("sentences.id", ondelete="CASCADE"), primary_key=True),
    Column("frame", String(64), primary_key=True),
    Column("score", Float, nullable=False),
    Column("label", SmallInteger, nullable=False),
    # no index on model_version: it cost a third of writing each prediction, and what asks for the versions
    # (has_other_versions, corpus_summary) reads them in one pass; SQLite keeps the rows in primary-key order
    Column("model_version", String(64), nullable=False),
    sqlite_with_rowid=False,
)

runs = Table(
    "runs", metadata,
    Column("run_id", String(36), primary_key=True),
    Column("started", DateTime(timezone=True), nullable=False),
    Column("finished", DateTime(timezone=True)),
    Column("status", String(20), nullable=False),
    Column("articles_new", Integer, nullable=False, default=0),
    Column("articles_seen", Integer, nullable=False, default=0),
    Column("articles_refused", Integer, nullable=False, default=0),
    Column("sentences_new", Integer, nullable=False, default=0),
    Column("sentences_rescored", Integer, nullable=False, default=0),
    Column("model_version", String(64)),
    Column("details", Text),
)


@dataclass
class NewArticle:
    """A cleaned, split article ready to store."""

    content_hash: str
    sentences: list[str]
    source: str
    title: str | None = None
    published: date | None = None
    outlet: str | None = None
    url: str | None = None
    canonical_url: str | None = None
    author: str | None = None
    signature: str | None = None
    fingerprint: str | None = None
    language: str | None = None


@dataclass
class AddResult:
    """What add_articles did: ids of the stories it created, and how many it already had."""

    new_article_ids: list[int] = field(default_factory=list)
    # the batch position of the item each new article was made from (its sentences are that item's)
    new_positions: list[int] = field(default_factory=list)
    already_stored: int = 0
    new_sentences: int = 0
    duplicate_of: dict[str, int] = field(default_factory=dict)
    # items the database refused (each alone; the rest of the batch was stored)
    refused: list[Refusal] = field(default_factory=list)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # a write waits this long for another connection's; a run holds the run lock, so only short
    # writes (charts reading, an interrupted run's last update) ever compete
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Store:
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
        """Create the tables that do not exist yet."""
        try:
            for attempt in range(1, 4):
                try:
                    metadata.create_all(self.engine)
                    self._add_missing_columns()
                    self._widen_limited_columns()
                    self._drop_unused_indexes()
                    self._backfill_bands()
                    break
                except (IntegrityError, OperationalError, ProgrammingError) as exc:
                    # two processes opening a new store at once: the other one created it first; look again
                    if attempt == 3 or not _lost_schema_race(exc):
                        raise
                    time.sleep(0.2 * attempt)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the store {self.url!r}: {_reason(exc)}; check --db / RHETORIC_DB or the "
                             "server") from None

    def _add_missing_columns(self) -> None:
        """Bring a store made by an earlier version up to date (nullable columns added since)."""
        present = {c["name"] for c in inspect(self.engine).get_columns("articles")}
        if "language" not in present:
            with self.engine.begin() as conn:
                conn.execute(sql_text("ALTER TABLE articles ADD COLUMN language VARCHAR(16)"))

    def _widen_limited_columns(self) -> None:
        """On PostgreSQL, lift the length limits of stores made by earlier versions (VARCHAR(200/2000) -> TEXT)."""
        if self.engine.dialect.name != "postgresql":
            return
        inspector = inspect(self.engine)
        limited = [(table, column) for table, column in _WIDENED
                   if any(c["name"] == column and getattr(c["type"], "length", None)
                          for c in inspector.get_columns(table))]
        index_sql = "CREATE INDEX ix_article_sources_canonical_url ON article_sources USING hash (canonical_url)"
        btree = [i for i in inspector.get_indexes("article_sources")
                 if i["name"] == "ix_article_sources_canonical_url"
                 and i.get("dialect_options", {}).get("postgresql_using", "btree") == "btree"]
        if not limited and not btree:
            return
        with self.engine.begin() as conn:
            for table, column in limited:
                conn.execute(sql_text(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT"))
            if btree:
                conn.execute(sql_text("DROP INDEX ix_article_sources_canonical_url"))
                conn.execute(sql_text(index_sql))

    def _drop_unused_indexes(self) -> None:
        """Drop the indexes earlier versions made and nothing uses (predictions.model_version), looking first: a
        write on every open would wait for any run writing to the store."""
        if any(i["name"] == "ix_predictions_model_version" for i in inspect(self.engine).get_indexes("predictions")):
            with self.engine.begin() as conn:
                conn.execute(sql_text("DROP INDEX IF EXISTS ix_predictions_model_version"))

    def _backfill_bands(self, batch_size: int = 5000) -> None:
        """Give the articles of a store made before article_bands existed their band keys, in batches.

        Articles stored since always have theirs (written with the article). Each batch is
        committed alone and rows already there are skipped, so an interrupted backfill simply
        runs again on the next open; once done it is recorded in migrations and never looked
        for again.
        """
        done = select(migrations.c.name).where(migrations.c.name == BANDS_MIGRATION)
        with self.engine.connect() as conn:
            if conn.execute(done).first() is not None:
                return
        last = 0
        while True:
            with self.engine.begin() as conn:
                signed = conn.execute(select(articles.c.id, articles.c.signature)
                                      .where(articles.c.signature.is_not(None), articles.c.id > last)
                                      .order_by(articles.c.id).limit(batch_size)).all()
                if not signed:
                    conn.execute(self._insert_ignoring(migrations).values(name=BANDS_MIGRATION,
                                                                          applied_at=_utcnow()))
                    return
                _insert_many(conn, article_bands, _BAND_COLUMNS, _band_rows(signed))
                last = signed[-1][0]

    def close(self) -> None:
        self.engine.dispose()

    # -- ingest side -------------------------------------------------------------

    def known_hashes(self, hashes: Iterable[str]) -> dict[str, int]:
        """Map each already stored content hash to its article id."""
        with self.engine.connect() as conn:
            return _lookup(conn, articles.c.content_hash, articles.c.id, hashes)

    def known_urls(self, urls: Iterable[str]) -> dict[str, int]:
        """Map each given address a stored page was read from to its article id: as listed (source), as
        fetched (url), or as the canonical form of either.

        A page's declared canonical link (also kept in canonical_url) does not count: it names
        another address, and would let one page stop the page at that address from being fetched.
        """
        wanted = [u for u in dict.fromkeys(urls) if u]
        found: dict[str, int] = {}
        with self.engine.connect() as conn:
            for column in (article_sources.c.source, article_sources.c.url):
                found.update(_lookup(conn, column, article_sources.c.article_id, wanted))
            for rows in _select_in(conn, article_sources, ("canonical_url", "url", "source", "article_id"),
                                   "canonical_url", wanted):
                found.update((key, article_id) for key, url, source, article_id in rows
                             if key in (canonical_url(url), canonical_url(source)))
        return found

    def signatures(self) -> list[tuple[int, str]]:
        """(article id, near-duplicate signature) of every stored article that has one (all in memory: a run
        looks up band_matches and signatures_of instead)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(articles.c.id, articles.c.signature)
                                .where(articles.c.signature.is_not(None)))
            return [(i, s) for i, s in rows]

    def band_matches(self, keys: Iterable[int]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The stored band rows whose key is among these, as (band keys, article ids) arrays, a chunk of keys at a time:
        the near-duplicate candidates of the articles with those keys (rhetoric.dedupe.band_keys)."""
        with self.engine.connect() as conn:
            for rows in _select_in(conn, article_bands, ("band_key", "article_id"), "band_key", [int(k) for k in keys]):
                if rows:
                    found = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=2 * len(rows)).reshape(-1, 2)
                    yield found[:, 0], found[:, 1]

    def signatures_of(self, article_ids: Iterable[int]) -> list[tuple[int, str]]:
        """(article id, signature) of these stored articles that have one."""
        with self.engine.connect() as conn:
            return [(article_id, text) for rows in _select_in(conn, articles, ("id", "signature"), "id",
                                                              sorted({int(i) for i in article_ids}))
                    for article_id, text in rows if text is not None]

    def add_articles(self, batch: Sequence[NewArticle], run_id: str,
                     duplicate_of: dict[int, int] | None = None) -> AddResult:
        """Store a batch; articles already stored only gain a source row.

        The batch goes in one transaction. When the database refuses a row (a constraint, or a
        value it cannot hold, such as a NUL byte on PostgreSQL), the batch is written again item
        by item, each in a savepoint: a refused item is named in AddResult.refused with the
        database's reason, and the rest is stored. duplicate_of maps a batch position to the
        stored article it repeats (near-duplicates found by the caller): such an item is recorded
        as another source of that article.

        Raises:
            StoreError: the store could not be written at all (nothing of the batch was kept).
        """
        try:
            try:
                with self.engine.begin() as conn:
                    return self._write_batch(conn, batch, run_id, duplicate_of or {}, isolate=False)
            except (IntegrityError, DataError):
                with self.engine.begin() as conn:
                    return self._write_batch(conn, batch, run_id, duplicate_of or {}, isolate=True)
        except SQLAlchemyError as exc:
            where = self.engine.url.render_as_string(hide_password=True)
            raise StoreError(f"{where}: could not store the batch (nothing of it was kept): {_reason(exc)}; "
                             "the next run tries again") from None

    def _write_batch(self, conn, batch: Sequence[NewArticle], run_id: str, duplicate_of: dict[int, int],
                     isolate: bool) -> AddResult:
        """Write the batch on conn: all at once, or (isolate) each item in its own savepoint."""
        result = AddResult()
        now = _utcnow()
        existing = _lookup(conn, articles.c.content_hash, articles.c.id, [a.content_hash for a in batch])
        # all at once: the batch's new stories in one statement; item by item: each in its savepoint (_place)
        inserted = None if isolate else self._insert_articles(conn, batch, duplicate_of, existing, run_id, now)
        sentence_rows: list[tuple] = []
        signed: list[tuple[int, str]] = []
        source_rows: dict[tuple[int, str], dict] = {}
        for position, item in enumerate(batch):
            try:
                with conn.begin_nested() if isolate else nullcontext():
                    if inserted is None:
                        article_id, new = self._place(conn, item, duplicate_of.get(position), existing, run_id, now)
                    else:
                        article_id, new = _claim(item, duplicate_of.get(position), existing, inserted)
                    rows = [(article_id, i, text) for i, text in enumerate(item.sentences)] if new else []
                    bands = [(article_id, item.signature)] if new and item.signature else []
                    source = _source_row(article_id, item, run_id, now)
                    if isolate:
                        _insert_many(conn, sentences, _SENTENCE_COLUMNS, rows)
                        _insert_many(conn, article_bands, _BAND_COLUMNS, _band_rows(bands))
                        self._insert_sources(conn, [source])
            except (IntegrityError, DataError) as exc:
                if not isolate:
                    raise
                result.refused.append(Refusal(item.source, f"the store refused it: {_reason(exc)}"))
                continue
            if new:
                existing[item.content_hash] = article_id
                result.new_article_ids.append(article_id)
                result.new_positions.append(position)
                result.new_sentences += len(item.sentences)
            else:
                result.already_stored += 1
                result.duplicate_of[item.source] = article_id
            if not isolate:
                sentence_rows.extend(rows)
                signed.extend(bands)
                source_rows.setdefault((article_id, item.source), source)
        _insert_many(conn, sentences, _SENTENCE_COLUMNS, sentence_rows)
        _insert_many(conn, article_bands, _BAND_COLUMNS, _band_rows(signed))
        self._insert_sources(conn, list(source_rows.values()))
        return result

    def _place(self, conn, item: NewArticle, repeats: int | None, existing: dict[str, int], run_id: str,
               now: datetime) -> tuple[int, bool]:
        """The article this item belongs to, and whether it is new: the one it repeats, the stored one
        with its text, or one inserted now."""
        article_id = repeats or existing.get(item.content_hash)
        if article_id is not None:
            return article_id, False
        article_id = self._insert_article(conn, item, run_id, now)
        if article_id is None:  # another writer stored the same text since the lookup
            return conn.execute(select(articles.c.id)
                                .where(articles.c.content_hash == item.content_hash)).scalar_one(), False
        return article_id, True

    def _insert_article(self, conn, item: NewArticle, run_id: str, now: datetime) -> int | None:
        """Insert one article; its id, or None when its content hash is stored already."""
        row = conn.execute(self._insert_ignoring(articles).returning(articles.c.id),
                           _article_row(item, run_id, now)).first()
        return None if row is None else row[0]

    def _insert_articles(self, conn, batch: Sequence[NewArticle], duplicate_of: dict[int, int],
                         existing: dict[str, int], run_id: str, now: datetime) -> dict[str, int]:
        """Insert the batch's new stories in one statement; content hash -> id of those inserted now.

        A story is new when no stored article has its text and it repeats none (duplicate_of);
        the first item carrying it is inserted. SQLAlchemy sends the rows as multi-row INSERTs
        with RETURNING (its "insertmanyvalues"), a few hundred rows a statement, instead of a
        statement per article. A story another writer stored since the lookup comes back
        without an id: it is added to existing, and its items are placed there as repeats.
        """
        fresh: dict[str, dict] = {}
        for position, item in enumerate(batch):
            if position not in duplicate_of and item.content_hash not in existing and item.content_hash not in fresh:
                fresh[item.content_hash] = _article_row(item, run_id, now)
        if not fresh:
            return {}
        returned = conn.execute(self._insert_ignoring(articles).returning(articles.c.id, articles.c.content_hash),
                                list(fresh.values())).all()
        inserted = {content_hash: article_id for article_id, content_hash in returned}
        lost = [content_hash for content_hash in fresh if content_hash not in inserted]
        if lost:
            existing.update(_lookup(conn, articles.c.content_hash, articles.c.id, lost))
        return inserted

    def _insert_sources(self, conn, rows: list[dict]) -> None:
        """Record each (article, source) pair not recorded yet, with the fingerprint of its input."""
        if rows:  # one row per article, with a timestamp: SQLAlchemy binds the types
            conn.execute(self._insert_ignoring(article_sources), rows)

    def _insert_ignoring(self, table: Table):
        """INSERT ... ON CONFLICT DO NOTHING: a row stored already (by a retry or another writer) is skipped."""
        dialect = pg_dialect if self.engine.dialect.name == "postgresql" else sqlite_dialect
        return dialect.insert(table).on_conflict_do_nothing()

    def known_fingerprints(self, fingerprints: Iterable[str]) -> set[tuple[str, str]]:
        """The (fingerprint, source) pairs already stored: inputs a run can skip unread."""
        with self.engine.connect() as conn:
            return {(f, src) for rows in _select_in(conn, article_sources, ("fingerprint", "source"), "fingerprint",
                                                    list(dict.fromkeys(f for f in fingerprints if f)))
                    for f, src in rows}

    # -- classification side -----------------------------------------------------

    def iter_stale(self, model_version: str, frames: Sequence[str], batch_size: int = 5000,
                   languages: Sequence[str] | None = None) -> Iterator[tuple[list[int], list[str]]]:
        """Batches of (sentence ids, texts) that this model version has not scored on all frames, in id order.

        languages, when given, limits them to articles in those languages (or of unknown
        language, stored before detection existed): text the model cannot read stays unscored.
        Each batch is read when it is asked for (the sentences after the last id yielded), so
        a store of millions of sentences is never in memory at once, and predictions written
        between batches do not disturb the reading.
        """
        # per sentence, its predictions by this version, through the primary key (sentence_id, frame)
        scored = (select(func.count()).select_from(predictions)
                  .where(predictions.c.sentence_id == sentences.c.id, predictions.c.frame.in_(list(frames)),
                         predictions.c.model_version == model_version)
                  .scalar_subquery())
        query = select(sentences.c.id, sentences.c.text).where(scored < len(frames))
        if languages is not None:
            query = query.join(articles, articles.c.id == sentences.c.article_id).where(_readable(languages))
        last = None
        while True:
            page = query if last is None else query.where(sentences.c.id > last)
            with self.engine.connect() as conn:
                rows = conn.execute(page.order_by(sentences.c.id).limit(batch_size)).all()
            if not rows:
                return
            yield [r[0] for r in rows], [r[1] for r in rows]
            if len(rows) < batch_size:
                return
            last = rows[-1][0]

    def sentence_positions(self, article_ids: Sequence[int]) -> list[tuple[int, int, int]]:
        """(sentence id, article id, position in the article) of every sentence of these articles, by id."""
        with self.engine.connect() as conn:
            return sorted(tuple(row) for rows in _select_in(conn, sentences, ("id", "article_id", "idx"),
                                                            "article_id", [int(a) for a in article_ids])
                          for row in rows)

    def write_predictions(self, sentence_ids: Sequence[int], frames: Sequence[str],
                          labels, scores, model_version: str, replace: bool = True) -> None:
        """Write this model version's predictions for these sentences, in one transaction.

        replace deletes the sentences' earlier predictions first (rescoring after a
        promotion); new sentences have none, and skipping the delete halves the cost.
        """
        count, width = len(sentence_ids), len(frames)
        rows = list(zip(np.repeat(np.asarray(sentence_ids, dtype=np.int64), width).tolist(),
                        list(frames) * count,
                        np.asarray(scores, dtype=float).reshape(-1).tolist(),
                        np.asarray(labels).astype(bool).astype(int).reshape(-1).tolist(),
                        [model_version] * (count * width)))
        try:
            with self.engine.begin() as conn:
                if replace:
                    for chunk in _chunks(list(sentence_ids), 500):
                        conn.execute(predictions.delete().where(predictions.c.sentence_id.in_(chunk)))
                _insert_many(conn, predictions, ("sentence_id", "frame", "score", "label", "model_version"), rows)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not write predictions (none of this batch was kept): {exc}") from None

    def unreadable_articles(self, languages: Sequence[str]) -> dict[str, int]:
        """Articles in languages outside the given ones, counted per language: stored, never classified."""
        query = (select(articles.c.language, func.count())
                 .where(articles.c.language.is_not(None), articles.c.language.not_in(list(languages)))
                 .group_by(articles.c.language).order_by(func.count().desc(), articles.c.language))
        with self.engine.connect() as conn:
            return {language: int(n) for language, n in conn.execute(query)}

    def drop_predictions_outside(self, languages: Sequence[str]) -> None:
        """Delete predictions of sentences whose article is in a language the model cannot read."""
        unreadable = (select(sentences.c.id).join(articles, articles.c.id == sentences.c.article_id)
                      .where(articles.c.language.is_not(None), articles.c.language.not_in(list(languages))))
        with self.engine.begin() as conn:
            conn.execute(predictions.delete().where(predictions.c.sentence_id.in_(unreadable)))

    def has_other_versions(self, model_version: str) -> bool:
        """Whether any stored prediction was made by another model version (a promotion to catch up on)."""
        with self.engine.connect() as conn:
            return conn.execute(select(predictions.c.sentence_id)
                                .where(predictions.c.model_version != model_version).limit(1)).first() is not None

    def all_scored(self, model_version: str, frames: Sequence[str], languages: Sequence[str]) -> bool:
        """Whether this version scored every frame of every sentence in a readable language (or of unknown
        language): what iter_stale would find nothing for, told by two counts instead of a lookup per sentence
        (0.13 s against 0.45 s on 200,000 sentences). Exact once drop_predictions_outside and
        drop_other_frames have run: a (sentence, frame) pair has one prediction at most, so the counts match
        only when none is missing."""
        readable = (select(func.count()).select_from(sentences.join(articles, articles.c.id == sentences.c.article_id))
                    .where(_readable(languages)))
        made = (select(func.count()).select_from(predictions)
                .where(predictions.c.model_version == model_version, predictions.c.frame.in_(list(frames))))
        with self.engine.connect() as conn:
            return conn.execute(made).scalar_one() >= conn.execute(readable).scalar_one() * len(frames)

    def drop_other_frames(self, frames: Sequence[str]) -> None:
        """Delete predictions for frames the current taxonomy no longer has."""
        with self.engine.begin() as conn:
            conn.execute(predictions.delete().where(predictions.c.frame.not_in(list(frames))))

    # -- runs --------------------------------------------------------------------

    def run_lock(self) -> RunLock:
        """The lock a run holds while it writes to this store (rhetoric.locking): shared by every spelling
        of the store's address and every project folder that writes to it."""
        return store_lock(self.engine)

    def start_run(self, run_id: str, model_version: str | None = None, status: str = "running") -> None:
        """Record a run (again, when a retried flow run starts over with the same id)."""
        with self.engine.begin() as conn:
            conn.execute(self._insert_ignoring(runs).values(run_id=run_id, started=_utcnow(), status=status,
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
                                .values(status="interrupted", finished=_utcnow())).rowcount

    def alive_lock(self, run_id: str) -> RunLock:
        """The lock a run holds on itself while it is alive (rhetoric.locking.alive_lock)."""
        return alive_lock(self.engine, run_id)

    def finish_run(self, run_id: str, status: str, counts: dict, details: dict | None = None) -> None:
        values = {k: counts[k] for k in ("articles_new", "articles_seen", "articles_refused",
                                         "sentences_new", "sentences_rescored", "model_version")
                  if k in counts}
        with self.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(
                finished=_utcnow(), status=status, details=json.dumps(details or {}, default=str), **values))

    # -- exports and read side ---------------------------------------------------

    def export_runs(self) -> pd.DataFrame:
        """Runs, oldest first, with the columns of `rhetoric export runs`."""
        query = select(runs.c.run_id, runs.c.started, runs.c.finished, runs.c.status,
                       runs.c.articles_new, runs.c.sentences_new, runs.c.model_version).order_by(runs.c.started)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=[
                "run_id", "started", "finished", "status", "articles_new", "sentences_new", "model_version"])

    def export_sentences(self, frames: Sequence[str]) -> pd.DataFrame:
        """Every sentence with its article's metadata and one label and score column per frame."""
        base = (select(sentences.c.id.label("sentence_id"), articles.c.source, articles.c.published,
                       articles.c.outlet, articles.c.title, articles.c.url, articles.c.language,
                       sentences.c.idx, sentences.c.text)
                .join(articles, articles.c.id == sentences.c.article_id)
                .order_by(articles.c.id, sentences.c.idx))
        preds = select(predictions.c.sentence_id, predictions.c.frame, predictions.c.label,
                       predictions.c.score, predictions.c.model_version)
        with self.engine.connect() as conn:
            table = pd.DataFrame(conn.execute(base).all(), columns=[
                "sentence_id", "source", "published", "outlet", "title", "url", "language", "idx", "text"])
            scored = pd.DataFrame(conn.execute(preds).all(),
                                  columns=["sentence_id", "frame", "label", "score", "model_version"])
        return _widen(table, scored, frames)

    def article_names(self, article_ids: Iterable[int]) -> dict[int, str]:
        """'"Title" (source)' of each stored article among these ids: how a run summary names a repeated story."""
        with self.engine.connect() as conn:
            return {article_id: f'"{title or "untitled"}" ({source})'
                    for rows in _select_in(conn, articles, ("id", "title", "source"), "id",
                                           sorted({int(i) for i in article_ids}))
                    for article_id, title, source in rows}

    def texts_by_id(self, sentence_ids: Iterable) -> pd.DataFrame:
        """sentence_id, text of the stored sentences among these ids (audit rows are matched this way)."""
        wanted = sorted({int(i) for i in sentence_ids if str(i).strip().lstrip("-").isdigit()})
        with self.engine.connect() as conn:
            rows = [tuple(row) for found in _select_in(conn, sentences, ("id", "text"), "id", wanted) for row in found]
        return pd.DataFrame(rows, columns=["sentence_id", "text"])

    def sentence_texts(self) -> pd.DataFrame:
        """sentence_id, text, source, outlet, published, language of every stored sentence."""
        query = (select(sentences.c.id, sentences.c.text, articles.c.source, articles.c.outlet,
                        articles.c.published, articles.c.language)
                 .join(articles, articles.c.id == sentences.c.article_id))
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).all(),
                                columns=["sentence_id", "text", "source", "outlet", "published", "language"])

    def article_frame_totals(self) -> pd.DataFrame:
        """One row per scored article and frame: its sentences, those labelled, and their summed score.

        Only labelled predictions are aggregated (a few percent of the table), then articles
        without a label for a frame get a zero row: 5x faster than grouping every prediction.
        """
        labelled = (select(sentences.c.article_id, predictions.c.frame, func.count(), func.sum(predictions.c.score))
                    .select_from(predictions.join(sentences, sentences.c.id == predictions.c.sentence_id))
                    .where(predictions.c.label == 1)
                    .group_by(sentences.c.article_id, predictions.c.frame))
        scored = (select(articles.c.id, articles.c.published, articles.c.outlet, articles.c.n_sentences)
                  .where(exists(select(predictions.c.sentence_id)
                                .join(sentences, sentences.c.id == predictions.c.sentence_id)
                                .where(sentences.c.article_id == articles.c.id))))
        # plain tuples: pandas asks every SQLAlchemy Row for a dtype first, which took half of this method
        with self.engine.connect() as conn:
            counts = pd.DataFrame(list(map(tuple, conn.execute(labelled).all())),
                                  columns=["article_id", "frame", "count", "score_sum"])
            table = pd.DataFrame(list(map(tuple, conn.execute(scored).all())),
                                 columns=["article_id", "published", "outlet", "sentences"])
            frames = [f for (f,) in conn.execute(select(predictions.c.frame).distinct())]
        grid = table.merge(pd.DataFrame({"frame": pd.Series(frames, dtype=object)}), how="cross")
        counts["frame"] = counts["frame"].astype(object)
        frame = grid.merge(counts, on=["article_id", "frame"], how="left").fillna({"count": 0, "score_sum": 0.0})
        frame["published"] = pd.to_datetime(frame["published"])
        frame["outlet"] = frame["outlet"].fillna("unknown")
        return frame[["article_id", "published", "outlet", "frame", "sentences", "count", "score_sum"]].astype(
            {"article_id": "int64", "sentences": "int64", "count": "int64", "score_sum": "float64"})

    def top_sentences(self, frame: str, limit: int = 200) -> pd.DataFrame:
        """The highest-scoring sentences labelled with this frame."""
        query = (select(sentences.c.id, articles.c.id, articles.c.published, articles.c.outlet,
                        articles.c.title, articles.c.url, articles.c.source, sentences.c.idx,
                        sentences.c.text, predictions.c.score)
                 .select_from(predictions.join(sentences, sentences.c.id == predictions.c.sentence_id)
                              .join(articles, articles.c.id == sentences.c.article_id))
                 .where(predictions.c.frame == frame, predictions.c.label == 1)
                 .order_by(predictions.c.score.desc()).limit(limit))
        with self.engine.connect() as conn:
            table = pd.DataFrame(conn.execute(query).all(), columns=[
                "sentence_id", "article_id", "published", "outlet", "title", "url", "source",
                "idx", "text", "score"])
        table["published"] = pd.to_datetime(table["published"])
        return table

    def cooccurrence(self) -> pd.DataFrame:
        """Sentences labelled with both frames of each pair (a frame with itself: its own count)."""
        query = sql_text(
            "SELECT a.frame AS frame_a, b.frame AS frame_b, COUNT(*) AS count "
            "FROM predictions a JOIN predictions b ON a.sentence_id = b.sentence_id "
            "WHERE a.label = 1 AND b.label = 1 AND a.frame <= b.frame GROUP BY a.frame, b.frame")
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=["frame_a", "frame_b", "count"])

    def corpus_summary(self) -> dict:
        """Counts, date span, outlets, last run and model versions in use."""
        with self.engine.connect() as conn:
            n_articles, first, last = conn.execute(
                select(func.count(articles.c.id), func.min(articles.c.published),
                       func.max(articles.c.published))).one()
            n_sentences = conn.execute(select(func.count(sentences.c.id))).scalar_one()
            outlets = [o for (o,) in conn.execute(select(articles.c.outlet).distinct()
                                                  .order_by(articles.c.outlet)) if o]
            undated = conn.execute(select(func.count()).where(articles.c.published.is_(None))).scalar_one()
            versions = [v for (v,) in conn.execute(select(predictions.c.model_version).distinct())]
            languages = {language: int(n) for language, n in conn.execute(
                select(articles.c.language, func.count()).where(articles.c.language.is_not(None))
                .group_by(articles.c.language))}
        return {"languages": languages, "articles": n_articles, "sentences": n_sentences, "first_published": first,
                "last_published": last, "undated_articles": undated, "outlets": outlets,
                "last_run": self.last_run(), "model_versions": versions}

    def content_token(self) -> list:
        """Figures that change whenever what the dashboard shows of the store changes: the store's address, and
        the row count and highest id of articles, their sources and sentences, and the number of predictions
        (classifying, rescoring and dropping frames all change it; versions are named by the model)."""
        with self.engine.connect() as conn:
            figures = [conn.execute(select(func.count(), func.max(table.c.id))).one()
                       for table in (articles, article_sources, sentences)]
            scored = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
        return [self.engine.url.render_as_string(hide_password=True), *[list(f) for f in figures], scored]

    def last_run(self) -> dict | None:
        """The runs table's row of the run started last."""
        with self.engine.connect() as conn:
            row = conn.execute(select(runs).order_by(runs.c.started.desc()).limit(1)).mappings().first()
        return dict(row) if row else None

    def run_frame_counts(self, run_id: str) -> pd.DataFrame:
        """Per frame: sentences of the articles a run added that carry a prediction, and how many are labelled."""
        query = (select(predictions.c.frame, func.count(), func.sum(predictions.c.label))
                 .select_from(predictions.join(sentences, sentences.c.id == predictions.c.sentence_id)
                              .join(articles, articles.c.id == sentences.c.article_id))
                 .where(articles.c.run_id == run_id)
                 .group_by(predictions.c.frame).order_by(predictions.c.frame))
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=["frame", "sentences", "labelled"])


def _widen(table: pd.DataFrame, scored: pd.DataFrame, frames: Sequence[str]) -> pd.DataFrame:
    frames = list(frames)
    labels = scored.pivot(index="sentence_id", columns="frame", values="label")
    scores = scored.pivot(index="sentence_id", columns="frame", values="score")
    versions = scored.groupby("sentence_id")["model_version"].first()
    out = table.set_index("sentence_id")
    for frame in frames:
        # a sentence left unclassified (a language the model cannot read) keeps empty cells, not 0
        out[frame] = labels[frame].reindex(out.index).astype("Int64") if frame in labels else pd.NA
    for frame in frames:
        out[f"score_{frame}"] = scores[frame].reindex(out.index) if frame in scores else float("nan")
    out["model_version"] = versions.reindex(out.index)
    return out.reset_index()


_SENTENCE_COLUMNS = ("article_id", "idx", "text")
_BAND_COLUMNS = ("band_key", "article_id")


def _band_rows(signed: Sequence[tuple[int, str]]) -> list[tuple[int, int]]:
    """(band key, article id) rows of these (article id, signature) pairs; unusable signatures give none."""
    positions, values = decode_signatures([text for _, text in signed])
    if not len(positions):
        return []
    ids = np.repeat(np.array([signed[p][0] for p in positions], dtype=np.int64), BANDS)
    return list(zip(band_keys(values).ravel().tolist(), ids.tolist()))


def _claim(item: NewArticle, repeats: int | None, existing: dict[str, int], inserted: dict[str, int]
           ) -> tuple[int, bool]:
    """The article this item belongs to after Store._insert_articles, and whether it is new: the one it repeats,
    the one inserted for its text (the first item to claim it is the new one), or the stored one."""
    if repeats is not None:
        return repeats, False
    if item.content_hash in inserted:
        return inserted.pop(item.content_hash), True
    return existing[item.content_hash], False


def _article_row(item: NewArticle, run_id: str, now: datetime) -> dict:
    return {"content_hash": item.content_hash, "title": item.title, "published": item.published,
            "date_missing": item.published is None, "outlet": item.outlet, "source": item.source,
            "url": item.url, "author": item.author, "signature": item.signature, "language": item.language,
            "n_sentences": len(item.sentences), "run_id": run_id, "created_at": now}


def _source_row(article_id: int, item: NewArticle, run_id: str, now: datetime) -> dict:
    return {"article_id": article_id, "source": item.source, "outlet": item.outlet, "url": item.url,
            "canonical_url": item.canonical_url, "fingerprint": item.fingerprint, "run_id": run_id, "seen_at": now}


def _lost_schema_race(exc: SQLAlchemyError) -> bool:
    """Whether creating the schema failed because another process was creating it at the same time."""
    reason = _reason(exc).lower()
    return "already exists" in reason or "duplicate" in reason


def _reason(exc: SQLAlchemyError) -> str:
    """The database's own message, on one line."""
    return (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["unknown error"])[0]


def _lookup(conn, key_column, value_column, keys: Iterable) -> dict:
    """Map each key found in key_column to value_column, querying in chunks the driver accepts."""
    found: dict = {}
    for rows in _select_in(conn, key_column.table, (key_column.name, value_column.name), key_column.name,
                           [k for k in dict.fromkeys(keys) if k]):
        found.update(rows)
    return found


# the DB-API parameter marker of the drivers whose statements we write ourselves (sqlite3, psycopg)
_PARAM_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _insert_many(conn, table: Table, columns: Sequence[str], rows: list[tuple]) -> None:
    """Insert many rows at DB-API executemany speed, skipping rows stored already (ON CONFLICT DO NOTHING).

    SQLAlchemy's per-row parameter processing costs about 10 us a row, which dominated a
    run's cost per sentence (four prediction rows each); the plain driver call does not.
    SQLite (3.24+) and PostgreSQL share the ON CONFLICT syntax.
    """
    if not rows:
        return
    mark = _PARAM_MARKS.get(conn.dialect.paramstyle)
    if mark is None:  # numeric or named parameter styles: let SQLAlchemy bind them
        conn.execute(table.insert(), [dict(zip(columns, row)) for row in rows])
        return
    sql = (f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}) "
           "ON CONFLICT DO NOTHING")
    conn.exec_driver_sql(sql, rows)


def _select_in(conn, table: Table, columns: Sequence[str], key: str, values: list,
               size: int = 5000) -> Iterator[list[tuple]]:
    """The rows (columns) of table whose key is among the values, `size` values a query, at DB-API speed.

    SQLAlchemy renders an expanding IN list anew for every call (about 1 ms per 500
    values); one plain statement per chunk size does not. Values must be plain ints or
    strings (they are bound as parameters, never pasted into the SQL).
    """
    mark = _PARAM_MARKS.get(conn.dialect.paramstyle)
    if conn.dialect.name == "sqlite":
        import sqlite3

        if sqlite3.sqlite_version_info < (3, 32):  # older SQLite binds at most 999 parameters a statement
            size = min(size, 999)
    for chunk in _chunks(values, size if mark else 500):
        if mark is None:  # other parameter styles: let SQLAlchemy bind them
            yield conn.execute(select(*[table.c[c] for c in columns]).where(table.c[key].in_(chunk))).all()
            continue
        sql = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {key} IN ({', '.join([mark] * len(chunk))})"
        yield conn.exec_driver_sql(sql, tuple(chunk)).all()


def _readable(languages: Sequence[str]):
    """Articles a model reading these languages can score: in one of them, or of unknown language (stored
    before detection existed)."""
    return or_(articles.c.language.in_(list(languages)), articles.c.language.is_(None))


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
