"""Scoring from plain arrays (rhetoric.scorer): the same scores as the pickled model, and refusals in one line."""

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from rhetoric.errors import ModelError
from rhetoric.labels import label_matrix
from rhetoric.model import CANDIDATES, FrameModel, build_pipeline
from rhetoric.registry import RESTORE, SCORER, Registry, describe
from rhetoric.scorer import LinearScorer
from tests.model_fixtures import without_scorer

ROOT = Path(__file__).resolve().parents[2]


def _fitted(name, labelled) -> FrameModel:
    _, frames, table, _ = labelled
    pipeline = build_pipeline(CANDIDATES[name], frames).fit(list(table["text"]), label_matrix(table, frames))
    k = len(frames)
    return FrameModel(pipeline, [f.name for f in frames], np.c_[np.linspace(0.5, 2, k), np.linspace(-1, 1, k)],
                      np.linspace(0.3, 0.6, k))


@pytest.mark.parametrize("name", ["logreg-word-kw", "svm-word-char", "nbsvm-word-char-kw", "svm-word-char-kw-topics"])
def test_the_arrays_score_exactly_as_the_pickled_model(tmp_path, labelled, name):
    model = _fitted(name, labelled)
    LinearScorer.from_model(model).save(tmp_path / SCORER)
    scorer = LinearScorer.load(tmp_path / SCORER, model.frames, RESTORE)
    texts = [*labelled[3]["text"], "", "Ünïcode wörds, 2026 figures and a new   multipolar world order!"] * 3
    expected_labels, expected = model.predict(texts)
    labels, scores = scorer.predict(texts)
    assert np.array_equal(scores, expected) and np.array_equal(labels, expected_labels)
    assert scorer.predict([])[1].shape == (0, len(model.frames))
    LinearScorer.from_model(model).save(tmp_path / "again.npz")
    assert (tmp_path / "again.npz").read_bytes() == (tmp_path / SCORER).read_bytes()  # no time stamp inside


def test_the_shipped_champion_scores_real_sentences_the_same_from_its_arrays():
    champion = Registry(ROOT / "models").champion()
    assert isinstance(champion.scorer, LinearScorer)
    texts = pd.read_csv(ROOT / "labels" / "real_reviewed.csv")["text"].astype(str).tolist()
    labels, scores = champion.predict(texts)
    expected_labels, expected = champion.model.predict(texts)
    assert len(texts) > 500 and labels.any()
    assert np.array_equal(scores, expected) and np.array_equal(labels, expected_labels)


def test_a_model_without_a_feature_space_is_saved_without_arrays_and_scores_from_its_pickle(tmp_path, labelled,
                                                                                           trained):
    _, frames, table, held = labelled
    pipeline = Pipeline([("features", TfidfVectorizer()), ("classifier", OneVsRestClassifier(LinearSVC()))])
    pipeline.fit(list(table["text"]), label_matrix(table, frames))
    k = len(frames)
    model = FrameModel(pipeline, [f.name for f in frames], np.tile([1.0, 0.0], (k, 1)), np.full(k, 0.5))
    assert LinearScorer.from_model(model) is None
    plain = dataclasses.replace(trained, model=model)
    registry = Registry(tmp_path / "models")
    version = registry.save(plain, describe(plain, frames, table, held))
    assert not (tmp_path / "models" / version / SCORER).exists()
    assert "scorer_sha256" not in registry.metadata(version)
    loaded = registry.load(version)
    assert loaded.scorer is loaded.model
    assert np.array_equal(loaded.predict(list(held["text"]))[1], model.predict(list(held["text"]))[1])


def test_an_older_version_gets_its_arrays_and_then_scores_the_same(saved, labelled):
    registry, version, models = saved
    texts = list(labelled[3]["text"])
    without_scorer(models, version)
    before = registry.load(version).predict(texts)[1]
    assert registry.add_scorer(version) is True
    assert registry.add_scorer(version) is False
    loaded = registry.load(version)
    assert isinstance(loaded.scorer, LinearScorer) and np.array_equal(loaded.predict(texts)[1], before)


def test_a_scorer_keeps_scoring_after_a_scikit_learn_upgrade_but_its_pickle_is_refused(saved, labelled, trained):
    registry, version, models = saved
    path = models / version / "metadata.json"
    meta = json.loads(path.read_text())
    meta["libraries"]["scikit-learn"] = "1.2.0"
    path.write_text(json.dumps(meta))
    texts = list(labelled[3]["text"])
    loaded = registry.load(version)
    assert np.array_equal(loaded.predict(texts)[1], trained.model.predict(texts)[1])
    with pytest.raises(ModelError, match="saved with scikit-learn 1.2.0"):
        loaded.model
    without_scorer(models, version)
    with pytest.raises(ModelError, match="saved with scikit-learn 1.2.0"):
        registry.load(version, lazy=True)


def test_a_changed_or_missing_scorer_is_refused(saved):
    registry, version, models = saved
    with (models / version / SCORER).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelError, match=r"scorer\.npz: SHA-256 is .* changed after it was saved and its scores"):
        registry.champion(lazy=True)
    (models / version / SCORER).unlink()
    with pytest.raises(ModelError, match=r"scorer\.npz: the scorer file is missing"):
        registry.champion(lazy=True)


def _rewritten(path: Path, saved_path: Path, **changed) -> None:
    """Write the saved scorer's arrays to path, some of them changed."""
    with np.load(saved_path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    with path.open("wb") as handle:
        np.savez(handle, **{**arrays, **changed})


def _other_frames(path: Path, saved_path: Path) -> None:
    with np.load(saved_path) as stored:
        settings = json.loads(stored["settings"].tobytes())
    settings["frames"] = settings["frames"][::-1]
    _rewritten(path, saved_path, settings=np.frombuffer(json.dumps(settings).encode(), dtype=np.uint8))


@pytest.mark.parametrize("write, words", [
    (lambda p, _: p.write_text("not a zip file\n"), r"not a readable scorer file \("),
    (lambda p, _: p.write_bytes(b""), r"not a readable scorer file \("),
    (lambda p, kept: _rewritten(p, kept, words=np.array([{"a": 1}], dtype=object)),
     r"not a readable scorer file \(.*allow_pickle"),
    (lambda p, kept: _rewritten(p, kept, idf=np.ones(3)), r"not a readable scorer file \(.*3 IDF weights for"),
    (lambda p, _: np.savez(p, words=np.zeros(3, dtype=np.uint8)),
     r"not a readable scorer file \(ValueError: no chars, settings"),
    (_other_frames, r"the scorer's frames .* differ from metadata\.json's"),
], ids=["text", "empty", "object-array", "idf-length", "missing-arrays", "other-frames"])
def test_a_scorer_file_of_the_wrong_kind_is_refused_in_one_line(saved, tmp_path, write, words):
    registry, version, models = saved
    path = models / version / SCORER
    kept = shutil.copy(path, tmp_path / "kept.npz")
    path.unlink()
    write(path, kept)
    meta = json.loads((models / version / "metadata.json").read_text())
    meta["scorer_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()  # as someone with write access could
    (models / version / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match=words) as refused:
        registry.champion()
    message = str(refused.value)
    assert "\n" not in message and "scorer.npz" in message and "rhetoric train --force" in message
