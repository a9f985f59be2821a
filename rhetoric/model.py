"""The sentence classifier: candidate pipelines, grouped cross-validation, calibration, thresholds.

A trained FrameModel is a scikit-learn Pipeline (features -> one-vs-rest linear
classifier) plus, per frame, a Platt calibration of its decision score and a
decision threshold. Calibration, thresholds and the error rates the trend charts
correct for are all learned from out-of-fold scores of a cross-validation grouped
by batch, so sentences of one article or written batch never sit on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_fscore_support
from sklearn.model_selection import GroupKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from rhetoric.errors import ModelError
from rhetoric.features import NewsFeatures
from rhetoric.scorer import Scoring, calibrate
from rhetoric.vectors import keyword_hits, keyword_index, tokenise
from rhetoric.labels import Frame, label_matrix

SEED = 20261122
CV_FOLDS = 5
MIN_POSITIVES = 3
MIN_REPRESENTATIVE_POSITIVES = 15
class NBLogisticRegression(BaseEstimator, ClassifierMixin):
    """NB-SVM-style binary classifier: features scaled by their naive-Bayes log-count ratio."""

    def __init__(self, C: float = 4.0, alpha: float = 1.0, class_weight: str | None = "balanced"):
        self.C = C
        self.alpha = alpha
        self.class_weight = class_weight

    def fit(self, X, y):
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        X = sparse.csr_matrix(X)
        p = self.alpha + np.asarray(X[y == 1].sum(axis=0)).ravel()
        q = self.alpha + np.asarray(X[y != 1].sum(axis=0)).ravel()
        self.ratio_ = np.log((p / p.sum()) / (q / q.sum()))
        self.model_ = LogisticRegression(C=self.C, class_weight=self.class_weight, solver="liblinear", random_state=SEED)
        self.model_.fit(X.multiply(self.ratio_).tocsr(), y)
        return self

    def decision_function(self, X):
        return self.model_.decision_function(sparse.csr_matrix(X).multiply(self.ratio_).tocsr())

    def predict(self, X):
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


@dataclass(frozen=True)
class Candidate:
    """A pipeline configuration that model selection compares."""

    name: str
    classifier: str
    char: bool = True
    keywords: bool = True
    char_range: tuple[int, int] = (3, 5)
    # "none": TF-IDF only (scikit-learn alone); "only": sentence embeddings alone; "beside": both
    # side by side. Anything but "none" needs the optional embeddings extra.
    embeddings: str = "none"
    # 0/1 flags for each frame's topic words beside the n-grams (rhetoric.vectors.topic_flags)
    topics: bool = False


CANDIDATES = {
    c.name: c
    for c in [
        Candidate("logreg-word-char-kw", "logreg"),
        Candidate("logreg-word-char", "logreg", keywords=False),
        Candidate("logreg-word-kw", "logreg", char=False),
        Candidate("svm-word-char-kw", "svm"),
        Candidate("svm-word-char", "svm", keywords=False),
        Candidate("svm-word-kw", "svm", char=False),
        Candidate("nbsvm-word-char-kw", "nbsvm"),
        Candidate("nbsvm-word-kw", "nbsvm", char=False),
        Candidate("logreg-word-char-kw-topics", "logreg", topics=True),
        Candidate("svm-word-char-topics", "svm", keywords=False, topics=True),
        Candidate("svm-word-char-kw-topics", "svm", topics=True),
        Candidate("nbsvm-word-char-kw-topics", "nbsvm", topics=True),
    ]
}
# what `rhetoric train` compares by default: the families that were ever close on the real split
SELECTION = ("logreg-word-char-kw", "svm-word-char", "svm-word-char-kw", "nbsvm-word-char-kw",
             "logreg-word-char-kw-topics", "svm-word-char-topics", "svm-word-char-kw-topics",
             "nbsvm-word-char-kw-topics")
EMBEDDING_CANDIDATES = {
    c.name: c
    for c in [
        Candidate("embed-logreg", "logreg", char=False, keywords=False, embeddings="only"),
        Candidate("svm-word-char+embed", "svm", keywords=False, embeddings="beside"),
        Candidate("logreg-word-char+embed", "logreg", keywords=False, embeddings="beside"),
    ]
}
ALL_CANDIDATES = {**CANDIDATES, **EMBEDDING_CANDIDATES}
DEFAULT_CANDIDATE = "svm-word-char"


def build_pipeline(candidate: Candidate, frames: Sequence[Frame]) -> Pipeline:
    """The unfitted scikit-learn Pipeline for a candidate."""
    features = NewsFeatures(char_ngrams=candidate.char_range if candidate.char else None,
                            keywords=tuple(f.keywords for f in frames) if candidate.keywords else (),
                            topics=tuple(f.topics for f in frames) if candidate.topics else ())
    if candidate.embeddings != "none":
        from rhetoric.embeddings import SentenceEmbeddings  # the optional extra, imported only when asked for

        embedded = SentenceEmbeddings()
        features = embedded if candidate.embeddings == "only" else FeatureUnion([("tfidf", features),
                                                                                  ("embeddings", embedded)])
    base = {
        "logreg": LogisticRegression(C=8.0, class_weight="balanced", solver="liblinear", random_state=SEED),
        "svm": LinearSVC(C=0.5, class_weight="balanced", random_state=SEED),
        "nbsvm": NBLogisticRegression(C=4.0),
    }[candidate.classifier]
    return Pipeline([("features", features), ("classifier", OneVsRestClassifier(base))])


class FrameModel(Scoring):
    """A fitted pipeline plus per-frame Platt calibration and decision thresholds."""

    def __init__(self, pipeline: Pipeline, frames: Sequence[str], calibration: np.ndarray, thresholds: np.ndarray):
        self.pipeline = pipeline
        self.frames = tuple(frames)
        self.calibration = np.asarray(calibration, dtype=float)
        self.thresholds = np.asarray(thresholds, dtype=float)

    def decision(self, texts: list[str]) -> np.ndarray:
        return decision_scores(self.pipeline, texts)


def decision_scores(pipeline: Pipeline, texts: Sequence[str]) -> np.ndarray:
    """The one-vs-rest decision scores, always shape (n, k).

    The k linear models are applied as one sparse-by-dense product (one pass over the
    features instead of k); linear_weights gives the same numbers as decision_function.
    """
    features = pipeline.named_steps["features"].transform(list(texts))
    weights, intercepts = linear_weights(pipeline.named_steps["classifier"])
    return np.asarray(features @ weights) + intercepts


def linear_weights(classifier: OneVsRestClassifier) -> tuple[np.ndarray, np.ndarray]:
    """The (features, k) weight matrix and k intercepts of a one-vs-rest linear classifier."""
    columns, intercepts = [], []
    for estimator in classifier.estimators_:
        if isinstance(estimator, NBLogisticRegression):
            columns.append(estimator.ratio_ * estimator.model_.coef_.ravel())
            intercepts.append(float(estimator.model_.intercept_[0]))
        elif hasattr(estimator, "coef_"):
            columns.append(estimator.coef_.ravel())
            intercepts.append(float(np.ravel(estimator.intercept_)[0]))
        else:  # a frame that was constant in this training fold
            columns.append(None)
            intercepts.append(float(estimator.decision_function(np.zeros((1, 1)))[0]))
    width = next((len(c) for c in columns if c is not None), 0)
    weights = np.column_stack([np.zeros(width) if c is None else c for c in columns])
    return weights, np.array(intercepts)


def fit_calibration(decision: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per frame, the (a, b) of a logistic fit of the label on the out-of-fold score."""
    params = np.zeros((y.shape[1], 2))
    for j in range(y.shape[1]):
        platt = LogisticRegression(C=1e4, solver="lbfgs").fit(decision[:, [j]], y[:, j])
        params[j] = platt.coef_[0, 0], platt.intercept_[0]
    return params


def choose_thresholds(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per frame, the threshold on calibrated scores that maximises out-of-fold F1 (ties: nearest 0.5)."""
    grid = np.round(np.arange(0.05, 0.951, 0.01), 2)
    chosen = np.zeros(y.shape[1])
    for j in range(y.shape[1]):
        f1 = [_f1(y[:, j], scores[:, j] >= t) for t in grid]
        best = max(f1)
        candidates = [t for t, f in zip(grid, f1) if f >= best - 1e-9]
        chosen[j] = min(candidates, key=lambda t: abs(t - 0.5))
    return chosen


def _f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    tp = float(np.sum(truth & predicted))
    denominator = float(np.sum(truth) + np.sum(predicted))
    return 2 * tp / denominator if denominator else 0.0


def frame_metrics(y_true: np.ndarray, y_pred: np.ndarray, frames: Sequence[str]) -> dict:
    """Per-frame precision, recall, F1 and support; macro and micro F1."""
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0,
                                                 labels=list(range(len(frames))))
    micro = precision_recall_fscore_support(y_true, y_pred, average="micro", zero_division=0)
    per_frame = {
        name: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(s[j])}
        for j, name in enumerate(frames)
    }
    return {"per_frame": per_frame, "macro_f1": float(np.mean(f)), "micro_f1": float(micro[2]), "n": int(len(y_true))}


def error_rates(y_true: np.ndarray, y_pred: np.ndarray, frames: Sequence[str]) -> dict:
    """Per frame, true- and false-positive rates (for adjusted classify-and-count)."""
    rates = {}
    for j, name in enumerate(frames):
        truth, pred = y_true[:, j].astype(bool), y_pred[:, j].astype(bool)
        tpr = float(np.sum(truth & pred) / max(1, np.sum(truth)))
        fpr = float(np.sum(~truth & pred) / max(1, np.sum(~truth)))
        # the counts behind each rate let the trend bands carry the rates' own uncertainty
        rates[name] = {"tpr": tpr, "fpr": fpr, "positives": int(truth.sum()), "negatives": int((~truth).sum())}
    return rates


def keyword_baseline(texts: Sequence[str], frames: Sequence[Frame]) -> np.ndarray:
    """The keyword-only baseline: a frame is predicted when any of its typical wording appears."""
    ids, doc, words = tokenise(texts)
    predicted = np.zeros((len(texts), len(frames)), dtype=bool)
    for row, j in keyword_hits(ids, doc, words, keyword_index([f.keywords for f in frames])):
        predicted[row, j] = True
    return predicted


@dataclass
class TrainedModel:
    """A fitted FrameModel and what grouped cross-validation said about it and its rivals."""

    model: FrameModel
    candidate: str
    cv: dict
    rates: dict
    selection: list[dict] = field(default_factory=list)
    n_train: int = 0


def check_trainable(table: pd.DataFrame, frames: Sequence[Frame]) -> None:
    """Refuse to train when a frame has too few examples or there are too few batches to cross-validate.

    Raises:
        ModelError: naming the frame or the shortfall and what to add.
    """
    y = label_matrix(table, frames)
    problems = [
        f"frame {f.name!r} has {int(y[:, j].sum())} labelled sentence(s); label at least {MIN_POSITIVES} in labels/*.csv"
        for j, f in enumerate(frames) if y[:, j].sum() < MIN_POSITIVES
    ]
    if (y.sum(axis=1) == 0).sum() < MIN_POSITIVES:
        problems.append(f"fewer than {MIN_POSITIVES} sentences carry no frame; label some neutral sentences too")
    if table["batch"].nunique() < 2:
        problems.append("all sentences share one batch; grouped cross-validation needs at least two batches")
    if problems:
        raise ModelError("cannot train: " + "; ".join(problems))


def out_of_fold(candidate: Candidate, frames: Sequence[Frame], texts: list[str], y: np.ndarray,
                groups: Sequence[str]) -> np.ndarray:
    """Decision scores for every sentence from a model that never saw its batch."""
    folds = GroupKFold(n_splits=min(CV_FOLDS, len(set(groups))))
    decision = np.zeros(y.shape, dtype=float)
    text_array = np.asarray(texts, dtype=object)
    for train_idx, test_idx in folds.split(text_array, y, groups):
        pipeline = build_pipeline(candidate, frames).fit(list(text_array[train_idx]), y[train_idx])
        decision[test_idx] = decision_scores(pipeline, list(text_array[test_idx]))
    return decision


def assess(decision: np.ndarray, y: np.ndarray, names: Sequence[str], representative: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray, dict, dict, dict]:
    """From out-of-fold scores: calibration, thresholds, metrics and error rates at those thresholds.

    Calibration uses every row. A frame's threshold is chosen where its F1 matters: on the
    representative rows (a simple random sample of real text, the labelling loop's random
    share) when they hold at least MIN_REPRESENTATIVE_POSITIVES of the frame, else on every
    row. Labels chosen to teach the model (written examples, uncertain and topical picks) hold
    frames far more often than real text does, and a threshold tuned on them flags too much
    of a real corpus. The error rates are measured on the same rows as the threshold.

    Returns:
        calibration, thresholds, CV metrics (all rows), rates, and per frame where the threshold came from.
    """
    calibration = fit_calibration(decision, y)
    scores = calibrate(decision, calibration)
    thresholds = choose_thresholds(scores, y)
    sources: dict[str, dict] = {}
    rates = error_rates(y, scores >= thresholds, names)
    for j, name in enumerate(names):
        rows = np.ones(len(y), dtype=bool)
        if representative is not None and y[representative, j].sum() >= MIN_REPRESENTATIVE_POSITIVES:
            rows = np.asarray(representative, dtype=bool)
            thresholds[j] = choose_thresholds(scores[rows][:, [j]], y[rows][:, [j]])[0]
            rates[name] = error_rates(y[rows][:, [j]], scores[rows][:, [j]] >= thresholds[j], [name])[name]
        sources[name] = {"rows": "random sample" if rows.sum() < len(y) else "all labels",
                         "sentences": int(rows.sum()), "positives": int(y[rows, j].sum())}
    predicted = scores >= thresholds
    return calibration, thresholds, frame_metrics(y, predicted, names), rates, sources


def train(table: pd.DataFrame, frames: Sequence[Frame], candidates: Sequence[str] = (DEFAULT_CANDIDATE,),
          judge: Callable[[FrameModel], float | None] | None = None) -> TrainedModel:
    """Fit every candidate, then keep the best: by judge (the real-text split's macro-F1) when given, else by CV.

    Each candidate gets grouped cross-validation on the training labels (its calibration,
    thresholds and error rates come from the out-of-fold scores) and a fit on all rows.

    Raises:
        ModelError: an unknown candidate name, or labels too thin to train on.
    """
    unknown = [c for c in candidates if c not in ALL_CANDIDATES]
    if unknown:
        raise ModelError(f"unknown candidate pipeline {unknown[0]!r}; expected one of {', '.join(ALL_CANDIDATES)}")
    if not candidates:
        raise ModelError(f"no candidate pipeline given; expected some of {', '.join(ALL_CANDIDATES)}")
    check_trainable(table, frames)
    names = [f.name for f in frames]
    texts, y, groups = list(table["text"]), label_matrix(table, frames), list(table["batch"])
    representative = representative_rows(table)
    fitted = []
    for name in candidates:
        candidate = ALL_CANDIDATES[name]
        calibration, thresholds, metrics, rates, sources = assess(out_of_fold(candidate, frames, texts, y, groups), y,
                                                                names, representative)
        model = FrameModel(build_pipeline(candidate, frames).fit(texts, y), names, calibration, thresholds)
        row = {"candidate": name, "macro_f1": metrics["macro_f1"], "micro_f1": metrics["micro_f1"],
               "thresholds_from": sources}
        if judge is not None:
            row["judged_macro_f1"] = judge(model)
        fitted.append((row, model, metrics, rates))
    row, model, metrics, rates = max(fitted, key=lambda item: _rank(item[0]))
    return TrainedModel(model, row["candidate"], metrics, rates, [r for r, *_ in fitted], len(texts))


def representative_rows(table: pd.DataFrame) -> np.ndarray | None:
    """Rows labelled from a simple random sample of real text (`reason` = "random", from `rhetoric label suggest`)."""
    if "reason" not in table:
        return None
    rows = table["reason"].astype(str).eq("random").to_numpy()
    return rows if rows.any() else None


def _rank(row: dict) -> tuple[float, float]:
    judged = row.get("judged_macro_f1")
    return (row["macro_f1"] if judged is None else judged, row["macro_f1"])
