"""The store's tables (SQLAlchemy Core metadata) and the rows of article_bands.

Tables: articles (one row per distinct story), article_sources (every file/URL/outlet
that carried it), article_bands (the LSH band keys of each story's near-duplicate
signature, so a lookup reads only the candidates' signatures), sentences, predictions
(one row per sentence and frame, stamped with the model version), runs, and migrations
(the data migrations a store has had). Text columns have no length limit (feeds carry
300-character titles and 5,000-character URLs).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sqlalchemy import (
    BigInteger, Boolean, Column, Date, DateTime, Float, ForeignKey, Index, Integer, MetaData, SmallInteger,
    String, Table, Text, UniqueConstraint,
)

from rhetoric.dedupe import BANDS, band_keys, decode_signatures

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
WIDENED = (("articles", "outlet"), ("article_sources", "outlet"), ("article_sources", "canonical_url"))

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


SENTENCE_COLUMNS = ("article_id", "idx", "text")
BAND_COLUMNS = ("band_key", "article_id")


def band_rows(signed: Sequence[tuple[int, str]]) -> list[tuple[int, int]]:
    """(band key, article id) rows of these (article id, signature) pairs, in key order; unusable signatures
    give none. Inserted in key order, the primary key's index takes them in one pass instead of at random
    places (320,000 rows into SQLite: 0.8 s against 1.1 s)."""
    positions, values = decode_signatures([text for _, text in signed])
    if not len(positions):
        return []
    ids = np.repeat(np.array([signed[p][0] for p in positions], dtype=np.int64), BANDS)
    keys = band_keys(values).ravel()
    order = np.lexsort((ids, keys))
    return list(zip(keys[order].tolist(), ids[order].tolist()))
