"""Scoring a model on labelled sentences: the real-text split (weighted, with bootstrap intervals) and the written one.

The evaluation folder (labels/eval/) holds two kinds of sentences. Text we did not write
(origin other than "written": real corpora, sampled with an inclusion `weight` per row) is
the split that model selection and the promotion gate judge first; our own written
held-out articles stay as a guard that the written register is not lost.

On the real split every count is weighted by the row's `weight` (1 / inclusion
probability), so precision, recall and F1 estimate what the model does on the whole pool
of real text, not on the sample's stratified mix. Intervals come from a bootstrap over
documents (sentences of one document move together), resampled within each corpus.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

BOOTSTRAP_ROUNDS = 1000
BOOTSTRAP_SEED = 20261129
CONFIDENCE = 0.95


def split_eval(held_out: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(real, written): evaluation rows of text we did not write, and our own written held-out rows."""
    written = held_out["origin"].astype(str).eq("written") if "origin" in held_out else pd.Series(True, held_out.index)
    return held_out[~written].reset_index(drop=True), held_out[written].reset_index(drop=True)


def row_weights(table: pd.DataFrame) -> np.ndarray:
    """The rows' inclusion weights (1 where the column is missing or empty)."""
    if "weight" not in table:
        return np.ones(len(table))
    return pd.to_numeric(table["weight"], errors="coerce").fillna(1.0).to_numpy(dtype=float)


def weighted_metrics(y_true: np.ndarray, y_pred: np.ndarray, frames: Sequence[str], weights: np.ndarray | None = None,
                     documents: Sequence[str] | None = None, strata: Sequence[str] | None = None,
                     rounds: int = BOOTSTRAP_ROUNDS) -> dict:
    """Per-frame precision, recall, F1 (weighted counts), macro and micro F1, and bootstrap intervals.

    Args:
        y_true, y_pred: (n, k) 0/1 matrices.
        weights: each row's inclusion weight (default 1).
        documents: each row's document; with it, 95% intervals from resampling documents
            (within each stratum, e.g. corpus) are added under "ci".
    Returns:
        {"per_frame": {frame: {precision, recall, f1, support, weighted_support}}, "macro_f1",
         "micro_f1", "n", "weighted": True, and "ci": {frame: {precision, recall, f1: [lo, hi]},
         "macro_f1": [lo, hi]} when documents are given}
    """
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    w = np.ones(len(y_true)) if weights is None else np.asarray(weights, dtype=float)
    counts = _counts(y_true, y_pred, w)
    precision, recall, f1 = _rates(*counts)
    per_frame = {
        name: {"precision": float(precision[j]), "recall": float(recall[j]), "f1": float(f1[j]),
               "support": int(y_true[:, j].sum()), "weighted_support": float((w * y_true[:, j]).sum())}
        for j, name in enumerate(frames)
    }
    tp, fp, fn = (c.sum() for c in counts)
    result = {"per_frame": per_frame, "macro_f1": float(np.mean(f1)),
              "micro_f1": float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0,
              "n": int(len(y_true)), "weighted": True}
    if documents is not None and len(y_true):
        result["ci"] = _bootstrap(y_true, y_pred, w, frames, np.asarray(documents, dtype=object),
                                  None if strata is None else np.asarray(strata, dtype=object), rounds)
    return result


def _counts(y_true: np.ndarray, y_pred: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted true positives, false positives and false negatives per frame (last axis)."""
    wc = w[:, None]
    return ((wc * (y_true & y_pred)).sum(axis=0), (wc * (~y_true & y_pred)).sum(axis=0),
            (wc * (y_true & ~y_pred)).sum(axis=0))


def _rates(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
    return precision, recall, f1


def _bootstrap(y_true, y_pred, w, frames, documents, strata, rounds: int) -> dict:
    """Percentile intervals from resampling whole documents with replacement, within each stratum."""
    codes, uniques = pd.factorize(documents)
    per_doc = [np.zeros((len(uniques), y_true.shape[1])) for _ in range(3)]
    for total, part in zip(per_doc, _per_row_counts(y_true, y_pred, w)):
        np.add.at(total, codes, part)
    doc_stratum = (pd.Series(strata).groupby(codes).first().to_numpy() if strata is not None
                   else np.zeros(len(uniques), dtype=object))
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    draws = np.zeros((rounds, len(uniques)))
    for stratum in pd.unique(doc_stratum):
        members = np.flatnonzero(doc_stratum == stratum)
        picks = rng.integers(0, len(members), size=(rounds, len(members)))
        np.add.at(draws, (np.repeat(np.arange(rounds), len(members)), members[picks].ravel()), 1)
    tp, fp, fn = (draws @ total for total in per_doc)
    precision, recall, f1 = _rates(tp, fp, fn)
    low, high = (1 - CONFIDENCE) / 2 * 100, (1 + CONFIDENCE) / 2 * 100

    def interval(values: np.ndarray) -> list[float]:
        return [float(np.percentile(values, low)), float(np.percentile(values, high))]

    out = {name: {"precision": interval(precision[:, j]), "recall": interval(recall[:, j]), "f1": interval(f1[:, j])}
           for j, name in enumerate(frames)}
    out["macro_f1"] = interval(f1.mean(axis=1))
    return out


def _per_row_counts(y_true, y_pred, w):
    wc = w[:, None]
    return wc * (y_true & y_pred), wc * (~y_true & y_pred), wc * (y_true & ~y_pred)


def documents_of(table: pd.DataFrame) -> np.ndarray:
    """Each row's document for the bootstrap: its url (or id), else its batch."""
    if "url" in table:
        urls = table["url"].astype(str)
        return np.where(urls.str.len() > 0, urls, table["batch"].astype(str))
    return table["batch"].astype(str).to_numpy()


def strata_of(table: pd.DataFrame) -> np.ndarray | None:
    """Each row's corpus, the stratum the bootstrap resamples within (None without a source column)."""
    return table["source"].astype(str).to_numpy() if "source" in table else None


def weighted_rates(y_true: np.ndarray, y_pred: np.ndarray, frames: Sequence[str],
                   weights: np.ndarray | None = None) -> dict[str, dict]:
    """Per frame, weighted true- and false-positive rates, with the effective numbers of positives and
    negatives behind them (Kish: (sum w)^2 / sum w^2), for the trend correction's rate uncertainty."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    w = np.ones(len(y_true)) if weights is None else np.asarray(weights, dtype=float)
    rates = {}
    for j, name in enumerate(frames):
        truth, flagged = y_true[:, j], y_pred[:, j]
        positives, negatives = w[truth], w[~truth]
        rates[name] = {
            # clipped: summing float weights can land a hair above 1
            "tpr": min(1.0, float((w * (truth & flagged)).sum() / positives.sum())) if positives.sum() else 0.0,
            "fpr": min(1.0, float((w * (~truth & flagged)).sum() / negatives.sum())) if negatives.sum() else 0.0,
            "positives": _effective(positives), "negatives": _effective(negatives),
            "reviewed": int(len(truth)),
        }
    return rates


def _effective(weights: np.ndarray) -> float:
    """Kish's effective sample size of weighted rows."""
    return float(weights.sum() ** 2 / (weights ** 2).sum()) if len(weights) and weights.sum() else 0.0
