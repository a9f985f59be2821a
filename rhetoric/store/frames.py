"""The frame columns of the scores table: which frames have them, adding and dropping them, and the
predictions view over them.

A frame's columns (schema.frame_columns) are added when a model with that frame first
writes its scores, and dropped when the taxonomy no longer has it; the predictions view
(one row per sentence and frame, as earlier versions stored them) is made again each time.
Runs change them holding the run lock, and the move of an older store's predictions
(rhetoric.store.upgrades) queues on its migrations row: one process at a time.
"""

from __future__ import annotations

import sqlite3
from typing import Sequence

from sqlalchemy import inspect, text as sql_text

from rhetoric.store.schema import SCORE_PREFIX, frame_columns, predictions_view_sql


def stored_frames(conn) -> list[str]:
    """The frames the scores table has columns for, in the order they were added."""
    return [c["name"].removeprefix(SCORE_PREFIX) for c in inspect(conn).get_columns("scores")
            if c["name"].startswith(SCORE_PREFIX)]


def scored_frames(conn) -> list[str]:
    """The frames with columns that hold at least one score, in the order they were added."""
    return [frame for frame in stored_frames(conn)
            if conn.execute(sql_text(f"SELECT 1 FROM scores WHERE {frame_columns(frame)[0]} IS NOT NULL LIMIT 1"))
            .first() is not None]


def add_frames(conn, frames: Sequence[str], view: bool = True) -> list[str]:
    """Give these frames their columns where they have none yet, in the transaction of conn, and make the
    predictions view again when any was added (unless view is False); the frames the table has columns for
    afterwards."""
    present = stored_frames(conn)
    missing = [frame for frame in frames if frame not in present]
    for frame in missing:
        score, label = frame_columns(frame)
        conn.execute(sql_text(f"ALTER TABLE scores ADD COLUMN {score} FLOAT"))
        conn.execute(sql_text(f"ALTER TABLE scores ADD COLUMN {label} SMALLINT"))
    if missing and view:
        make_view(conn, present + missing)
    return present + missing


def drop_frames(conn, frames: Sequence[str]) -> None:
    """Remove these frames' scores and labels: their columns are dropped (SQLite before 3.35 cannot, and
    empties them instead)."""
    present = stored_frames(conn)
    gone = [frame for frame in frames if frame in present]
    if not gone:
        return
    kept = [frame for frame in present if frame not in gone]
    conn.execute(sql_text("DROP VIEW IF EXISTS predictions"))
    for frame in gone:
        score, label = frame_columns(frame)
        if conn.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
            conn.execute(sql_text(f"UPDATE scores SET {score} = NULL, {label} = NULL WHERE {score} IS NOT NULL"))
            kept.append(frame)  # still a column, of no rows: the view shows none of it
        else:
            conn.execute(sql_text(f"ALTER TABLE scores DROP COLUMN {label}"))
            conn.execute(sql_text(f"ALTER TABLE scores DROP COLUMN {score}"))
    make_view(conn, kept)


def make_view(conn, frames: Sequence[str]) -> None:
    """(Re)create the predictions view over these frames' columns."""
    conn.execute(sql_text("DROP VIEW IF EXISTS predictions"))
    conn.execute(sql_text(f"CREATE VIEW predictions AS {predictions_view_sql(frames)}"))
