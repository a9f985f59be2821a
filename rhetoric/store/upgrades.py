"""Creating a store's tables, and bringing a store made by an earlier version up to date."""

from __future__ import annotations

import time

from sqlalchemy import inspect, select, text as sql_text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError, SQLAlchemyError

from rhetoric.errors import StoreError
from rhetoric.labels import FRAME_NAME
from rhetoric.store.frames import add_frames, make_view, stored_frames
from rhetoric.store.schema import (
    BAND_COLUMNS, BANDS_MIGRATION, SCORES_MIGRATION, WIDENED, article_bands, articles, band_rows, frame_columns,
    metadata, migrations,
)
from rhetoric.store.sql import insert_ignoring, insert_many, reason, utcnow


def create_schema(engine: Engine, url: str) -> None:
    """Create the tables that do not exist yet, then upgrade what an earlier version made.

    Raises:
        StoreError: the store cannot be opened or created (url names it).
    """
    try:
        for attempt in range(1, 4):
            try:
                metadata.create_all(engine)
                add_missing_columns(engine)
                widen_limited_columns(engine)
                move_predictions(engine)
                backfill_bands(engine)
                return
            except (IntegrityError, OperationalError, ProgrammingError) as exc:
                # two processes opening a new store at once: the other one created it first; look again
                if attempt == 3 or not _lost_schema_race(exc):
                    raise
                time.sleep(0.2 * attempt)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the store {url!r}: {reason(exc)}; check --db / RHETORIC_DB or the "
                         "server") from None


def add_missing_columns(engine: Engine) -> None:
    """Add the nullable columns added since an earlier version made the store."""
    present = {c["name"] for c in inspect(engine).get_columns("articles")}
    if "language" not in present:
        with engine.begin() as conn:
            conn.execute(sql_text("ALTER TABLE articles ADD COLUMN language VARCHAR(16)"))


def widen_limited_columns(engine: Engine) -> None:
    """On PostgreSQL, lift the length limits of stores made by earlier versions (VARCHAR(200/2000) -> TEXT)."""
    if engine.dialect.name != "postgresql":
        return
    inspector = inspect(engine)
    limited = [(table, column) for table, column in WIDENED
               if any(c["name"] == column and getattr(c["type"], "length", None)
                      for c in inspector.get_columns(table))]
    index_sql = "CREATE INDEX ix_article_sources_canonical_url ON article_sources USING hash (canonical_url)"
    btree = [i for i in inspector.get_indexes("article_sources")
             if i["name"] == "ix_article_sources_canonical_url"
             and i.get("dialect_options", {}).get("postgresql_using", "btree") == "btree"]
    if not limited and not btree:
        return
    with engine.begin() as conn:
        for table, column in limited:
            conn.execute(sql_text(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT"))
        if btree:
            conn.execute(sql_text("DROP INDEX ix_article_sources_canonical_url"))
            conn.execute(sql_text(index_sql))


def move_predictions(engine: Engine) -> None:
    """Give a store its predictions view; a store made before the scores table gets its predictions (a table
    then, of one row per sentence and frame) moved into scores first, in one transaction.

    The transaction first records the move in migrations: processes opening the store at
    once queue there (a writer of the same row waits for the one before to commit; on SQLite
    the write lock does the same), so each looks after the one before it is done, and only
    the first moves anything. Frames of names the taxonomy could not
    have (not lower-case letters, digits and '_') are left behind: the current taxonomy has
    none of them, so the next run would drop them anyway.
    """
    if "predictions" in inspect(engine).get_view_names():
        return
    with engine.begin() as conn:
        conn.execute(insert_ignoring(engine, migrations).values(name=SCORES_MIGRATION, applied_at=utcnow()))
        present = inspect(conn)  # looked at after the queue: what an opener before this one committed
        if "predictions" in present.get_view_names():
            return
        if "predictions" not in present.get_table_names():
            make_view(conn, stored_frames(conn))
            return
        frames = [frame for (frame,) in conn.execute(sql_text("SELECT DISTINCT frame FROM predictions ORDER BY frame"))
                  if FRAME_NAME.match(frame)]
        add_frames(conn, frames, view=False)  # made below, once the table of the same name is gone
        picks = ", ".join(f"MAX(CASE WHEN frame = '{frame}' THEN {kind} END)"
                          for frame in frames for kind in ("score", "label"))
        columns = ", ".join(column for frame in frames for column in frame_columns(frame))
        if frames:
            conn.execute(sql_text(f"INSERT INTO scores (sentence_id, model_version, {columns}) "
                                  f"SELECT sentence_id, MAX(model_version), {picks} FROM predictions "
                                  "GROUP BY sentence_id"))
        conn.execute(sql_text("DROP TABLE predictions"))
        make_view(conn, frames)


def backfill_bands(engine: Engine, batch_size: int = 5000) -> None:
    """Give the articles of a store made before article_bands existed their band keys, in batches.

    Articles stored since always have theirs (written with the article). Each batch is
    committed alone and rows already there are skipped, so an interrupted backfill simply
    runs again on the next open; once done it is recorded in migrations and never looked
    for again.
    """
    done = select(migrations.c.name).where(migrations.c.name == BANDS_MIGRATION)
    with engine.connect() as conn:
        if conn.execute(done).first() is not None:
            return
    last = 0
    while True:
        with engine.begin() as conn:
            signed = conn.execute(select(articles.c.id, articles.c.signature)
                                  .where(articles.c.signature.is_not(None), articles.c.id > last)
                                  .order_by(articles.c.id).limit(batch_size)).all()
            if not signed:
                conn.execute(insert_ignoring(engine, migrations).values(name=BANDS_MIGRATION, applied_at=utcnow()))
                return
            insert_many(conn, article_bands, BAND_COLUMNS, band_rows(signed))
            last = signed[-1][0]


def _lost_schema_race(exc: SQLAlchemyError) -> bool:
    """Whether creating the schema failed because another process was creating it at the same time."""
    text = reason(exc).lower()
    return "already exists" in text or "duplicate" in text
