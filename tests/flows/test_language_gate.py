"""The language gate: articles in languages the champion was not trained on are stored, not classified, and counted."""

import pytest

from rhetoric.store import Store
from tests.project_fixtures import make_project

pytestmark = pytest.mark.slow

RUSSIAN = ("Лавров призвал к мирным переговорам\n"
           "Министр иностранных дел России заявил, что мир становится многополярным. "
           "Он также сказал, что санкции Запада незаконны и контрпродуктивны. "
           "Переговоры должны учитывать интересы всех сторон.\n")
CHINESE = ("王毅会见拉夫罗夫\n"
           "中方支持通过对话谈判政治解决乌克兰危机。世界多极化趋势不可逆转。"
           "双方反对单边制裁和霸权主义。中俄关系坚如磐石。\n")


@pytest.fixture(scope="module")
def gated_run(tmp_path_factory, prefect_harness):
    from flows.pipeline import run_pipeline

    project = make_project(tmp_path_factory.mktemp("languages"))
    (project / "seeds" / "ru_lavrov.txt").write_text(RUSSIAN, encoding="utf-8")
    (project / "seeds" / "zh_wang.txt").write_text(CHINESE, encoding="utf-8")
    db = f"sqlite:///{project / 'store.db'}"
    return project, db, run_pipeline(db=db, root=str(project))


def test_other_languages_are_stored_but_never_scored(gated_run):
    project, db, summary = gated_run
    from rhetoric.labels import load_frames

    frames = [f.name for f in load_frames(project / "labels")]
    table = Store(db).export_sentences(frames)
    assert summary.articles_new == 7
    languages = table.drop_duplicates("source").set_index("source")["language"]
    assert languages[next(s for s in languages.index if s.endswith("ru_lavrov.txt"))] == "ru"
    assert languages[next(s for s in languages.index if s.endswith("zh_wang.txt"))] == "zh"
    foreign = table[table["language"].isin(["ru", "zh"])]
    english = table[table["language"] == "en"]
    assert len(foreign) >= 2 and len(english) > 100
    assert foreign[frames].isna().all().all() and foreign["model_version"].isna().all()
    assert english[frames].notna().all().all()
    assert summary.sentences_scored == len(english)


def test_the_run_summary_counts_what_was_left_out(gated_run):
    _, _, summary = gated_run
    assert summary.unreadable == {"ru": 1, "zh": 1}
    assert "not classified: 2 stored article(s) in ru 1, zh 1: the model reads en only" in summary.render()


def test_the_dashboard_header_says_how_many_articles_were_left_out(gated_run):
    _, _, summary = gated_run
    page = open(summary.chart_path, encoding="utf-8").read()
    assert "2 article(s) in languages the model cannot read left unclassified" in page


def test_the_run_summary_says_where_the_error_rates_come_from(gated_run):
    _, _, summary = gated_run
    assert {e["from"] for e in summary.rates.values()} <= {"audit", "eval", "cv"} and summary.rates
    assert "error rates: multipolarity TPR " in summary.render() and "run `rhetoric label audit`" in summary.render()
