"""The sentence classifier: candidate pipelines, grouped cross-validation, calibration, thresholds.

A trained FrameModel is a scikit-learn Pipeline (features -> one-vs-rest linear
classifier) plus, per frame, a Platt calibration of its decision score and a
decision threshold. Calibration, thresholds and the error rates the trend charts
correct for are all learned from out-of-fold scores of a cross-validation grouped
by batch, so sentences of one article or written batch never sit on both sides.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import precision_recall_fscore_support
from sklearn.model_selection import GroupKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from rhetoric.errors import ModelError
from rhetoric.labels import Frame, label_matrix

SEED = 20261122
CV_FOLDS = 5
MIN_POSITIVES = 3
PREDICT_CHUNK = 4000
_DIGITS = re.compile(r"\d")


def normalise_text(text: str) -> str:
    """Lower-case and map every digit to 0, so dates and figures do not sway the model."""
    return _DIGITS.sub("0", text.lower())


_TOKEN = re.compile(r"\w+")
KeywordIndex = dict[str, list[tuple[tuple[str, ...], int]]]


_TOKEN_OR_BREAK = re.compile(r"\w+|\x00")


def tokenise(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A batch as (word id of every token, sentence of every token, the distinct words in id order).

    The batch is normalised and split in one regex pass over the joined text, and words
    are numbered by pandas' hash-based factorize: no Python loop per token.
    """
    texts = [t.replace("\x00", " ") for t in texts] if any("\x00" in t for t in texts) else list(texts)
    tokens = _TOKEN_OR_BREAK.findall(normalise_text("\x00".join(texts)))
    codes, uniques = pd.factorize(np.array(tokens, dtype=object))
    words = list(uniques)
    is_break = np.zeros(len(codes), dtype=bool)
    if "\x00" in words:
        gap = words.index("\x00")
        is_break = codes == gap
        words.pop(gap)
        codes = codes - (codes > gap)
    doc = np.cumsum(is_break)[~is_break]
    return codes[~is_break].astype(np.int64), doc, words


def keyword_index(keywords: Sequence[Sequence[str]]) -> KeywordIndex:
    """First token -> [(all tokens, frame number)] for the frames' typical wording."""
    index: KeywordIndex = {}
    for j, group in enumerate(keywords):
        for keyword in group:
            tokens = tuple(_TOKEN.findall(normalise_text(keyword)))
            if tokens:
                index.setdefault(tokens[0], []).append((tokens, j))
    return index


def keyword_hits(ids: np.ndarray, doc: np.ndarray, words: list[str], index: KeywordIndex) -> set[tuple[int, int]]:
    """(sentence, frame) pairs where a keyword's tokens appear in a row; tokens compared whole."""
    starts = np.fromiter((w in index for w in words), dtype=bool, count=len(words))
    hits = set()
    for pos in np.flatnonzero(starts[ids]).tolist():
        row = int(doc[pos])
        for tokens, j in index[words[ids[pos]]]:
            end = pos + len(tokens)
            if end <= len(ids) and doc[end - 1] == row and all(
                    words[ids[pos + m]] == tokens[m] for m in range(1, len(tokens))):
                hits.add((row, j))
    return hits


class NewsFeatures(BaseEstimator, TransformerMixin):
    """Word 1-2-gram TF-IDF, within-word character n-gram TF-IDF and keyword flags, in one sparse matrix.

    scikit-learn's character analyser runs in pure Python per sentence (some 6,000
    sentences a second). Here each sentence is tokenised once; each distinct word of a
    batch is expanded into its unigram and character n-gram columns once (cached across
    batches), and the counts come from one sparse product of a sentence-by-item matrix
    (words, bigrams, keyword hits) with an item-by-column matrix. The word and character
    blocks are weighted like TfidfVectorizer(sublinear_tf=True) and L2-normalised each on
    its own, as a FeatureUnion of two vectorizers would be; keyword columns are 0/1 times
    keyword_weight, one per frame (a frame's typical wording from the frames file).
    """

    def __init__(self, word_ngrams: int = 2, char_ngrams: tuple[int, int] | None = (3, 5),
                 keywords: tuple[tuple[str, ...], ...] = (), min_df: int = 2, keyword_weight: float = 1.0):
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.keywords = keywords
        self.min_df = min_df
        self.keyword_weight = keyword_weight

    def fit(self, texts, y=None):
        if self.word_ngrams not in (1, 2):
            raise ValueError(f"word_ngrams must be 1 or 2, found {self.word_ngrams!r}")
        tokens = [_TOKEN.findall(normalise_text(t)) for t in texts]
        counts: Counter = Counter()
        for toks in tokens:
            counts.update(set(toks) | ({f"{a} {b}" for a, b in zip(toks, toks[1:])} if self.word_ngrams == 2 else set()))
        self.words_ = {w: i for i, w in enumerate(sorted(k for k, c in counts.items() if c >= self.min_df))}
        grams: Counter = Counter()
        if self.char_ngrams:
            for toks in tokens:
                grams.update({g for w in set(toks) for g in self._grams(w)})
        self.chars_ = {g: i for i, g in enumerate(sorted(k for k, c in grams.items() if c >= self.min_df))}
        self.keyword_index_ = keyword_index(self.keywords)
        size = len(self.words_)
        pairs = sorted((self.words_[a] * size + self.words_[b], column)
                       for term, column in self.words_.items() if " " in term for a, b in [term.split(" ")])
        self.bigram_keys_ = np.array([k for k, _ in pairs], dtype=np.int64)
        self.bigram_columns_ = np.array([c for _, c in pairs], dtype=np.int64)
        self.idf_ = np.ones(self._width())
        trained = self._counts(texts)
        df = np.bincount(trained.indices, minlength=self._width())
        self.idf_ = np.log((1 + len(texts)) / (1 + df)) + 1
        self.idf_[len(self.words_) + len(self.chars_):] = self.keyword_weight
        return self

    def transform(self, texts):
        counts = self._counts(texts)
        self._weigh(counts)
        return counts

    def _width(self) -> int:
        return len(self.words_) + len(self.chars_) + len(self.keywords)

    def _grams(self, word: str) -> list[str]:
        padded, (low, high) = f" {word} ", self.char_ngrams
        return [padded[i:i + n] for n in range(low, high + 1) for i in range(len(padded) - n + 1)]

    def _word_columns(self, word: str) -> list[int]:
        cache = self.__dict__.setdefault("_cache", {})
        found = cache.get(word)
        if found is None:
            offset = len(self.words_)
            found = [offset + self.chars_[g] for g in self._grams(word) if g in self.chars_] if self.chars_ else []
            if word in self.words_:
                found.insert(0, self.words_[word])
            if len(cache) < 1_000_000:
                cache[word] = found
        return found

    def _counts(self, texts) -> sparse.csr_matrix:
        """Raw counts: (sentence x item) @ (item x column); items are the batch's words, the
        vocabulary's bigrams and the keyword flags."""
        ids, doc, words = tokenise(texts)
        word_rows = [self._word_columns(w) for w in words]
        rows, items = [doc], [ids]
        bigram_item = len(words)
        if len(self.bigram_keys_) and len(ids) > 1:
            known = np.fromiter((self.words_.get(w, -1) for w in words), dtype=np.int64, count=len(words))[ids]
            first, second = known[:-1], known[1:]
            valid = (doc[1:] == doc[:-1]) & (first >= 0) & (second >= 0)
            keys = first[valid] * len(self.words_) + second[valid]
            rank = np.minimum(np.searchsorted(self.bigram_keys_, keys), len(self.bigram_keys_) - 1)
            found = self.bigram_keys_[rank] == keys
            rows.append(doc[1:][valid][found])
            items.append(bigram_item + rank[found])
        keyword_item = bigram_item + len(self.bigram_keys_)
        hits = keyword_hits(ids, doc, words, self.keyword_index_) if self.keywords else set()
        if hits:
            rows.append(np.array([r for r, _ in hits]))
            items.append(keyword_item + np.array([j for _, j in hits]))
        n_items = keyword_item + len(self.keywords)
        row_arr, item_arr = np.concatenate(rows), np.concatenate(items)
        doc_items = sparse.csr_matrix((np.ones(len(row_arr)), (row_arr, item_arr)), shape=(len(texts), n_items))
        lengths = np.concatenate([[len(r) for r in word_rows], np.ones(n_items - bigram_item, dtype=np.int64)])
        flat = np.concatenate([
            np.fromiter((c for r in word_rows for c in r), dtype=np.int64, count=int(sum(len(r) for r in word_rows))),
            self.bigram_columns_,
            len(self.words_) + len(self.chars_) + np.arange(len(self.keywords), dtype=np.int64)])
        pointer = np.concatenate([[0], np.cumsum(lengths)])
        item_columns = sparse.csr_matrix((np.ones(len(flat)), flat, pointer), shape=(n_items, self._width()))
        return (doc_items @ item_columns).tocsr()

    def _weigh(self, counts: sparse.csr_matrix) -> None:
        """Sublinear TF-IDF and per-block L2 norms, in place (the product holds no duplicate entries)."""
        data, columns = counts.data, counts.indices
        np.log(data, out=data)
        data += 1
        data *= self.idf_[columns]  # keyword columns: count 1, "idf" keyword_weight
        block = (columns >= len(self.words_)).astype(np.int8)
        block += columns >= len(self.words_) + len(self.chars_)
        slot = np.repeat(np.arange(counts.shape[0]) * 3, np.diff(counts.indptr)) + block
        norms = np.sqrt(np.bincount(slot, weights=data * data, minlength=3 * counts.shape[0]))
        norms[2::3] = 1.0
        norms[norms == 0] = 1.0
        data /= norms[slot]

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_cache", None)
        return state


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
    ]
}
DEFAULT_CANDIDATE = "svm-word-char"


def build_pipeline(candidate: Candidate, frames: Sequence[Frame]) -> Pipeline:
    """The unfitted scikit-learn Pipeline for a candidate."""
    features = NewsFeatures(char_ngrams=candidate.char_range if candidate.char else None,
                            keywords=tuple(f.keywords for f in frames) if candidate.keywords else ())
    base = {
        "logreg": LogisticRegression(C=8.0, class_weight="balanced", solver="liblinear", random_state=SEED),
        "svm": LinearSVC(C=0.5, class_weight="balanced", random_state=SEED),
        "nbsvm": NBLogisticRegression(C=4.0),
    }[candidate.classifier]
    return Pipeline([("features", features), ("classifier", OneVsRestClassifier(base))])


class FrameModel:
    """A fitted pipeline plus per-frame Platt calibration and decision thresholds."""

    def __init__(self, pipeline: Pipeline, frames: Sequence[str], calibration: np.ndarray, thresholds: np.ndarray):
        self.pipeline = pipeline
        self.frames = tuple(frames)
        self.calibration = np.asarray(calibration, dtype=float)
        self.thresholds = np.asarray(thresholds, dtype=float)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, shape (n, k); computed in chunks, which keeps the matrices in cache."""
        texts = list(texts)
        chunks = [decision_scores(self.pipeline, texts[i:i + PREDICT_CHUNK]) for i in range(0, len(texts), PREDICT_CHUNK)]
        if not chunks:
            return np.zeros((0, len(self.frames)))
        return calibrate(np.vstack(chunks), self.calibration)

    def predict(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(labels bool (n, k), calibrated scores (n, k)), thresholds applied."""
        scores = self.scores(texts)
        return scores >= self.thresholds, scores


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


def calibrate(decision: np.ndarray, calibration: np.ndarray) -> np.ndarray:
    """Apply per-frame Platt scaling: sigmoid(a * score + b)."""
    return 1.0 / (1.0 + np.exp(-(decision * calibration[:, 0] + calibration[:, 1])))


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
        rates[name] = {"tpr": tpr, "fpr": fpr}
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


def assess(decision: np.ndarray, y: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """From out-of-fold scores: calibration, thresholds, metrics and error rates at those thresholds."""
    calibration = fit_calibration(decision, y)
    scores = calibrate(decision, calibration)
    thresholds = choose_thresholds(scores, y)
    predicted = scores >= thresholds
    return calibration, thresholds, frame_metrics(y, predicted, names), error_rates(y, predicted, names)


def train(table: pd.DataFrame, frames: Sequence[Frame], candidates: Sequence[str] = (DEFAULT_CANDIDATE,)) -> TrainedModel:
    """Compare the candidates by grouped cross-validation, then fit the best one on all rows.

    Raises:
        ModelError: an unknown candidate name, or labels too thin to train on.
    """
    unknown = [c for c in candidates if c not in CANDIDATES]
    if unknown:
        raise ModelError(f"unknown candidate pipeline {unknown[0]!r}; expected one of {', '.join(CANDIDATES)}")
    if not candidates:
        raise ModelError(f"no candidate pipeline given; expected some of {', '.join(CANDIDATES)}")
    check_trainable(table, frames)
    names = [f.name for f in frames]
    texts, y, groups = list(table["text"]), label_matrix(table, frames), list(table["batch"])
    results = []
    for name in candidates:
        calibration, thresholds, metrics, rates = assess(out_of_fold(CANDIDATES[name], frames, texts, y, groups), y, names)
        results.append({"candidate": name, "macro_f1": metrics["macro_f1"],
                        "micro_f1": metrics["micro_f1"], "_fit": (calibration, thresholds, metrics, rates)})
    best = max(results, key=lambda r: r["macro_f1"])
    calibration, thresholds, metrics, rates = best["_fit"]
    pipeline = build_pipeline(CANDIDATES[best["candidate"]], frames).fit(texts, y)
    selection = [{k: v for k, v in r.items() if k != "_fit"} for r in results]
    return TrainedModel(FrameModel(pipeline, names, calibration, thresholds), best["candidate"], metrics, rates,
                        selection, len(texts))
