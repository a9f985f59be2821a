"""The store's tables (SQLAlchemy Core metadata) and the rows of article_bands.

Tables: articles (one row per distinct story), article_sources (every file/URL/outlet
that carried it), article_bands (the LSH band keys of each story's near-duplicate
signature, so a lookup reads only the candidates' signatures), sentences, scores (one row
per scored sentence: the model version and a score and label column per frame), runs, and
migrations (the data migrations a store has had). The view predictions shows scores as one
row per sentence and frame. Text columns have no length limit (feeds carry
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
SCORES_MIGRATION = "scores"  # the predictions table moved into scores (rhetoric.store.upgrades.move_predictions)

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

# One row per scored sentence: the model version and, per frame, a score and a label column (score_<frame>,
# label_<frame>), added when a model with that frame first writes (rhetoric.store.scoring). One row of n frames
# instead of n rows: 200,000 sentences of four frames were written in 0.36 s against 1.45 s for the rows of
# the long table earlier versions kept, which the predictions view still shows (PREDICTIONS_VIEW).
scores = Table(
    "scores", metadata,
    Column("sentence_id", Integer, ForeignKey("sentences.id", ondelete="CASCADE"), primary_key=True),
    Column("model_version", String(64), nullable=False),
)
SCORE_PREFIX, LABEL_PREFIX = "score_", "label_"

# predictions: a view of scores with one row per sentence and frame (sentence_id, frame, score, label,
# model_version), as earlier versions stored it; for SQL users and the reads that want rows per frame
views = MetaData()
predictions = Table(
    "predictions", views,
    Column("sentence_id", Integer),
    Column("frame", String(64)),
    Column("score", Float),
    Column("label", SmallInteger),
    Column("model_version", String(64)),
)


def frame_columns(frame: str) -> tuple[str, str]:
    """The score and label columns' names of a frame in the scores table (frame names are lower-case letters,
    digits and '_', starting with a letter: rhetoric.labels.FRAME_NAME)."""
    return SCORE_PREFIX + frame, LABEL_PREFIX + frame


def frame_score(table: Table, frame: str) -> Column:
    """A frame's score column of scores_table()."""
    return table.c[SCORE_PREFIX + frame]


def frame_label(table: Table, frame: str) -> Column:
    """A frame's label column of scores_table()."""
    return table.c[LABEL_PREFIX + frame]


def scores_table(frames: Sequence[str]) -> Table:
    """The scores table with these frames' columns, for building statements (the columns must exist)."""
    columns = [Column("sentence_id", Integer, primary_key=True), Column("model_version", String(64))]
    for frame in frames:
        score, label = frame_columns(frame)
        columns += [Column(score, Float), Column(label, SmallInteger)]
    return Table("scores", MetaData(), *columns)


def predictions_view_sql(frames: Sequence[str]) -> str:
    """The SELECT of the predictions view over these frame columns of scores (an empty view without any)."""
    typed = "CAST({} AS VARCHAR(64)) AS frame, CAST({} AS FLOAT) AS score, CAST({} AS SMALLINT) AS label"
    parts = []
    for frame in frames:
        score, label = frame_columns(frame)
        literal = f"'{frame}'"
        parts.append(f"SELECT sentence_id, {typed.format(literal, score, label)}, model_version "
                     f"FROM scores WHERE {score} IS NOT NULL")
    return " UNION ALL ".join(parts) or (
        f"SELECT sentence_id, {typed.format('NULL', 'NULL', 'NULL')}, model_version FROM scores WHERE 1 = 0")


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
