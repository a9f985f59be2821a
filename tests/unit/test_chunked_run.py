"""A run a chunk at a time: folders read, prepared and stored settings.batch_size articles at a time, stale
sentences classified a batch at a time, so a large corpus is never in memory at once."""

from concurrent.futures import Future

import numpy as np
import pytest

from rhetoric.config import Settings, SourceSpec
from rhetoric.ingest import IngestBatch, RawArticle, read_folder, read_folder_in_chunks
from rhetoric.pipeline import classify_chunk, classify_stale, ingest
from rhetoric.prepare import prepare_articles
from rhetoric.summary import RunSummary
from rhetoric.registry import Registry
from rhetoric.store import Store
from rhetoric.store import NewArticle
from tests.conftest import MODELS
from tests.http_fixtures import story


def write_folder(folder, topics: dict[str, str]) -> SourceSpec:
    """Article files named after their keys, each a story on its topic; a manifest row for all but the last."""
    folder.mkdir()
    names = sorted(topics)
    rows = ["file,published,outlet,title,url"] + [f"{n},2024-03-0{i + 1},Outlet {n[0]},,https://news.test/{n}"
                                                  for i, n in enumerate(names[:-1])]
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    for name in names:
        (folder / name).write_text("Headline\n\n" + "\n\n".join(story(topics[name])), encoding="utf-8")
    return SourceSpec(kind="folder", location=str(folder))


def test_a_folder_read_in_chunks_is_the_folder_read_at_once(tmp_path):
    spec = write_folder(tmp_path / "in", {f"{c}.txt": c for c in "abcde"})
    chunks = list(read_folder_in_chunks(spec, 10**6, chunk=2))
    assert [[a.source for a in c.articles] for c in chunks] == [["a.txt", "b.txt"], ["c.txt", "d.txt"], ["e.txt"]]
    assert [len(c.warnings) for c in chunks] == [0, 0, 1]  # e.txt has no manifest row
    whole = read_folder(spec, 10**6)
    assert [a for c in chunks for a in c.articles] == whole.articles and chunks[-1].warnings == whole.warnings
    assert [len(c.articles) for c in read_folder_in_chunks(SourceSpec("folder", str(tmp_path / "none")), 10**6, 2)
            ] == [0]


def done(result) -> Future:
    """A future already holding its result."""
    future = Future()
    future.set_result(result)
    return future


class Lock:
    """A run lock that is free, or always taken by someone else."""

    def __init__(self, free: bool = True):
        self.free, self.acquired, self.released = free, 0, 0

    def acquire(self, wait: float = 0.0) -> bool:
        self.acquired += self.free
        return self.free

    def release(self) -> None:
        self.released += 1


def test_a_run_is_prepared_and_stored_a_chunk_at_a_time_and_finds_repeats_across_chunks(store, tmp_path):
    # f.txt reprints a's story with an edit, two chunks later; the live batch carries b's text again
    spec = write_folder(tmp_path / "in", {"a.txt": "talks", "b.txt": "trade", "c.txt": "summit", "d.txt": "energy",
                                          "e.txt": "visit"})
    edited = story("talks")
    edited[1] = edited[1].replace("The ", "A ", 1)
    (tmp_path / "in" / "f.txt").write_text("Another headline\n\n" + "\n\n".join(edited), encoding="utf-8")
    live = IngestBatch(articles=[RawArticle(source="https://feed.test/b", text=(tmp_path / "in" / "b.txt").read_text(),
                                            url="https://feed.test/b")])
    settings = Settings(sources=(spec,), batch_size=2, lock_wait=0)
    chunks: list[list[str]] = []
    classified: list[tuple[list[int], int]] = []

    def prepare(raw, local):
        chunks.append(([a.source for a in raw], local, len(classified)))
        return done(prepare_articles(raw))

    def classify(prepared, added):
        classified.append((added.new_article_ids, lock.acquired - lock.released))
        return 10 * len(added.new_article_ids)

    summary, lock = RunSummary(run_id="run-1"), Lock()
    assert ingest(store, settings, summary, live, lock, prepare=prepare, classify=classify) is True
    # each chunk is asked for before the one before it is stored and classified; only the first is prepared
    # with this process's help (nothing else to do meanwhile)
    assert chunks == [(["a.txt", "b.txt"], True, 0), (["c.txt", "d.txt"], False, 0), (["e.txt", "f.txt"], False, 1),
                      (["https://feed.test/b"], False, 2)]
    # each chunk's new articles classified once stored, holding the lock; the last chunk brought none
    assert classified == [([1, 2], 1), ([3, 4], 1), ([5], 1)] and summary.sentences_scored == 50
    # taken to store each of the 4 chunks and let go between them (so runs prepare side by side), then held
    # for the caller's classify
    assert (lock.acquired, lock.released) == (5, 4)
    assert (summary.articles_new, summary.articles_already) == (5, 2)
    assert summary.new_by_outlet == {"Outlet a": 1, "Outlet b": 1, "Outlet c": 1, "Outlet d": 1, "unknown": 1}
    assert [n.split(",")[0] for n in summary.repeats] == ["f.txt: near-duplicate of stored article 1"]
    assert summary.sentences_new == store.corpus_summary()["sentences"] and store.corpus_summary()["articles"] == 5

    again = RunSummary(run_id="run-2")
    assert ingest(store, settings, again, IngestBatch(), Lock()) is True
    assert (again.articles_new, again.articles_already) == (0, 6)  # every file unchanged, skipped unread


def test_a_run_that_cannot_take_the_lock_stores_nothing(store, tmp_path):
    spec = write_folder(tmp_path / "in", {"a.txt": "talks", "b.txt": "trade", "c.txt": "summit"})
    summary, lock = RunSummary(run_id="run-1"), Lock(free=False)
    assert ingest(store, Settings(sources=(spec,), batch_size=2, lock_wait=0), summary, IngestBatch(), lock) is False
    assert store.corpus_summary()["articles"] == 0 and summary.articles_new == 0


def test_a_failed_chunk_releases_the_lock(store, tmp_path):
    spec = write_folder(tmp_path / "in", {"a.txt": "talks", "b.txt": "trade", "c.txt": "summit"})
    lock = Lock()

    def write(store, prepared, run_id, duplicate_of):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        ingest(store, Settings(sources=(spec,), batch_size=2, lock_wait=0), RunSummary(run_id="r"), IngestBatch(),
               lock, write=write)
    assert (lock.acquired, lock.released) == (1, 1)


def test_stale_sentences_are_read_a_batch_at_a_time_in_id_order(store):
    store.add_articles([NewArticle(content_hash=c * 64, sentences=[f"{c} {i}." for i in range(3)], source=f"{c}.txt",
                                   language=language) for c, language in (("a", "en"), ("b", "ru"), ("c", None))],
                       "run-1")
    frames = ["f1", "f2"]
    seen: list[list[str]] = []
    assert not store.all_scored("v1", frames, ["en"])
    for ids, texts in store.iter_stale("v1", frames, batch_size=2, languages=["en"]):
        assert not store.all_scored("v1", frames, ["en"])  # while any batch is left
        seen.append(texts)
        # scoring each batch as it is read does not disturb the reading of the next
        store.write_predictions(ids, frames, np.ones((len(ids), 2)), np.ones((len(ids), 2)), "v1", replace=False)
    assert seen == [["a 0.", "a 1."], ["a 2.", "c 0."], ["c 1.", "c 2."]]  # ru unread, c of unknown language read
    assert list(store.iter_stale("v1", frames, batch_size=2, languages=["en"])) == []
    assert store.all_scored("v1", frames, ["en"])  # the counts agree with the lookup
    assert not store.all_scored("v2", frames, ["en"]) and not store.all_scored("v1", ["f1", "f3"], ["en"])
    assert not store.all_scored("v1", frames, ["en", "ru"])  # b's sentences, once readable, are unscored
    (ids, texts), = list(store.iter_stale("v1", ["f1", "f3"], batch_size=10, languages=["en"]))
    assert len(texts) == 6  # a frame the version has not scored makes every sentence stale


def test_a_chunks_sentences_are_found_by_article(store):
    added = store.add_articles([NewArticle(content_hash=c * 64, sentences=[f"{c} {i}." for i in range(n)],
                                           source=f"{c}.txt") for c, n in (("a", 2), ("b", 1), ("c", 3))], "run-1")
    a, b, c = added.new_article_ids
    assert added.new_positions == [0, 1, 2]
    rows = store.sentence_positions([c, a])  # any order in; id order out
    assert [(article, idx) for _, article, idx in rows] == [(a, 0), (a, 1), (c, 0), (c, 1), (c, 2)]
    assert [r[0] for r in rows] == sorted(r[0] for r in rows) and store.sentence_positions([]) == []


RUSSIAN = ("Заголовок\n\nМинистр иностранных дел России провёл переговоры со своим китайским коллегой в Москве. "
           "Стороны обсудили торговлю, энергетику и ситуацию в регионе. Министры договорились продолжить "
           "консультации в следующем месяце.")


def scored_table(store, frames):
    table = store.export_sentences(frames)
    return table[["source", "idx", "text", *frames, *[f"score_{f}" for f in frames], "model_version"]] \
        .sort_values(["source", "idx"]).reset_index(drop=True)


def test_a_chunk_is_classified_as_classify_stale_would_have_classified_it(store, tmp_path):
    model = Registry(MODELS).champion()
    raw = [RawArticle(source=f"{topic}.txt", text="Headline\n\n" + "\n\n".join(story(topic)))
           for topic in ("talks", "trade", "summit")] + [RawArticle(source="ru.txt", text=RUSSIAN)]
    prepared, _ = prepare_articles(raw)
    assert [a.language for a in prepared] == ["en"] * 3 + ["ru"]
    added = store.add_articles(prepared, "run-1")
    english = sum(len(a.sentences) for a in prepared[:3])
    assert classify_chunk(store, model, prepared, added, batch_size=7) == english  # ru: not read
    assert classify_stale(store, model) == 0  # nothing left for the end of the run

    mine = assert_stored_as_classify_stale_would(store, tmp_path, model, prepared, english)
    assert len(mine) == english + len(prepared[3].sentences)
    assert mine[[f"score_{f}" for f in model.frames]].notna().sum().sum() == 4 * english


def assert_stored_as_classify_stale_would(store, tmp_path, model, prepared, scored: int):
    """The store's sentences and scores are those of the same articles stored elsewhere and scored at the end of
    a run (classify_stale, which scores `scored` sentences there); the store's table."""
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    other.create_schema()
    other.add_articles(prepared, "run-1")
    assert classify_stale(other, model) == scored
    frames = list(model.frames)
    scores = [f"score_{f}" for f in frames]
    mine, theirs = scored_table(store, frames), scored_table(other, frames)
    assert mine.drop(columns=scores).equals(theirs.drop(columns=scores))
    # the same to the last bits a batch's alignment in memory moves (about 1e-15)
    assert np.allclose(mine[scores].fillna(-1), theirs[scores].fillna(-1), rtol=0, atol=1e-12)
    return mine


def test_sentences_a_helper_scored_are_stored_as_the_run_would_have_scored_them(store, tmp_path):
    from dataclasses import replace

    from rhetoric.prepare import score_share, score_while_waiting

    model = Registry(MODELS).champion()
    raw = [RawArticle(source=f"{topic}.txt", text="Headline\n\n" + "\n\n".join(story(topic)))
           for topic in ("talks", "trade", "summit", "energy", "visit")] + [RawArticle(source="ru.txt", text=RUSSIAN)]
    result = prepare_articles(raw)
    prepared = result[0]
    steps = score_while_waiting(result, score_share(model))
    next(steps), next(steps, None)  # asked for after its first step: 64 articles, more than these English five
    assert [a.scored is not None for a in prepared] == [True] * 5 + [False]  # ru: the model does not read it
    # scores from another version are not taken, and a helper left one article unscored: the run scores both
    k = len(model.frames)
    n = len(prepared[3].sentences)
    prepared[3] = replace(prepared[3], scored=("2020.01.01-00000000", np.ones((n, k), bool), np.zeros((n, k)), 0, n))
    prepared[1] = replace(prepared[1], scored=None)
    added = store.add_articles(prepared, "run-1")
    english = sum(len(a.sentences) for a in prepared[:5])
    assert classify_chunk(store, model, prepared, added, batch_size=7) == english
    assert_stored_as_classify_stale_would(store, tmp_path, model, prepared, english)


def test_a_scorer_file_that_changed_since_the_run_checked_it_scores_nothing(tmp_path):
    import shutil
    from dataclasses import replace

    from rhetoric.prepare import score_share, score_while_waiting

    model = Registry(MODELS).champion()
    copy = tmp_path / "scorer.npz"
    shutil.copyfile(model.scorer_path, copy)
    with copy.open("ab") as handle:
        handle.write(b"\0")  # no longer the file the run verified
    result = prepare_articles([RawArticle(source="talks.txt", text="Headline\n\n" + "\n\n".join(story("talks")))])
    assert list(score_while_waiting(result, replace(score_share(model), path=str(copy)))) == []
    assert result[0][0].scored is None  # the run scores it itself
