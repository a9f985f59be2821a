"""Statements the store's parts share: chunked lookups and inserts at DB-API speed, idempotent inserts, errors."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable, Iterator, Sequence

from sqlalchemy import Table, or_, select
from sqlalchemy.dialects import postgresql as pg_dialect, sqlite as sqlite_dialect
from sqlalchemy.exc import SQLAlchemyError

from rhetoric.store.schema import articles

# the DB-API parameter marker of the drivers whose statements we write ourselves (sqlite3, psycopg)
_PARAM_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def reason(exc: SQLAlchemyError) -> str:
    """The database's own message, on one line."""
    return (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["unknown error"])[0]


def insert_ignoring(engine, table: Table):
    """INSERT ... ON CONFLICT DO NOTHING: a row stored already (by a retry or another writer) is skipped."""
    dialect = pg_dialect if engine.dialect.name == "postgresql" else sqlite_dialect
    return dialect.insert(table).on_conflict_do_nothing()


def lookup(conn, key_column, value_column, keys: Iterable) -> dict:
    """Map each key found in key_column to value_column, querying in chunks the driver accepts."""
    found: dict = {}
    for rows in select_in(conn, key_column.table, (key_column.name, value_column.name), key_column.name,
                          [k for k in dict.fromkeys(keys) if k]):
        found.update(rows)
    return found


def insert_many(conn, table: Table, columns: Sequence[str], rows: list[tuple]) -> None:
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


def bound(conn, table: Table, columns: Sequence[str], rows: list[tuple]) -> list[tuple]:
    """The rows with each value of a column whose type the dialect binds itself (on SQLite: dates and times as
    text, booleans as integers) passed through that type's bind processor, as SQLAlchemy would bind them: for
    insert_many, which hands rows to the driver as they are. Each distinct value is processed once (a batch's
    rows share their time, and their dates are few)."""
    processors = [(at, process, {}) for at, name in enumerate(columns)
                  if (process := table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect))]
    if not processors:
        return rows
    out = []
    for row in rows:
        values = list(row)
        for at, process, done in processors:
            value = values[at]
            if value not in done:
                done[value] = process(value)
            values[at] = done[value]
        out.append(tuple(values))
    return out


def select_in(conn, table: Table, columns: Sequence[str], key: str, values: list,
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
    if mark is None:  # other parameter styles: let SQLAlchemy bind them
        for chunk in chunks(values, 500):
            yield conn.execute(select(*[table.c[c] for c in columns]).where(table.c[key].in_(chunk))).all()
        return
    # the driver's own cursor, on conn's connection and in its transaction: plain tuples, without SQLAlchemy
    # making a Row of each (a third of the time for the 50,000 rows of a chunk's sentences)
    cursor = conn.connection.cursor()
    try:
        for chunk in chunks(values, size):
            cursor.execute(f"SELECT {', '.join(columns)} FROM {table.name} "
                           f"WHERE {key} IN ({', '.join([mark] * len(chunk))})", tuple(chunk))
            yield cursor.fetchall()
    finally:
        cursor.close()


def readable(languages: Sequence[str]):
    """Articles a model reading these languages can score: in one of them, or of unknown language (stored
    before detection existed)."""
    return or_(articles.c.language.in_(list(languages)), articles.c.language.is_(None))


def chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
