"""How close corrected trend shares come to the truth on a corpus unlike the training text, per estimator.

A simulated corpus is built from real, labelled sentences (the real-text evaluation split,
labels/eval/real*.csv): 8 quarters of 40 articles of 25 sentences, each frame's true share
planted per quarter between 1% and 8%. Half of the split's documents build the corpus; the
other half stands in for "the evaluation split" (text other than the corpus). The champion
classifies every sentence. Then each quarter's share of each frame is estimated:

- cc: the raw share of flagged sentences (classify and count);
- acc: adjusted classify-and-count, (share - FPR) / (TPR - FPR), the dashboard's estimator;
- pcc: the mean calibrated probability (probabilistic classify and count);
- pacc: probabilistic ACC, the mean probability corrected by the mean probability on true
  positives and on true negatives;

each with its rates from cross-validation (cv), from the other half of the real split (eval),
and from a 300-sentence audit of the simulated corpus drawn by `rhetoric label audit`'s sampler
and filled from the true labels (audit). Bands: acc uses the dashboard's own band (bootstrap over
articles, rates redrawn from their Beta posteriors); the others a bootstrap over articles
with the rates redrawn by resampling the audit or split rows. It prints the mean absolute error
against the true quarterly shares and how often the 90% band covers them, per method and frame,
over --runs simulated corpora. Prints figures; asserts nothing.

    python bench/sim_trends.py [--runs 5] [--audit 300]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rhetoric.audit import draw_audit
from rhetoric.evaluation import row_weights, split_eval, weighted_rates
from rhetoric.labels import label_matrix, load_eval_labels, load_frames
from rhetoric.registry import Registry
from rhetoric.trends import estimate_shares

ROOT = Path(__file__).resolve().parents[1]
QUARTERS, ARTICLES, SENTENCES = 8, 40, 25
REPS = 300


def simulate(pool_truth: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of the pool making up each quarter (planted shares), each row's quarter and article."""
    frames = pool_truth.shape[1]
    none = np.flatnonzero(pool_truth.sum(axis=1) == 0)
    rows, quarter, article = [], [], []
    for q in range(QUARTERS):
        size = ARTICLES * SENTENCES
        planted = rng.uniform(0.01, 0.08, frames)
        chosen = []
        for j in range(frames):
            positives = np.flatnonzero(pool_truth[:, j])
            chosen.extend(rng.choice(positives, size=int(round(planted[j] * size))).tolist())
        chosen.extend(rng.choice(none, size=size - len(chosen)).tolist())
        chosen = rng.permutation(chosen)
        rows.extend(chosen.tolist())
        quarter.extend([q] * size)
        article.extend((q * ARTICLES + np.arange(size) // SENTENCES).tolist())
    return np.array(rows), np.array(quarter), np.array(article)


def prob_rates(truth: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean probability on true positives and on true negatives, weighted (PACC's rates)."""
    wc = weights[:, None]
    tpr = (wc * truth * scores).sum(0) / np.maximum((wc * truth).sum(0), 1e-9)
    fpr = (wc * (1 - truth) * scores).sum(0) / np.maximum((wc * (1 - truth)).sum(0), 1e-9)
    return tpr, fpr


def hard_rates(truth, predicted, weights):
    return prob_rates(truth, predicted.astype(float), weights)


def bootstrap_band(values: np.ndarray, quarter: np.ndarray, article: np.ndarray, correct, rate_draws,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """90% band per quarter and frame: articles resampled within quarters, rates redrawn per replicate."""
    per_article = pd.DataFrame(values).groupby(article).sum().to_numpy()
    sizes = np.bincount(article)[np.unique(article)]
    art_quarter = pd.Series(quarter).groupby(article).first().to_numpy()
    replicates = np.empty((REPS, QUARTERS, values.shape[1]))
    for r in range(REPS):
        weights = rng.poisson(1.0, len(per_article))
        tpr, fpr = rate_draws(r)
        for q in range(QUARTERS):
            mine = art_quarter == q
            share = (weights[mine] @ per_article[mine]) / max(weights[mine] @ sizes[mine], 1)
            replicates[r, q] = correct(share, tpr, fpr)
    return np.quantile(replicates, 0.05, axis=0), np.quantile(replicates, 0.95, axis=0)


def adjust(share, tpr, fpr):
    separation = tpr - fpr
    return np.clip(np.where(separation >= 0.05, (share - fpr) / np.where(separation >= 0.05, separation, 1), share), 0, 1)


def resampled_rates(truth, values, weights, rng, rounds=REPS):
    """Rates recomputed on resamples of the rows (within groups of equal weight: the audit's strata)."""
    strata = pd.factorize(np.round(weights, 6))[0]
    draws = []
    for _ in range(rounds):
        pick = np.concatenate([rng.choice(np.flatnonzero(strata == s), size=(strata == s).sum())
                               for s in np.unique(strata)])
        draws.append(prob_rates(truth[pick], values[pick], weights[pick]))
    return lambda r: draws[r]


def one_run(seed: int, model, frames, pool, pool_truth, pool_pred, pool_scores, other, audit_n: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows, quarter, article = simulate(pool_truth, rng)
    truth, predicted, scores = pool_truth[rows], pool_pred[rows], pool_scores[rows]
    true_share = pd.DataFrame(truth).groupby(quarter).mean().to_numpy()
    # the audit: the champion's labels of the simulated corpus, sampled as `rhetoric label audit` does
    corpus = pd.DataFrame({"sentence_id": np.arange(len(rows)), "text": pool["text"].to_numpy()[rows],
                           "source": article.astype(str), "outlet": "sim", "published": ""})
    for j, f in enumerate(frames):
        corpus[f] = predicted[:, j].astype(int)
    audit = draw_audit(corpus, frames, model.version, n=audit_n, seed=seed)
    picked = audit["sentence_id"].to_numpy()
    audit_w = audit["weight"].to_numpy(float)
    other_truth, other_pred, other_scores, other_w = other
    sources = {
        "cv": None,
        "eval": (other_truth, other_pred, other_scores, other_w),
        "audit": (truth[picked], predicted[picked], scores[picked], audit_w),
    }
    results = []
    cc = pd.DataFrame(predicted.astype(float)).groupby(quarter).mean().to_numpy()
    pcc = pd.DataFrame(scores).groupby(quarter).mean().to_numpy()
    results.append(_score("cc", "-", cc, *bootstrap_band(predicted.astype(float), quarter, article,
                                                        lambda s, t, f: s, lambda r: (None, None), rng), true_share, frames))
    results.append(_score("pcc", "-", pcc, *bootstrap_band(scores, quarter, article, lambda s, t, f: s,
                                                          lambda r: (None, None), rng), true_share, frames))
    for source, data in sources.items():
        if data is None:
            cv = model.metadata["rates"]
            rates = {f: cv[f] for f in frames}
        else:
            s_truth, s_pred, s_scores, s_w = data
            rates = weighted_rates(s_truth, s_pred, frames, s_w)
        # acc with the dashboard's own machinery
        articles = (pd.DataFrame(predicted.astype(int), columns=frames).assign(quarter=quarter, article=article)
                    .groupby("article").agg({**{f: "sum" for f in frames}, "quarter": "first"}))
        articles["sentences"] = SENTENCES
        est = estimate_shares(articles.reset_index(), frames, ["quarter"], rates, seed=seed, reps=REPS)
        shaped = lambda col: est.pivot(index="quarter", columns="frame", values=col)[list(frames)].to_numpy()
        results.append(_score("acc", source, shaped("adjusted_share"), shaped("share_low"), shaped("share_high"),
                              true_share, frames))
        if data is not None:
            tpr_p, fpr_p = prob_rates(s_truth, s_scores, s_w)
            point = adjust(pcc, tpr_p, fpr_p)
            low, high = bootstrap_band(scores, quarter, article, adjust,
                                       resampled_rates(s_truth, s_scores, s_w, rng), rng)
            results.append(_score("pacc", source, point, np.fmin(low, point), np.fmax(high, point), true_share, frames))
    return results


def _score(method, source, point, low, high, truth, frames) -> dict:
    covered = (low <= truth + 1e-9) & (truth <= high + 1e-9)
    return {"method": method, "rates": source, "mae": np.abs(point - truth).mean(axis=0),
            "coverage": covered.mean(axis=0), "frames": list(frames)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--audit", type=int, default=300)
    parser.add_argument("--labels", type=Path, default=ROOT / "labels")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    args = parser.parse_args()
    frames_all = load_frames(args.labels)
    real, _ = split_eval(load_eval_labels(args.labels, frames_all))
    model = Registry(args.models).champion()
    frames = [f.name for f in frames_all if f.name in model.frames]
    documents = real["url"].astype(str)
    half = documents.isin(pd.Series(sorted(documents.unique())).iloc[::2])  # every other document
    predicted, scores = model.predict(list(real["text"]))
    columns = [model.frames.index(f) for f in frames]
    predicted, scores = predicted[:, columns], scores[:, columns]
    truth = label_matrix(real, frames)
    weights = row_weights(real)
    pool = real[half.to_numpy()].reset_index(drop=True)
    mask = half.to_numpy()
    other = (truth[~mask], predicted[~mask], scores[~mask], weights[~mask])
    rows = []
    for run in range(args.runs):
        rows.extend(one_run(run, model, frames, pool, truth[mask], predicted[mask], scores[mask], other, args.audit))
    table = pd.DataFrame([{"method": r["method"], "rates": r["rates"], "frame": f, "mae": r["mae"][j],
                           "coverage": r["coverage"][j]} for r in rows for j, f in enumerate(r["frames"])])
    summary = table.groupby(["method", "rates"]).agg(mae=("mae", "mean"), coverage=("coverage", "mean"))
    print(f"{args.runs} simulated corpora of {QUARTERS} quarters x {ARTICLES} articles x {SENTENCES} sentences; "
          f"true shares 1-8%; champion {model.version}; audit of {args.audit} sentences")
    print("mean absolute error of quarterly shares and 90% band coverage, all frames:")
    print(summary.round(4).to_string())
    print("\nper frame:")
    print(table.groupby(["method", "rates", "frame"]).agg(mae=("mae", "mean"), coverage=("coverage", "mean"))
          .round(3).unstack("frame").to_string())


if __name__ == "__main__":
    main()
