"""Model training pieces, the registry (round trip, tamper refusal), the promotion gate, first-use training."""

import hashlib
import json
import re
import shutil
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from rhetoric.errors import ModelError
from rhetoric.labels import label_matrix
from rhetoric.features import NewsFeatures, normalise_text
from rhetoric.model import (CANDIDATES, DEFAULT_CANDIDATE, NBLogisticRegression,
                            build_pipeline, check_trainable, choose_thresholds, decision_scores, keyword_baseline)
from rhetoric.registry import Registry, describe, ensure_champion
from rhetoric.training import TrainOutcome, promotion_decision
from tests.model_fixtures import without_scorer


def test_trained_model_predicts_frames_with_calibrated_scores(labelled, trained):
    _, frames, _, held = labelled
    labels, scores = trained.model.predict(list(held["text"]))
    assert labels.shape == scores.shape == (len(held), len(frames))
    assert ((scores >= 0) & (scores <= 1)).all()
    truth = np.array([[f.name in row for f in frames] for row in held["frames"]])
    assert (labels == truth).mean() > 0.9
    assert set(trained.rates) == {f.name for f in frames}
    assert all(0 <= r["tpr"] <= 1 and 0 <= r["fpr"] <= 1 for r in trained.rates.values())


def test_thresholds_are_chosen_from_scores_not_fixed():
    y = np.array([[1], [1], [0], [0], [0]])
    scores = np.array([[0.3], [0.25], [0.2], [0.1], [0.05]])
    # 0.21 to 0.25 all separate the classes; the tie goes to the one nearest 0.5
    assert choose_thresholds(scores, y)[0] == pytest.approx(0.25)


def test_keyword_features_and_baseline_use_the_frames_file(labelled):
    _, frames, _, _ = labelled
    texts = ["The illegal sanctions must go.", "Peace talks resumed.", "Nothing at all."]
    assert keyword_baseline(texts, frames).tolist() == [[False, True, False, False], [False, False, True, False],
                                                        [False, False, False, False]]
    features = NewsFeatures(keywords=tuple(f.keywords for f in frames), keyword_weight=2.0).fit(texts).transform(texts)
    assert features.toarray()[:, -4:].tolist() == [[0, 2, 0, 0], [0, 0, 2, 0], [0, 0, 0, 0]]


def test_news_features_match_scikit_learn_vectorizers(labelled):
    texts = list(labelled[2]["text"])
    ours = NewsFeatures(char_ngrams=(2, 4)).fit(texts)

    def words_only(text):
        return " ".join(re.findall(r"\w+", normalise_text(text)))

    common = dict(preprocessor=words_only, min_df=2, sublinear_tf=True)
    words = TfidfVectorizer(token_pattern=r"\w+", ngram_range=(1, 2), **common).fit(texts)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), **common).fit(texts)
    new = ["Lavrov said on 3 May that the sanctions are illegal.", "Wang: peace talks, now!"]

    def in_our_order(vectorizer, vocabulary):
        columns = [vectorizer.vocabulary_[name] for name in sorted(vocabulary, key=vocabulary.get)]
        return vectorizer.transform(new).toarray()[:, columns]

    expected = np.hstack([in_our_order(words, ours.words_), in_our_order(chars, ours.chars_)])
    assert np.allclose(ours.transform(new).toarray(), expected)
    assert np.allclose(ours.transform(new).toarray(), expected)  # again, now from the word cache


@pytest.mark.parametrize("name", ["logreg-word-kw", "svm-word-char-kw", "nbsvm-word-char-kw"])
def test_one_product_decision_equals_scikit_learn(labelled, name):
    _, frames, table, held = labelled
    pipeline = build_pipeline(CANDIDATES[name], frames).fit(list(table["text"]), label_matrix(table, frames))
    texts = list(held["text"])
    assert np.allclose(decision_scores(pipeline, texts), pipeline.decision_function(texts))


def test_keywords_match_whole_token_sequences(labelled):
    frames = labelled[1]
    texts = ["A multipolar, NEW  world-order.", "The multipolarity debate.", "Newworld order", "world order new"]
    assert keyword_baseline(texts, frames)[:, 0].tolist() == [True, True, False, False]


def test_nb_logistic_regression_separates_a_toy_problem():
    X = np.array([[1, 0], [2, 0], [0, 1], [0, 3]])
    model = NBLogisticRegression(C=10).fit(X, np.array([1, 1, 0, 0]))
    assert model.predict(X).tolist() == [1, 1, 0, 0]


def test_too_few_examples_of_a_frame_is_refused(labelled):
    _, frames, table, _ = labelled
    thin = table[[("peace_talks" not in f) for f in table["frames"]]]
    with pytest.raises(ModelError, match="frame 'peace_talks' has 0 labelled sentence"):
        check_trainable(thin, frames)


def test_registry_round_trip_and_history(tmp_path, labelled, trained):
    _, frames, table, held = labelled
    registry = Registry(tmp_path / "models")
    assert registry.champion() is None and registry.history() == []
    version = registry.save(trained, describe(trained, frames, table, held))
    registry.promote(version, 0.9)
    champion = registry.champion()
    assert champion.version == version and champion.frames == tuple(f.name for f in frames)
    texts = list(held["text"])
    assert np.array_equal(champion.predict(texts)[1], trained.model.predict(texts)[1])
    meta = champion.metadata
    assert meta["version"] == version and len(meta["sha256"]) == 64
    assert set(meta["thresholds"]) == set(meta["rates"]) == set(champion.frames)
    assert meta["metrics"]["eval"]["macro_f1"] > 0.9
    assert meta["metrics"]["baseline_eval"]["macro_f1"] < 1.0
    assert meta["languages"] == ["en"]
    assert [h["version"] for h in registry.history()] == [version]
    card = (tmp_path / "models" / version / "MODEL_CARD.md").read_text()
    assert "## Known limits" in card and "| peace_talks |" in card
    second = registry.save(trained, describe(trained, frames, table, held))
    assert second == f"{version}-2" and registry.versions() == [version, second]


def test_tampered_artifact_is_refused(tmp_path, labelled, trained):
    _, frames, table, held = labelled
    registry = Registry(tmp_path / "models")
    version = registry.save(trained, describe(trained, frames, table, held))
    registry.promote(version, 0.9)
    with (tmp_path / "models" / version / "model.joblib").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match=r"model\.joblib: SHA-256 is .* the file changed after it was saved"):
        registry.champion()


def test_other_scikit_learn_version_is_refused_where_the_model_is_unpickled(tmp_path, labelled, trained):
    _, frames, table, held = labelled
    registry = Registry(tmp_path / "models")
    version = registry.save(trained, describe(trained, frames, table, held))
    without_scorer(tmp_path / "models", version)  # scored from model.joblib (test_scorer: from scorer.npz)
    path = tmp_path / "models" / version / "metadata.json"
    meta = json.loads(path.read_text())
    meta["libraries"]["scikit-learn"] = "1.2.0"
    path.write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="saved with scikit-learn 1.2.0"):
        registry.load(version)


def test_ensure_champion_trains_on_first_use_then_reuses(tmp_path, labelled):
    folder = labelled[0]
    first = ensure_champion(tmp_path / "models", folder)
    again = ensure_champion(tmp_path / "models", folder)
    assert first.version == again.version
    assert first.metadata["candidate"] == DEFAULT_CANDIDATE
    assert len(Registry(tmp_path / "models").history()) == 1


def _metrics(macro, **per_frame):
    return {"macro_f1": macro, "micro_f1": macro, "n": 10,
            "per_frame": {k: {"precision": v, "recall": v, "f1": v} for k, v in per_frame.items()}}


@pytest.mark.parametrize("challenger, champion, promoted", [
    (_metrics(0.80, a=0.8, b=0.8), None, True),
    (_metrics(0.80, a=0.8, b=0.8), _metrics(0.80, a=0.8, b=0.8), True),
    (_metrics(0.796, a=0.79, b=0.802), _metrics(0.80, a=0.8, b=0.8), True),
    (_metrics(0.794, a=0.794, b=0.794), _metrics(0.80, a=0.8, b=0.8), False),
    (_metrics(0.85, a=0.74, b=0.96), _metrics(0.80, a=0.8, b=0.8), False),
    (_metrics(0.85, a=0.76, b=0.94), _metrics(0.80, a=0.8, b=0.8), True),
])
def test_promotion_gate(challenger, champion, promoted):
    assert promotion_decision(challenger, champion)[0] is promoted


def test_outcome_report_shows_real_split_first_then_written_and_decision():
    real = {**_metrics(0.6, a=0.6), "n": 2000,
            "ci": {"a": {"precision": [0.5, 0.7], "recall": [0.5, 0.7], "f1": [0.45, 0.72]}, "macro_f1": [0.45, 0.72]}}
    outcome = TrainOutcome(False, "v1", "v2", "v1",
                           challenger={"real": real, "written": _metrics(0.7, a=0.7), "cv": _metrics(0.7, a=0.7)},
                           champion={"real": _metrics(0.65, a=0.65), "written": _metrics(0.8, a=0.8)},
                           baseline={"real": _metrics(0.2, a=0.2), "written": _metrics(0.5, a=0.5)},
                           reasons=["macro-F1 0.600 < champion 0.650 - 0.005"],
                           origins={"reviewed": 6000, "written": 3000})
    report = outcome.report()
    assert report.index("real-text split") < report.index("written split")
    assert "reviewed 6000, written 3000" in report
    assert "[0.45, 0.72]" in report and "-0.050" in report
    assert "0.800       0.700   -0.100     0.500" in report
    assert "challenger v2: not promoted (judged on the real split); champion is v1" in report


def test_outcome_report_says_nothing_changed():
    outcome = TrainOutcome(False, "v1", "v1", "v1", unchanged=True)
    assert outcome.report().startswith("nothing changed")


def test_thresholds_come_from_the_random_sample_when_it_holds_enough_positives():
    from rhetoric.model import assess

    rng = np.random.default_rng(0)
    # teaching labels: half positive, scores well separated; random sample: 2% positive, with many
    # negatives scoring like weak positives, so the F1-best threshold there is higher
    taught_y = np.r_[np.ones(400), np.zeros(400)].astype(int)
    taught = np.r_[rng.normal(1.0, 1.0, 400), rng.normal(-1.5, 1.0, 400)]
    sample_y = np.r_[np.ones(40), np.zeros(1960)].astype(int)
    sample = np.r_[rng.normal(2.0, 0.7, 40), rng.normal(-2.0, 1.2, 1960)]
    decision = np.r_[taught, sample][:, None]
    y = np.r_[taught_y, sample_y][:, None]
    representative = np.r_[np.zeros(800, bool), np.ones(2000, bool)]
    _, everywhere, _, _, _ = assess(decision, y, ["a"])
    _, on_sample, _, rates, sources = assess(decision, y, ["a"], representative)
    assert on_sample[0] > everywhere[0]
    assert sources["a"] == {"rows": "random sample", "sentences": 2000, "positives": 40}
    assert rates["a"]["positives"] == 40
    # too few positives in the sample: every row decides
    _, few, _, _, sources = assess(decision, y, ["a"], np.r_[np.zeros(2790, bool), np.ones(10, bool)])
    assert few[0] == everywhere[0] and sources["a"]["rows"] == "all labels"


def _point_champion_at(models: Path, name: str) -> None:
    pointer = json.loads((models / "champion.json").read_text())
    (models / "champion.json").write_text(json.dumps({**pointer, "champion": name}))


@pytest.mark.parametrize("name", ["../outside/{version}", "{outside}/{version}", "latest"])
def test_champion_named_outside_the_registry_is_refused(saved, tmp_path, name):
    registry, version, models = saved
    outside = tmp_path / "outside"
    shutil.copytree(models / version, outside / version)  # a verifiable model, but not one the registry holds
    _point_champion_at(models, name.format(version=version, outside=outside))
    with pytest.raises(ModelError, match=r"champion\.json: '.*' is not a model version; expected a folder name"):
        registry.champion()


def test_version_folder_linked_out_of_the_registry_is_refused(saved, tmp_path):
    registry, version, models = saved
    shutil.move(models / version, tmp_path / "elsewhere")
    (models / version).symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ModelError, match=rf"{version}: resolves to .*elsewhere, outside the registry"):
        registry.champion()
    with pytest.raises(ModelError, match="outside the registry"):
        registry.versions()


def test_artifact_linked_out_of_the_registry_is_refused(saved, tmp_path):
    registry, version, models = saved
    shutil.move(models / version / "model.joblib", tmp_path / "model.joblib")
    (models / version / "model.joblib").symlink_to(tmp_path / "model.joblib")
    with pytest.raises(ModelError, match=r"model\.joblib: resolves to .*, outside the registry"):
        registry.load(version)


def test_history_naming_a_path_is_refused(saved):
    registry, version, models = saved
    pointer = json.loads((models / "champion.json").read_text())
    pointer["history"].append({"version": "../../etc", "promoted_at": "", "macro_f1": 0.5})
    (models / "champion.json").write_text(json.dumps(pointer))
    with pytest.raises(ModelError, match=r"champion\.json: '\.\./\.\./etc' is not a model version"):
        registry.history()


def test_a_folder_not_named_like_a_version_is_not_listed(saved):
    registry, version, models = saved
    shutil.copytree(models / version, models / "backup")
    assert registry.versions() == [version]


def _replace_artifact(models: Path, version: str, write) -> None:
    """Put other content in model.joblib and record its hash, as someone with write access could.

    The version loses its scorer.npz, so that loading it unpickles model.joblib (test_scorer covers the arrays).
    """
    without_scorer(models, version)
    path = models / version / "model.joblib"
    write(path)
    meta = json.loads((models / version / "metadata.json").read_text())
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    (models / version / "metadata.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("write, words", [
    (lambda p: joblib.dump({"model": "no"}, p), r"holds a builtins\.dict, expected a rhetoric\.model\.FrameModel"),
    (lambda p: joblib.dump([1, 2, 3], p), r"holds a builtins\.list, expected a rhetoric\.model\.FrameModel"),
    (lambda p: p.write_text("this is not a pickle\n"), r"not a loadable joblib model file \("),
    (lambda p: p.write_bytes(b""), r"not a loadable joblib model file \("),
], ids=["dict", "list", "text", "empty"])
def test_an_artifact_of_the_wrong_kind_is_refused_in_one_line(saved, write, words):
    registry, version, models = saved
    _replace_artifact(models, version, write)
    with pytest.raises(ModelError, match=words) as refused:
        registry.champion()
    message = str(refused.value)
    assert "\n" not in message and "model.joblib" in message and "rhetoric train --force" in message


def test_a_model_whose_frames_differ_from_its_metadata_is_refused(saved):
    registry, version, models = saved
    path = models / version / "metadata.json"
    meta = json.loads(path.read_text())
    path.write_text(json.dumps({**meta, "frames": meta["frames"][::-1]}))
    with pytest.raises(ModelError, match=r"scorer\.npz: the scorer's frames .* differ from metadata\.json's"):
        registry.load(version)
    without_scorer(models, version)
    with pytest.raises(ModelError, match=r"model\.joblib: the model's frames .* differ from metadata\.json's"):
        registry.load(version)


def test_verify_refuses_any_version_folder_linked_out_not_only_the_champion(saved, tmp_path):
    registry, version, models = saved
    other = "2026.01.01-0123abcd"
    shutil.copytree(models / version, tmp_path / "foreign")
    (models / other).symlink_to(tmp_path / "foreign", target_is_directory=True)
    assert registry.champion().version == version  # the champion itself is fine
    with pytest.raises(ModelError, match=rf"models/{other}: resolves to .*foreign, outside the registry"):
        registry.verify()
