"""The rhetoric-train flow run by Prefect: first promotion, the gate against a shuffled-label challenger, --force."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from model_fixtures import corpus, make_labels_dir, write_csv  # noqa: E402

from rhetoric.errors import LabelError, ModelError  # noqa: E402
from rhetoric.registry import Registry  # noqa: E402

pytestmark = pytest.mark.slow
FAST = ["svm-word-char", "logreg-word-kw"]


@pytest.fixture
def train_flow(prefect_harness):
    from flows.train import train_flow

    return train_flow


def test_first_run_promotes_then_shuffled_labels_are_not_promoted(tmp_path, train_flow):
    labels = make_labels_dir(tmp_path / "good")
    models = tmp_path / "models"
    first = train_flow(str(labels), str(models), candidates=FAST)
    assert first.promoted and first.champion_version == first.challenger_version
    assert "there is no champion yet" in first.report()
    assert "model selection, by grouped cross-validation" in first.report()
    registry = Registry(models)
    assert registry.champion_version() == first.challenger_version
    assert {s["candidate"] for s in registry.metadata(first.challenger_version)["selection"]} == set(FAST)

    shuffled = make_labels_dir(tmp_path / "shuffled", shuffle=True)
    second = train_flow(str(shuffled), str(models), candidates=FAST[:1])
    assert not second.promoted
    assert second.champion_version == first.challenger_version
    assert registry.champion_version() == first.challenger_version
    assert second.challenger_version in registry.versions()
    assert "not promoted" in second.report() and "macro-F1" in second.report()

    forced = train_flow(str(shuffled), str(models), force=True, candidates=FAST[:1])
    assert forced.promoted and registry.champion_version() == forced.challenger_version
    assert [h["version"] for h in registry.history()] == [first.challenger_version, forced.challenger_version]


def test_bad_labels_stop_the_flow_with_every_problem(tmp_path, train_flow):
    labels = make_labels_dir(tmp_path)
    write_csv(labels / "extra.csv", [{"text": "Talks now.", "frames": "blame", "origin": "written", "batch": "x"},
                                     {"text": "", "frames": "", "origin": "written", "batch": "x"}])
    with pytest.raises(LabelError) as info:
        train_flow(str(labels), str(tmp_path / "models"), candidates=FAST[:1])
    assert [p.split(": ")[0] for p in info.value.problems] == ["labels/extra.csv:2", "labels/extra.csv:3"]
    assert not (tmp_path / "models").exists()


def test_labels_too_thin_to_train_stop_with_a_model_error(tmp_path, train_flow):
    labels = make_labels_dir(tmp_path)
    rows = [r for r in corpus(0) if r["frames"] != "peace_talks"]
    write_csv(labels / "train.csv", rows)
    with pytest.raises(ModelError, match="frame 'peace_talks' has 0 labelled sentence"):
        train_flow(str(labels), str(tmp_path / "models"), candidates=FAST[:1])
    assert not (tmp_path / "models").exists()


def test_unchanged_labels_and_code_make_no_new_version(tmp_path, train_flow):
    labels = make_labels_dir(tmp_path)
    models = tmp_path / "models"
    first = train_flow(str(labels), str(models), candidates=FAST[:1])
    again = train_flow(str(labels), str(models), candidates=FAST[:1])
    assert again.unchanged and not again.promoted
    assert again.report().startswith("nothing changed")
    assert Registry(models).versions() == [first.challenger_version]
    # one changed label is a change
    rows = corpus(0)
    rows[0] = {**rows[0], "frames": ""}
    write_csv(labels / "train.csv", rows)
    changed = train_flow(str(labels), str(models), candidates=FAST[:1])
    assert not changed.unchanged and len(Registry(models).versions()) == 2


def test_a_real_text_split_is_judged_first_and_reported_before_the_written_one(tmp_path, train_flow):
    labels = make_labels_dir(tmp_path)
    train_texts = {r["text"] for r in corpus(0)}
    real = [{**r, "origin": "corpus", "weight": "3.5" if r["frames"] else "40", "source": "ungdc",
             "url": f"ungdc:XXX:{2014 + i % 5}", "licence": "CC0 1.0"}
            for i, r in enumerate(corpus(5)) if r["text"] not in train_texts]
    write_csv(labels / "eval" / "real.csv", real,
              columns=("text", "frames", "origin", "batch", "weight", "source", "url", "licence"))
    outcome = train_flow(str(labels), str(tmp_path / "models"), candidates=FAST)
    report = outcome.report()
    assert "by macro-F1 on the real-text split" in report
    assert report.index("real-text split:") < report.index("written split (guard)")
    assert "judged on the real split" in report
    meta = Registry(tmp_path / "models").metadata(outcome.challenger_version)
    assert meta["metrics"]["real"]["weighted"] and "ci" in meta["metrics"]["real"]
    assert meta["metrics"]["eval"] == meta["metrics"]["real"]
    card = (tmp_path / "models" / outcome.challenger_version / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "## Metrics on real text" in card and "| ungdc |" not in card  # no real training text here
