"""A real Prefect run of the pipeline flow over the seed corpus in a temporary project."""

import pytest

from rhetoric.store import Store
from tests.project_fixtures import make_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("flow"))


@pytest.fixture(scope="module")
def first_run(project, prefect_harness):
    from flows.pipeline import run_pipeline

    db = f"sqlite:///{project / 'store.db'}"
    summary = run_pipeline(db=db, root=str(project))
    return db, summary


def test_first_run_stores_every_seed_sentence_with_its_frames(project, first_run):
    from rhetoric.labels import load_frames
    from rhetoric.text import article_sentences

    db, summary = first_run
    assert summary.articles_new == 5 and summary.articles_already == 0
    assert summary.refusals == []
    frames = [f.name for f in load_frames(project / "labels")]
    table = Store(db).export_sentences(frames)
    expected = sum(len(article_sentences((project / "seeds" / name).read_text(encoding="utf-8")))
                   for name in sorted(p.name for p in (project / "seeds").glob("0*.txt")))
    assert summary.sentences_new == len(table) > 100
    assert abs(len(table) - expected) <= 5  # titles from the manifest may drop leading captions
    assert set(table["model_version"]) == {summary.model_version}
    assert table[[f"score_{f}" for f in frames]].notna().all().all()
    assert table[frames].sum().sum() > 0, "the champion found no frame in the seeds"


def test_first_run_writes_an_offline_dashboard(first_run):
    _, summary = first_run
    html = open(summary.chart_path, encoding="utf-8").read()
    # plotly.js is inline; its source mentions cdn.plot.ly as a config default, so check the tags
    assert "<script src=\"http" not in html and "<script src='http" not in html
    assert "Plotly.newPlot" in html


def test_second_run_ingests_nothing_twice(project, first_run):
    from flows.pipeline import run_pipeline

    db, first = first_run
    again = run_pipeline(db=db, root=str(project))
    assert (again.articles_new, again.articles_already, again.sentences_new, again.sentences_scored) == (
        0, 5, 0, 0)
    runs = Store(db).export_runs()
    assert runs["status"].tolist()[-2:] == ["completed", "completed"]
    assert runs["articles_new"].tolist()[-2:] == [5, 0]


def test_bad_inputs_are_refused_by_name_and_the_rest_is_kept(project, first_run):
    from flows.pipeline import run_pipeline

    db, _ = first_run
    inbox = project / "inbox"
    inbox.mkdir()
    (inbox / "latin1.txt").write_bytes(
        "Sanctions condemned in Zürich\n\nThe ministers called the sanctions illegal. "
        "Café owners said trade had slowed.\n".encode("latin-1"))
    (inbox / "empty.txt").write_bytes(b"")
    (inbox / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (inbox / "manifest.csv").write_text("file,published,outlet,title,url\n"
                                        "latin1.txt,2024-05-01,Wire,,\nmissing.txt,2024-05-02,Wire,,\n")
    summary = run_pipeline(sources=[str(inbox)], db=db, root=str(project))
    # --source replaces the default seeds/ (it adds to rhetoric.toml's sources, and there are none)
    assert summary.articles_new == 1 and summary.articles_already == 0
    assert {r.source for r in summary.refusals} == {"empty.txt", "photo.txt"}
    assert any("missing.txt" in w for w in summary.warnings)
    store = Store(db)
    texts = store.sentence_texts()
    assert "Café owners said trade had slowed." in set(texts["text"])
    assert store.corpus_summary()["articles"] == 6


def test_a_new_champion_rescores_every_stored_sentence(project, first_run, tmp_path):
    """Trends never mix model versions: after the champion changes, the next run rescores everything."""
    from flows.pipeline import run_pipeline
    from rhetoric.labels import load_frames

    db, first = first_run
    extra = project / "labels" / "extra.csv"
    extra.write_text("text,frames,origin,batch\n"
                     "The sanctions are an illegal act of economic warfare.,anti_sanctions,written,extra-1\n")
    try:
        # an empty registry trains a champion on first use; the changed labels give it a new version
        summary = run_pipeline(db=db, root=str(project), models=str(tmp_path / "models-new"))
    finally:
        extra.unlink()
    store = Store(db)
    assert summary.model_version != first.model_version
    assert summary.articles_new == 0
    assert summary.sentences_scored == store.corpus_summary()["sentences"]
    frames = [f.name for f in load_frames(project / "labels")]
    assert set(store.export_sentences(frames)["model_version"]) == {summary.model_version}
    assert store.corpus_summary()["model_versions"] == [summary.model_version]
