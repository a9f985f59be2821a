"""The store: idempotent ingestion, atomic batches, predictions stamped with their model version."""

import os
from pathlib import Path
import signal
import subprocess
import sys

import numpy as np
import pytest
from sqlalchemy import text as sql_text

import rhetoric.store
from rhetoric.errors import StoreError
from rhetoric.store import NewArticle, Store


def article(key: str, source: str | None = None, n: int = 3) -> NewArticle:
    return NewArticle(content_hash=key * 8, sentences=[f"{key} sentence {i}." for i in range(n)],
                      source=source or f"{key}.txt", outlet="Outlet", title=f"Title {key}")


def test_same_story_twice_is_stored_once_with_both_sources(store):
    first = store.add_articles([article("a"), article("b")], "run-1")
    again = store.add_articles([article("a", source="copy-of-a.txt")], "run-2")
    assert len(first.new_article_ids) == 2 and first.new_sentences == 6
    assert again.new_article_ids == [] and again.already_stored == 1
    assert again.duplicate_of == {"copy-of-a.txt": first.new_article_ids[0]}
    assert store.corpus_summary()["articles"] == 2
    assert store.corpus_summary()["sentences"] == 6


def test_failed_batch_leaves_nothing_half_written(store, monkeypatch):
    store.add_articles([article("a")], "run-1")
    calls = []

    def fail_late(conn, rows):  # the batch's articles and sentences are written by now, in the same transaction
        calls.append(len(rows))
        raise __import__("sqlalchemy").exc.OperationalError("insert", {}, Exception("disk full"))

    monkeypatch.setattr(store, "_insert_sources", fail_late)
    with pytest.raises(StoreError, match="nothing of it was kept"):
        store.add_articles([article("b"), article("c")], "run-2")
    assert calls == [2]
    summary = store.corpus_summary()
    assert (summary["articles"], summary["sentences"]) == (1, 3)


def test_predictions_follow_the_champion_version(store):
    store.add_articles([article("a", n=2)], "run-1")
    frames = ["f1", "f2"]
    (ids, texts), = list(store.iter_stale("v1", frames))
    assert texts == ["a sentence 0.", "a sentence 1."]
    store.write_predictions(ids, frames, np.array([[1, 0], [0, 0]]), np.array([[0.9, 0.2], [0.1, 0.3]]), "v1")
    assert list(store.iter_stale("v1", frames)) == []
    # a new champion makes every sentence stale again; rescoring replaces, never mixes
    assert sum(len(ids) for ids, _ in store.iter_stale("v2", frames)) == 2
    store.write_predictions(ids, frames, np.array([[0, 1], [0, 1]]), np.array([[0.4, 0.8], [0.1, 0.7]]), "v2")
    table = store.export_sentences(frames)
    assert table["model_version"].tolist() == ["v2", "v2"]
    assert table["f2"].tolist() == [1, 1] and table["f1"].tolist() == [0, 0]
    assert store.corpus_summary()["model_versions"] == ["v2"]


def test_read_side_aggregates(store):
    store.add_articles([article("a", n=2), article("b", n=1)], "run-1")
    frames = ["f1", "f2"]
    (ids, _), = list(store.iter_stale("v1", frames))
    store.write_predictions(ids, frames, np.array([[1, 1], [1, 0], [0, 0]]),
                            np.array([[0.9, 0.8], [0.7, 0.1], [0.2, 0.1]]), "v1")
    totals = store.article_frame_totals().sort_values(["article_id", "frame"])
    assert totals[["sentences", "count"]].values.tolist() == [[2, 2], [2, 1], [1, 0], [1, 0]]
    co = {(r.frame_a, r.frame_b): r.count for r in store.cooccurrence().itertuples()}
    assert co == {("f1", "f1"): 2, ("f1", "f2"): 1, ("f2", "f2"): 1}
    top = store.top_sentences("f1")
    assert top["text"].tolist() == ["a sentence 0.", "a sentence 1."]


def test_a_source_is_recorded_when_seen_as_sqlalchemy_would_write_it(store):
    from sqlalchemy import text

    store.add_articles([article("a"), article("b")], "run-1")
    with store.engine.connect() as conn:  # the article (written through SQLAlchemy) and its source share one time
        rows = conn.execute(text("SELECT s.seen_at, a.created_at FROM article_sources s "
                                 "JOIN articles a ON a.id = s.article_id")).all()
    assert len(rows) == 2 and all(seen == created for seen, created in rows)  # on SQLite, the same text


def test_articles_written_at_the_driver_s_speed_read_back_as_sqlalchemy_wrote_them(store, monkeypatch):
    """A batch's articles go to the driver as rows (rhetoric.store.sql.bound binds the dates, times and
    booleans as SQLAlchemy does): stored exactly as one article written through SQLAlchemy itself (the item by
    item path), and read back as the same values."""
    from datetime import date, datetime, timezone

    from sqlalchemy import select, text

    from rhetoric.store import articles

    now = datetime(2026, 11, 30, 9, 5, 1, 250000, tzinfo=timezone.utc)
    monkeypatch.setattr(rhetoric.store.writes, "utcnow", lambda: now)
    dated = NewArticle(content_hash="d" * 8, sentences=["One.", "Two."], source="d.txt", outlet="Outlet",
                       title="Dated", published=date(2024, 3, 5), url="https://example.org/d", language="en")
    batch = store.add_articles([dated, article("u")], "run-1")
    with store.engine.begin() as conn:  # the same article through SQLAlchemy, as a refused batch writes it
        store._insert_article(conn, NewArticle(**{**dated.__dict__, "content_hash": "e" * 8}), "run-1", now)
    with store.engine.connect() as conn:
        rows = {r.content_hash: r for r in conn.execute(select(articles)).all()}
        stored = {key: tuple(values) for key, *values in conn.execute(text(
            "SELECT content_hash, CAST(published AS TEXT), CAST(date_missing AS TEXT), CAST(created_at AS TEXT) "
            "FROM articles")).all()}
    assert len(batch.new_article_ids) == 2 and set(rows) == {"d" * 8, "e" * 8, "u" * 8}
    assert stored["d" * 8] == stored["e" * 8]  # the very same text or values in the database
    for key in ("d" * 8, "e" * 8):
        row = rows[key]
        assert (row.published, row.date_missing, row.n_sentences, row.language) == (date(2024, 3, 5), False, 2, "en")
        assert row.created_at.replace(tzinfo=None) == now.replace(tzinfo=None) and row.run_id == "run-1"
    assert (rows["u" * 8].published, rows["u" * 8].date_missing) == (None, True)


def test_top_sentences_cut_equal_scores_by_sentence_id(store):
    store.add_articles([article("a", n=3), article("b", n=2)], "run-1")
    (ids, _), = list(store.iter_stale("v1", ["f1"]))
    # the three at 0.7 as the same sentence scored in different batches can come out: apart in the last bits
    store.write_predictions(ids, ["f1"], np.array([[1], [1], [1], [1], [0]]),
                            np.array([[0.7 - 1e-15], [0.9], [0.7 + 1e-15], [0.7], [0.95]]), "v1")
    top = store.top_sentences("f1", limit=3)  # 0.9, then the first two of the three at 0.7; the unlabelled 0.95 never
    assert top["sentence_id"].tolist() == [ids[1], ids[0], ids[2]]
    assert np.allclose(top["score"], [0.9, 0.7, 0.7], rtol=0, atol=1e-14)  # the scores as stored
    assert top.columns.tolist()[:3] == ["sentence_id", "article_id", "published"]


def test_unusable_url_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="check --db"):
        Store("nonsense://nowhere")


def test_long_titles_outlets_and_urls_are_stored_whole(store):
    """A 300-character feed title or outlet, or a 5,000-character URL, is data, not a reason to fail."""
    long_url = "https://example.org/world/" + "a" * 5000
    item = NewArticle(content_hash="l" * 64, sentences=["One sentence.", "Two sentences."], source=long_url,
                      title="T" * 300, outlet="O" * 300, url=long_url, canonical_url=long_url)
    added = store.add_articles([item, article("b")], "run-1")
    assert added.refused == [] and len(added.new_article_ids) == 2
    table = store.export_sentences([])
    stored = table[table["source"] == long_url].iloc[0]
    assert (len(stored["title"]), len(stored["outlet"]), len(stored["url"])) == (300, 300, len(long_url))
    assert store.known_urls([long_url]) == {long_url: added.new_article_ids[0]}


def test_a_row_the_database_refuses_is_refused_alone_by_name(store):
    bad = NewArticle(content_hash=None, sentences=["No hash."], source="bad.txt")  # NOT NULL column
    added = store.add_articles([article("a"), bad, article("b", source="b.txt")], "run-1")
    assert [r.source for r in added.refused] == ["bad.txt"]
    assert "content_hash" in added.refused[0].reason and "\n" not in added.refused[0].reason
    assert len(added.new_article_ids) == 2 and added.new_sentences == 6
    assert set(store.export_sentences([])["source"]) == {"a.txt", "b.txt"}


def test_a_nul_byte_is_refused_alone_on_postgresql_and_kept_on_sqlite(store):
    nul = NewArticle(content_hash="n" * 64, sentences=["Before\x00after."], source="nul.txt", title="NUL\x00")
    added = store.add_articles([article("a"), nul], "run-1")
    postgres = store.engine.dialect.name == "postgresql"
    assert [r.source for r in added.refused] == (["nul.txt"] if postgres else [])
    assert store.corpus_summary()["articles"] == (1 if postgres else 2)


def test_an_older_postgresql_store_loses_its_length_limits(store):
    if store.engine.dialect.name != "postgresql":
        pytest.skip("SQLite never enforced string lengths")
    with store.engine.begin() as conn:  # the schema of earlier versions
        conn.execute(sql_text("ALTER TABLE articles ALTER COLUMN outlet TYPE VARCHAR(200)"))
        conn.execute(sql_text("ALTER TABLE article_sources ALTER COLUMN canonical_url TYPE VARCHAR(2000)"))
        conn.execute(sql_text("DROP INDEX ix_article_sources_canonical_url"))
        conn.execute(sql_text("CREATE INDEX ix_article_sources_canonical_url ON article_sources (canonical_url)"))
    Store(store.url).create_schema()
    long_url = "https://example.org/" + "u" * 5000
    item = NewArticle(content_hash="w" * 64, sentences=["One."], source="w.txt", outlet="O" * 300, url=long_url,
                      canonical_url=long_url)
    assert store.add_articles([item], "run-1").refused == []
    assert store.known_urls([long_url]) != {}


def test_inserts_skip_rows_another_writer_stored_meanwhile(store, monkeypatch):
    first = store.add_articles([article("a")], "run-1")
    # the dedupe lookup ran before the other writer committed: it found nothing (lookups after the insert do)
    real_lookup, calls = rhetoric.store.writes.lookup, []
    monkeypatch.setattr("rhetoric.store.writes.lookup", lambda *args: {} if not calls.append(1) and len(calls) == 1
                        else real_lookup(*args))
    again = store.add_articles([article("a", source="wire-copy.txt")], "run-2")
    assert again.refused == [] and again.new_article_ids == [] and again.already_stored == 1
    assert again.duplicate_of == {"wire-copy.txt": first.new_article_ids[0]}
    (ids, _), = list(store.iter_stale("v1", ["f1"]))
    for _ in range(2):  # a retried batch writes nothing twice
        store.write_predictions(ids, ["f1"], np.array([[1]] * 3), np.array([[0.9]] * 3), "v1")
    summary = store.corpus_summary()
    assert (summary["articles"], summary["sentences"]) == (1, 3)
    assert store.export_sentences(["f1"])["f1"].tolist() == [1, 1, 1]


def test_runs_whose_alive_lock_is_free_are_marked_interrupted_and_live_ones_kept(store, tmp_path):
    store.start_run("killed")
    store.start_run("finished")
    store.finish_run("finished", "completed", {})
    store.start_run("current")
    store.start_run("alive-elsewhere")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_ALIVE, store.url, "alive-elsewhere"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert store.mark_interrupted(except_run="current") == 1
        statuses = dict(zip(*store.export_runs()[["run_id", "status"]].T.values))
        assert statuses == {"killed": "interrupted", "finished": "completed", "current": "running",
                            "alive-elsewhere": "running"}
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        if store.engine.dialect.name == "sqlite":  # the same file through a symlinked folder
            (tmp_path / "via").symlink_to(tmp_path, target_is_directory=True)
            other = Store(f"sqlite:///{tmp_path / 'via' / Path(store.engine.url.database).name}")
        else:
            other = Store(store.url)
        assert other.mark_interrupted(except_run="current") == 1
    finally:
        holder.kill()
        holder.wait(timeout=10)


HOLD_ALIVE = """
import sys, time
from rhetoric.store import Store
lock = Store(sys.argv[1]).alive_lock(sys.argv[2])
assert lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


HOLD_LOCK = """
import sys, time
from rhetoric.store import Store
lock = Store(sys.argv[1]).run_lock()
assert lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


def other_spelling(store, tmp_path) -> str:
    """The same store under another address: a symlinked folder and a detour for SQLite."""
    if store.engine.dialect.name != "sqlite":
        return store.url
    (tmp_path / "link").symlink_to(tmp_path, target_is_directory=True)
    return f"sqlite:///{tmp_path / 'link' / '..' / tmp_path.name / 'store.db'}"


def test_the_run_lock_excludes_a_second_holder_until_its_process_is_killed(store, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, store.url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = Store(other_spelling(store, tmp_path)).run_lock()
        assert not lock.acquire(wait=0.5)
        assert lock.is_held_elsewhere()
        if store.engine.dialect.name == "sqlite":
            assert f"pid {holder.pid}" in lock.holder()
        else:
            assert lock.holder().startswith("PostgreSQL session")
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=10)
        assert lock.acquire(wait=10), "the lock outlived its killed holder"
        assert not lock.is_held_elsewhere()
        lock.release()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_nul_bytes_from_a_source_are_dropped_and_the_article_stored(store):
    from rhetoric.ingest import RawArticle
    from rhetoric.prepare import prepare_articles

    raw = RawArticle(source="feed-item", text="Ministers met in Doha on Monday.\x00 They agreed to resume talks.",
                     title="Talks\x00 resume", outlet="Wire\x00")
    prepared, refused = prepare_articles([raw])
    added = store.add_articles(prepared, "run-1")
    assert refused == [] and added.refused == [] and len(added.new_article_ids) == 1
    stored = store.export_sentences([])
    assert (stored["title"][0], stored["outlet"][0]) == ("Talks resume", "Wire")
    assert not any("\x00" in text for text in stored["text"])


CREATE_SCHEMA = """
import sys
from rhetoric.store import Store
Store(sys.argv[1]).create_schema()
"""


def test_two_processes_opening_a_new_store_at_once_both_succeed(store):
    if store.engine.dialect.name == "postgresql":
        store.drop_all()
    else:
        store.close()
        os.remove(store.engine.url.database)
    openers = [subprocess.Popen([sys.executable, "-c", CREATE_SCHEMA, store.url], stderr=subprocess.PIPE, text=True)
               for _ in range(4)]
    errors = [opener.communicate(timeout=120)[1] for opener in openers]
    assert [opener.returncode for opener in openers] == [0] * 4, errors


def test_four_processes_opening_an_old_store_at_once_move_its_predictions_once(store):
    _, old = make_old_store(store)
    openers = [subprocess.Popen([sys.executable, "-c", CREATE_SCHEMA, store.url], stderr=subprocess.PIPE, text=True)
               for _ in range(4)]
    errors = [opener.communicate(timeout=120)[1] for opener in openers]
    assert [opener.returncode for opener in openers] == [0] * 4, errors
    assert shown_predictions(store) == old


def make_old_store(store) -> tuple[list[int], list[tuple]]:
    """Turn the store into one made before the scores table: a predictions table of one row per sentence and
    frame, with the index on model_version earlier versions made. The sentence ids and those rows."""
    store.add_articles([article("a", n=3)], "run-1")
    with store.engine.begin() as conn:
        ids = [i for (i,) in conn.execute(sql_text("SELECT id FROM sentences ORDER BY id"))]
        conn.execute(sql_text("DROP VIEW predictions"))
        conn.execute(sql_text("DELETE FROM migrations WHERE name = 'scores'"))
        conn.execute(sql_text(
            "CREATE TABLE predictions (sentence_id INTEGER NOT NULL REFERENCES sentences (id) ON DELETE CASCADE, "
            "frame VARCHAR(64) NOT NULL, score FLOAT NOT NULL, label SMALLINT NOT NULL, "
            "model_version VARCHAR(64) NOT NULL, PRIMARY KEY (sentence_id, frame))"))
        conn.execute(sql_text("CREATE INDEX ix_predictions_model_version ON predictions (model_version)"))
        old = [(ids[0], "f1", 0.9, 1, "v1"), (ids[0], "f2", 0.25, 0, "v1"),
               (ids[1], "f1", 0.125, 0, "v1"), (ids[1], "f2", 0.75, 1, "v1")]  # ids[2]: never scored
        for row in old:
            conn.execute(sql_text("INSERT INTO predictions VALUES (:i, :f, :s, :l, :v)"),
                         dict(zip("ifslv", row)))
    return ids, old


def shown_predictions(store) -> list[tuple]:
    with store.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(sql_text("SELECT * FROM predictions ORDER BY sentence_id, frame"))]


def test_a_store_of_long_predictions_is_moved_to_one_row_per_sentence_when_opened(store):
    """Stores made before the scores table kept a row per sentence and frame (with an index on model_version);
    opening one moves them into scores, keeps every value, and leaves the same rows in the predictions view."""
    from sqlalchemy import inspect

    ids, old = make_old_store(store)
    again = Store(store.url)
    again.create_schema()
    assert "predictions" in inspect(again.engine).get_view_names()
    assert "predictions" not in inspect(again.engine).get_table_names()
    assert shown_predictions(again) == old
    with again.engine.connect() as conn:
        assert conn.execute(sql_text("SELECT COUNT(*) FROM scores")).scalar_one() == 2
    stale = [i for batch, _ in again.iter_stale("v1", ["f1", "f2"]) for i in batch]
    assert stale == [ids[2]]
    table = again.export_sentences(["f1", "f2"])
    assert table["f1"].tolist()[:2] == [1, 0] and table["score_f2"].tolist()[:2] == [0.25, 0.75]
    again.create_schema()  # opening it once more changes nothing
    assert again.export_sentences(["f1", "f2"]).equals(table)
    again.close()


def test_frames_get_columns_when_first_scored_and_lose_them_when_dropped(store):
    from sqlalchemy import inspect

    store.add_articles([article("a", n=2)], "run-1")
    (ids, _), = list(store.iter_stale("v1", ["f1"]))
    store.write_predictions(ids, ["f1"], np.array([[1], [0]]), np.array([[0.9], [0.2]]), "v1")
    # a new frame: every sentence is stale for the model that has it, until it scored them
    assert [len(batch) for batch, _ in store.iter_stale("v2", ["f1", "f2"])] == [2]
    assert not store.all_scored("v2", ["f1", "f2"], ["en"])
    store.write_predictions(ids, ["f1", "f2"], np.array([[1, 1], [0, 0]]), np.array([[0.9, 0.8], [0.2, 0.1]]), "v2")
    assert store.all_scored("v2", ["f1", "f2"], ["en"]) and list(store.iter_stale("v2", ["f1", "f2"])) == []
    store.drop_other_frames(["f2"])
    columns = {c["name"] for c in inspect(store.engine).get_columns("scores")}
    assert columns == {"sentence_id", "model_version", "score_f2", "label_f2"}
    assert store.article_frame_totals()["frame"].unique().tolist() == ["f2"]
    with store.engine.connect() as conn:
        assert conn.execute(sql_text("SELECT DISTINCT frame FROM predictions")).all() == [("f2",)]
