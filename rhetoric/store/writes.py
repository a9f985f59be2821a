"""Writing articles, and what a run asks the store before writing them: known texts, addresses and inputs,
and near-duplicate candidates through the stored band keys.

Every insert is idempotent (ON CONFLICT DO NOTHING), and a row the database refuses is
refused alone, by name, while the rest of its batch is stored.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from typing import Iterable, Iterator, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from rhetoric.dedupe import canonical_url
from rhetoric.errors import StoreError
from rhetoric.ingest import NewArticle, Refusal
from rhetoric.store.schema import (
    BAND_COLUMNS, SENTENCE_COLUMNS, article_bands, article_sources, articles, band_rows, sentences,
)
from rhetoric.store.sql import bound, insert_ignoring, insert_many, lookup, reason, select_in, utcnow


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


class ArticleWrites:
    """The ingest side of Store (rhetoric.store): a mixin that uses the store's engine."""

    def known_hashes(self, hashes: Iterable[str]) -> dict[str, int]:
        """Map each already stored content hash to its article id."""
        with self.engine.connect() as conn:
            return lookup(conn, articles.c.content_hash, articles.c.id, hashes)

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
                found.update(lookup(conn, column, article_sources.c.article_id, wanted))
            for rows in select_in(conn, article_sources, ("canonical_url", "url", "source", "article_id"),
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
            for rows in select_in(conn, article_bands, ("band_key", "article_id"), "band_key", [int(k) for k in keys]):
                if rows:
                    found = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=2 * len(rows)).reshape(-1, 2)
                    yield found[:, 0], found[:, 1]

    def signatures_of(self, article_ids: Iterable[int]) -> list[tuple[int, str]]:
        """(article id, signature) of these stored articles that have one."""
        with self.engine.connect() as conn:
            return [(article_id, text) for rows in select_in(conn, articles, ("id", "signature"), "id",
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
            raise StoreError(f"{where}: could not store the batch (nothing of it was kept): {reason(exc)}; "
                             "the next run tries again") from None

    def _write_batch(self, conn, batch: Sequence[NewArticle], run_id: str, duplicate_of: dict[int, int],
                     isolate: bool) -> AddResult:
        """Write the batch on conn: all at once, or (isolate) each item in its own savepoint."""
        result = AddResult()
        now = utcnow()
        existing = lookup(conn, articles.c.content_hash, articles.c.id, [a.content_hash for a in batch])
        # all at once: the batch's new stories in one statement; item by item: each in its savepoint (_place)
        inserted = None if isolate else self._insert_articles(conn, batch, duplicate_of, existing, run_id, now)
        sentence_rows: list[tuple] = []
        signed: list[tuple[int, str]] = []
        source_rows: dict[tuple[int, str], tuple] = {}
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
                        insert_many(conn, sentences, SENTENCE_COLUMNS, rows)
                        insert_many(conn, article_bands, BAND_COLUMNS, band_rows(bands))
                        self._insert_sources(conn, [source])
            except (IntegrityError, DataError) as exc:
                if not isolate:
                    raise
                result.refused.append(Refusal(item.source, f"the store refused it: {reason(exc)}"))
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
        insert_many(conn, sentences, SENTENCE_COLUMNS, sentence_rows)
        insert_many(conn, article_bands, BAND_COLUMNS, band_rows(signed))
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
        row = conn.execute(insert_ignoring(self.engine, articles).returning(articles.c.id),
                           dict(zip(ARTICLE_COLUMNS, _article_row(item, run_id, now)))).first()
        return None if row is None else row[0]

    def _insert_articles(self, conn, batch: Sequence[NewArticle], duplicate_of: dict[int, int],
                         existing: dict[str, int], run_id: str, now: datetime) -> dict[str, int]:
        """Insert the batch's new stories at once; content hash -> id of those inserted now.

        A story is new when no stored article has its text and it repeats none (duplicate_of);
        the first item carrying it is inserted. The rows go in at the driver's speed
        (insert_many; SQLAlchemy's insertmanyvalues with RETURNING took 0.14 s of storing
        10,000 articles), and their ids are read back by content hash: those this run wrote
        are its new stories. A story another writer stored since the lookup carries that
        writer's run id: it is added to existing, and its items are placed there as repeats.
        """
        fresh: dict[str, tuple] = {}
        for position, item in enumerate(batch):
            if position not in duplicate_of and item.content_hash not in existing and item.content_hash not in fresh:
                fresh[item.content_hash] = _article_row(item, run_id, now)
        if not fresh:
            return {}
        insert_many(conn, articles, ARTICLE_COLUMNS, bound(conn, articles, ARTICLE_COLUMNS, list(fresh.values())))
        inserted: dict[str, int] = {}
        for rows in select_in(conn, articles, ("content_hash", "id", "run_id"), "content_hash", list(fresh)):
            for content_hash, article_id, writer in rows:
                (inserted if writer == run_id else existing)[content_hash] = article_id
        return inserted

    def _insert_sources(self, conn, rows: list[tuple]) -> None:
        """Record each (article, source) pair not recorded yet, with the fingerprint of its input.

        At the driver's speed (insert_many): SQLAlchemy's binding of each row's values took
        0.13 s of a chunk of 2,500 articles' storing under cProfile. The one value that needs
        binding, when the row was seen, is bound through its column's type (bound), as
        SQLAlchemy would bind it.
        """
        if rows:
            insert_many(conn, article_sources, SOURCE_COLUMNS, bound(conn, article_sources, SOURCE_COLUMNS, rows))

    def known_sources(self, sources: Iterable[str]) -> set[str]:
        """Those of these sources (a folder's file names, addresses) that some stored article was read from."""
        with self.engine.connect() as conn:
            return set(lookup(conn, article_sources.c.source, article_sources.c.article_id, sources))

    def known_fingerprints(self, fingerprints: Iterable[str]) -> set[tuple[str, str]]:
        """The (fingerprint, source) pairs already stored: inputs a run can skip unread."""
        with self.engine.connect() as conn:
            return {(f, src) for rows in select_in(conn, article_sources, ("fingerprint", "source"), "fingerprint",
                                                    list(dict.fromkeys(f for f in fingerprints if f)))
                    for f, src in rows}


def _claim(item: NewArticle, repeats: int | None, existing: dict[str, int], inserted: dict[str, int]
           ) -> tuple[int, bool]:
    """The article this item belongs to after Store._insert_articles, and whether it is new: the one it repeats,
    the one inserted for its text (the first item to claim it is the new one), or the stored one."""
    if repeats is not None:
        return repeats, False
    if item.content_hash in inserted:
        return inserted.pop(item.content_hash), True
    return existing[item.content_hash], False


# an article row's columns, in _article_row's order
ARTICLE_COLUMNS = ("content_hash", "title", "published", "date_missing", "outlet", "source", "url", "author",
                   "signature", "language", "n_sentences", "run_id", "created_at")


def _article_row(item: NewArticle, run_id: str, now: datetime) -> tuple:
    return (item.content_hash, item.title, item.published, item.published is None, item.outlet, item.source,
            item.url, item.author, item.signature, item.language, len(item.sentences), run_id, now)


# a source row's columns, in _source_row's order
SOURCE_COLUMNS = ("article_id", "source", "outlet", "url", "canonical_url", "fingerprint", "run_id", "seen_at")


def _source_row(article_id: int, item: NewArticle, run_id: str, now: datetime) -> tuple:
    return (article_id, item.source, item.outlet, item.url, item.canonical_url, item.fingerprint, run_id, now)
