"""The store: idempotent ingestion, atomic batches, predictions stamped with their model version."""

import os

import numpy as np
import pytest

from rhetoric.errors import StoreError
from rhetoric.store import NewArticle, Store, metadata


POSTGRES_URL = os.environ.get("RHETORIC_TEST_POSTGRES_URL")  # e.g. postgresql+psycopg://user:pw@127.0.0.1/db


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """The same tests on SQLite and, when RHETORIC_TEST_POSTGRES_URL names a scratch database, PostgreSQL."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    elif POSTGRES_URL:
        s = Store(POSTGRES_URL)
        metadata.drop_all(s.engine)
    else:
        pytest.skip("set RHETORIC_TEST_POSTGRES_URL to a scratch PostgreSQL database to run the store tests there")
    s.create_schema()
    yield s
    s.close()


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
    original = store._insert_article
    calls = []

    def fail_on_second(conn, item, run_id, now):
        calls.append(item.source)
        if len(calls) == 2:
            raise __import__("sqlalchemy").exc.OperationalError("insert", {}, Exception("disk full"))
        return original(conn, item, run_id, now)

    monkeypatch.setattr(store, "_insert_article", fail_on_second)
    with pytest.raises(StoreError, match="nothing of it was kept"):
        store.add_articles([article("b"), article("c")], "run-2")
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


def test_unusable_url_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="check --db"):
        Store("nonsense://nowhere")
