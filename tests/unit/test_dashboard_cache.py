"""A run that changed nothing refills the kept page instead of drawing it again; any change draws it again."""

import re
from datetime import date

import numpy as np
import pytest

import rhetoric.trends
from rhetoric.config import Settings
from rhetoric.dashboard import TEMPLATE_FILE, write_dashboard
from rhetoric.store import NewArticle, Store

FRAMES = ["multipolarity", "peace_talks"]
META = {"version": "v1", "frames": FRAMES}


def article(key: str) -> NewArticle:
    return NewArticle(content_hash=key * 8, sentences=[f"{key} sentence {i} on talks." for i in range(4)],
                      source=f"{key}.txt", outlet="Outlet", title=f"Title {key}", published=date(2024, 3, 1))


def classify(store: Store, version: str = "v1") -> None:
    for ids, _ in store.iter_stale(version, FRAMES):
        labels = np.array([[i % 2, 0] for i in ids])
        store.write_predictions(ids, FRAMES, labels, labels * 0.8 + 0.1, version)


@pytest.fixture
def project(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_schema()
    store.add_articles([article("a"), article("b")], "run-1")
    classify(store)
    store.start_run("run-1")
    store.finish_run("run-1", "completed", {})
    return store, Settings(root=tmp_path, out_dir=tmp_path / "out", labels_dir=tmp_path / "labels")


def without_last_run(page: str) -> str:
    return re.sub(r"<dt>Last run</dt><dd>[^<]*</dd>", "", page)


def no_drawing(*args, **kwargs):
    raise AssertionError("the store was queried and the charts drawn again")


def test_a_run_that_changed_nothing_refills_the_kept_page(project, monkeypatch):
    store, settings = project
    first = write_dashboard(store, settings, META, [], None, run_id="run-1").read_text(encoding="utf-8")
    assert (settings.state_dir / TEMPLATE_FILE).is_file()
    store.start_run("run-2")
    with monkeypatch.context() as m:
        m.setattr(rhetoric.trends, "dashboard_data", no_drawing)
        refilled = write_dashboard(store, settings, META, [], None, run_id="run-2").read_text(encoding="utf-8")
    assert "<dt>Last run</dt><dd>" in refilled and "(this page&#x27;s run)</dd>" in refilled
    assert without_last_run(refilled) == without_last_run(first) and refilled != first
    # the refilled page is the page drawn from scratch
    (settings.state_dir / TEMPLATE_FILE).unlink()
    assert write_dashboard(store, settings, META, [], None, run_id="run-2").read_text(encoding="utf-8") == refilled


@pytest.mark.parametrize("change", ["new article", "new source of a stored story", "rescored", "model",
                                    "rates", "outlet groups", "kept file damaged", "store started again"])
def test_any_change_draws_the_page_again(project, monkeypatch, change):
    store, settings = project
    write_dashboard(store, settings, META, [], None)
    meta, evidence = META, None
    if change == "new article":
        store.add_articles([article("c")], "run-2")
        classify(store)
    elif change == "new source of a stored story":
        store.add_articles([NewArticle(**{**vars(article("a")), "source": "copy.txt", "outlet": "Other"})], "run-2")
    elif change == "rescored":  # an interrupted classify finished by a later run: same sentences, more predictions
        store.write_predictions([1], FRAMES, np.array([[1, 1]]), np.array([[0.9, 0.9]]), "v1")
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM scores WHERE sentence_id = 8")
    elif change == "model":
        meta = {**META, "version": "v2"}
    elif change == "rates":
        evidence = {f: {"tpr": 0.5, "fpr": 0.01, "positives": 10, "negatives": 90, "from": "audit", "reviewed": 100}
                    for f in FRAMES}
    elif change == "outlet groups":
        settings = Settings(root=settings.root, out_dir=settings.out_dir, labels_dir=settings.labels_dir,
                            outlet_groups=(("Wire", ("Outlet",)),))
    elif change == "store started again":  # emptied, then other stories with the same counts and ids
        store.drop_all()
        store.create_schema()
        store.add_articles([article("x"), article("y")], "run-2")
        classify(store)
    else:
        (settings.state_dir / TEMPLATE_FILE).write_bytes(b"\xff\xfe not a template")
    drawn = []
    real = rhetoric.trends.dashboard_data
    monkeypatch.setattr(rhetoric.trends, "dashboard_data", lambda *a, **k: drawn.append(1) or real(*a, **k))
    page = write_dashboard(store, settings, meta, [], evidence).read_text(encoding="utf-8")
    assert drawn == [1]
    if change == "new article":
        assert "3 articles, 12 sentences" in page
