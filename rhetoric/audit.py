"""The audit loop: measure the champion's error on the user's own corpus.

`rhetoric label audit` draws a seeded, stratified random sample of the stored sentences the
champion classified: one stratum per frame (sentences whose first flagged frame it is) and
one for the unflagged rest, so that every frame's flags and the bulk of unflagged text are
all represented. Each row records its inclusion weight (stratum size / rows drawn from it).
A reviewer corrects `frames`, sets `origin` to `audit` and saves the file under
labels/audit/. Audit rows never train a model.

`rhetoric label audit --report` re-scores the reviewed sentences that are still in the store
with the current champion (so an audit stays valid across a change of champion) and
estimates, weighted, each frame's precision, recall, true- and false-positive rates with
95% intervals from a bootstrap within strata (rows of one stratum share one weight).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from rhetoric.evaluation import _effective, split_eval
from rhetoric.labels import EVAL_DIR, FRAME_SEPARATOR, Frame, _load_dir, label_matrix, load_eval_labels, text_key

AUDIT_DIR = "audit"
AUDIT_COLUMNS = ["text", "frames", "origin", "batch", "weight", "sentence_id", "source", "outlet", "published",
                 "model_version"]
UNFLAGGED = "unflagged"
UNFLAGGED_SHARE = 0.4  # of the sample, for the unflagged rest; the frames' strata share the remainder
# enough reviewed evidence for a frame's rates to come from the audit: positives and negatives
MIN_AUDIT_POSITIVES = 10
MIN_AUDIT_NEGATIVES = 50
ROUNDS = 1000


def draw_audit(classified: pd.DataFrame, frames: Sequence[str], model_version: str, n: int = 300,
               seed: int = 0) -> pd.DataFrame:
    """A stratified random sample of classified sentences in the audit format (origin empty).

    classified has sentence_id, text, source, outlet, published and one 0/1 column per frame
    (the champion's labels). Strata: the first frame a sentence is flagged with, else UNFLAGGED.
    """
    table = classified.reset_index(drop=True)
    flags = table[list(frames)].fillna(0).astype(int).to_numpy().astype(bool)
    first = np.where(flags.any(axis=1), np.argmax(flags, axis=1), -1)
    stratum = np.where(first >= 0, np.asarray(frames, dtype=object)[np.maximum(first, 0)], UNFLAGGED)
    sizes = pd.Series(stratum).value_counts()
    quota = _allocate(sizes, list(frames), n)
    rng = np.random.default_rng(seed)
    picked, weights = [], []
    for name, wanted in quota.items():
        members = np.flatnonzero(stratum == name)
        if wanted == 0 or not len(members):
            continue
        chosen = np.sort(rng.choice(members, size=wanted, replace=False))
        picked.extend(chosen.tolist())
        weights.extend([len(members) / wanted] * wanted)
    rows = table.iloc[picked]
    out = pd.DataFrame({
        "text": list(rows["text"]),
        "frames": [FRAME_SEPARATOR.join(f for f, on in zip(frames, row) if on) for row in flags[picked]],
        "origin": "",
        "batch": [f"article:{s}" for s in rows["source"]],
        "weight": np.round(weights, 6),
        "sentence_id": list(rows["sentence_id"]),
        "source": list(rows["source"]),
        "outlet": list(rows["outlet"]),
        "published": [d.isoformat() if hasattr(d, "isoformat") else (d or "") for d in rows["published"]],
        "model_version": model_version,
    })
    return out.sample(frac=1.0, random_state=seed).reset_index(drop=True)[AUDIT_COLUMNS]


def _allocate(sizes: pd.Series, frames: list[str], n: int) -> dict[str, int]:
    """Rows per stratum: UNFLAGGED_SHARE of n for the unflagged rest, the remainder shared by the frames;
    a stratum smaller than its share is taken whole and what it leaves goes to the others."""
    names = [f for f in frames if sizes.get(f, 0)] + ([UNFLAGGED] if sizes.get(UNFLAGGED, 0) else [])
    quota = {name: 0 for name in names}
    left = min(n, int(sizes.sum()))
    share = {name: (UNFLAGGED_SHARE if name == UNFLAGGED else (1 - UNFLAGGED_SHARE) / max(1, len(names) - 1))
             for name in names}
    if UNFLAGGED not in names or len(names) == 1:
        share = {name: 1 / len(names) for name in names}
    while left > 0:
        open_ = [name for name in names if quota[name] < sizes[name]]
        total = sum(share[name] for name in open_)
        given = 0
        for name in open_:
            extra = min(int(sizes[name]) - quota[name], max(1, int(left * share[name] / total)))
            extra = min(extra, left - given)
            quota[name] += extra
            given += extra
            if given >= left:
                break
        left -= given
        if given == 0:
            break
    return quota


def load_audit(labels_dir: Path, frames: Sequence[Frame]) -> pd.DataFrame:
    """The reviewed audit rows: labels/audit/*.csv, validated like any labels (an empty origin is refused)."""
    folder = Path(labels_dir) / AUDIT_DIR
    return _load_dir(Path(labels_dir), sorted(folder.glob("*.csv")), frames)


def audit_metrics(audit: pd.DataFrame, stored: pd.DataFrame, model, frames: Sequence[Frame],
                  rounds: int = ROUNDS, seed: int = 0) -> dict:
    """The champion's error on the audited sentences still in the store, per frame, weighted, with intervals.

    stored is Store.texts_by_id(audit sentence ids): a reviewed row counts when its sentence is
    stored with the same text (an audit of another corpus, or of deleted articles, does not).

    Returns {"n": rows used, "per_frame": {frame: {precision, recall, tpr, fpr, positives, negatives,
    effective_positives, effective_negatives, and *_low/*_high 95% bounds}}}.
    """
    reviewed = audit[audit["origin"] == "audit"]
    stored_pairs = {(str(i), text_key(t)) for i, t in zip(stored["sentence_id"], stored["text"])}
    ids = reviewed["sentence_id"].astype(str) if "sentence_id" in reviewed else pd.Series("", index=reviewed.index)
    matched = [(i, text_key(t)) in stored_pairs for i, t in zip(ids, reviewed["text"])]
    reviewed = reviewed[np.asarray(matched, dtype=bool)].reset_index(drop=True)
    names = [f.name for f in frames if f.name in model.frames]
    if reviewed.empty:
        return {"n": 0, "per_frame": {}}
    truth = label_matrix(reviewed, names).astype(bool)
    predicted, _ = model.predict(list(reviewed["text"]))
    predicted = predicted[:, [model.frames.index(n) for n in names]]
    weights = pd.to_numeric(reviewed["weight"], errors="coerce").fillna(1.0).to_numpy(float)
    point = {key: values[0] for key, values in _rates(truth, predicted, weights[None, :]).items()}
    draws = _bootstrap(truth, predicted, weights, rounds, seed)
    per_frame = {}
    for j, name in enumerate(names):
        entry = {key: float(point[key][j]) for key in ("precision", "recall", "tpr", "fpr")}
        for key in ("precision", "recall", "tpr", "fpr"):
            with warnings.catch_warnings():  # a frame with no positive in the audit has no recall to bound
                warnings.simplefilter("ignore", RuntimeWarning)
                bounds = np.nanpercentile(draws[key][:, j], [2.5, 97.5])
            entry[f"{key}_low"], entry[f"{key}_high"] = (float(v) for v in bounds)
        positives, negatives = truth[:, j], ~truth[:, j]
        entry.update(positives=int(positives.sum()), negatives=int(negatives.sum()),
                     effective_positives=_effective(weights[positives]),
                     effective_negatives=_effective(weights[negatives]))
        per_frame[name] = entry
    return {"n": int(len(reviewed)), "per_frame": per_frame}


def _bootstrap(truth, predicted, weights, rounds: int, seed: int) -> dict[str, np.ndarray]:
    """Rates over resamples of rows within strata (rows of one stratum share a weight)."""
    rng = np.random.default_rng(seed)
    strata = pd.factorize(np.round(weights, 6))[0]
    counts = np.zeros((rounds, len(weights)))
    for stratum in np.unique(strata):
        members = np.flatnonzero(strata == stratum)
        picks = members[rng.integers(0, len(members), size=(rounds, len(members)))]
        np.add.at(counts, (np.repeat(np.arange(rounds), len(members)), picks.ravel()), 1)
    return _rates(truth, predicted, counts * weights[None, :])


def _rates(truth, predicted, w):
    """Weighted precision, recall, TPR and FPR per frame, for each row of weight vectors w (shape (k, rows))."""
    tp = w @ (truth & predicted)
    fp = w @ (~truth & predicted)
    fn = w @ (truth & ~predicted)
    tn = w @ (~truth & ~predicted)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
                "recall": np.where(tp + fn > 0, tp / (tp + fn), np.nan),
                "tpr": np.where(tp + fn > 0, tp / (tp + fn), np.nan),
                "fpr": np.where(fp + tn > 0, fp / (fp + tn), np.nan)}


def audit_rates(metrics: dict) -> dict[str, dict]:
    """Rates fit for the trend correction, for frames whose audit holds enough positives and negatives."""
    rates = {}
    for name, m in metrics.get("per_frame", {}).items():
        if m["positives"] >= MIN_AUDIT_POSITIVES and m["negatives"] >= MIN_AUDIT_NEGATIVES \
                and not np.isnan(m["tpr"]) and not np.isnan(m["fpr"]):
            rates[name] = {"tpr": min(1.0, m["tpr"]), "fpr": min(1.0, m["fpr"]), "positives": m["effective_positives"],
                           "negatives": m["effective_negatives"], "reviewed": m["positives"] + m["negatives"]}
    return rates


def report_table(metrics: dict) -> str:
    """The `label audit --report` table."""
    if not metrics.get("n"):
        return ("no reviewed audit rows match stored sentences: run `rhetoric label audit`, review the file "
                "(correct frames, set origin to audit) and save it under labels/audit/")
    lines = [f"audit: {metrics['n']} reviewed sentences of this corpus, weighted to it; [95% interval]",
             f"{'frame':<16}{'precision':>22}{'recall':>22}{'TPR':>8}{'FPR':>25}{'pos/neg':>10}"]
    for name, m in metrics["per_frame"].items():
        def cell(key: str, width: int = 22, digits: int = 2) -> str:
            return f"{m[key]:.{digits}f} [{m[key + '_low']:.{digits}f}, {m[key + '_high']:.{digits}f}]".rjust(width) \
                if not np.isnan(m[key]) else "-".rjust(width)
        lines.append(f"{name:<16}{cell('precision')}{cell('recall')}{m['tpr']:>8.2f}{cell('fpr', 25, 3)}"
                     f"{m['positives']:>5}/{m['negatives']:<4}")
    return "\n".join(lines)


def eval_rates(model, labels_dir: Path, frames: Sequence[Frame], cache_dir: Path | None = None) -> dict[str, dict]:
    """The champion's weighted rates on the real-text evaluation split: from its metadata, else measured now.

    With cache_dir (the project's .rhetoric/), a measurement is kept in EVAL_RATES_CACHE and reused
    while the champion, the frames and the evaluation files stay the same: scoring the split
    otherwise costs every run and `rhetoric status` a few tenths of a second.
    """
    from rhetoric.registry import real_split_rates

    recorded = model.metadata.get("rates_eval")
    if recorded:
        return recorded
    key = _eval_key(model, Path(labels_dir), frames) if cache_dir is not None else None
    cache = Path(cache_dir) / EVAL_RATES_CACHE if cache_dir is not None else None
    if key is not None and (cached := _cached(cache, key)) is not None:
        return cached
    try:
        real, _ = split_eval(load_eval_labels(Path(labels_dir), frames))
    except Exception:  # unreadable labels: the correction falls back to cross-validated rates
        return {}
    rates = real_split_rates(model, real, frames) or {}
    if key is not None:
        _keep(cache, key, rates)
    return rates


EVAL_RATES_CACHE = "eval-rates.json"
_EVAL_CACHE_FORMAT = 1  # raise when what eval_rates measures changes, so no older figure is reused


def _eval_key(model, labels_dir: Path, frames: Sequence[Frame]) -> str | None:
    """What eval_rates' figure depends on, hashed: the model file, the frames and the evaluation files.
    None for a model without a version and a recorded SHA-256 (it cannot be told apart from another)."""
    version, sha = getattr(model, "version", None), model.metadata.get("sha256")
    if not version or not sha:
        return None
    digest = hashlib.sha256(json.dumps([_EVAL_CACHE_FORMAT, version, sha, list(model.frames),
                                        [f.name for f in frames]]).encode())
    try:
        for path in sorted((labels_dir / EVAL_DIR).glob("*.csv")):
            digest.update(b"\0" + path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    except OSError:  # unreadable evaluation files: no cache, eval_rates goes on as without one
        return None
    return digest.hexdigest()


def _cached(path: Path, key: str) -> dict | None:
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return kept.get("rates") if isinstance(kept, dict) and kept.get("key") == key else None


def _keep(path: Path, key: str, rates: dict) -> None:
    from rhetoric.project import keep_state_file

    keep_state_file(path, json.dumps({"key": key, "rates": rates}))


def correction_evidence(model, labels_dir: Path, frames: Sequence[Frame], store=None,
                        cache_dir: Path | None = None) -> dict[str, dict]:
    """Per frame, the rates the trend correction uses and where they come from, best evidence first:
    this corpus's audit (enough reviewed positives and negatives), else the real-text evaluation
    split, else the champion's cross-validation on its training labels. cache_dir: see eval_rates.

    Returns {frame: {"tpr", "fpr", "positives", "negatives", "reviewed", "from": "audit" | "eval" | "cv"}}.
    """
    names = [f.name for f in frames if f.name in model.frames]
    audited: dict[str, dict] = {}
    if store is not None:
        audit = load_audit(Path(labels_dir), frames)
        if not audit.empty and "sentence_id" in audit:
            stored = store.texts_by_id(audit["sentence_id"])
            audited = audit_rates(audit_metrics(audit, stored, model, frames, rounds=200))
    # the real split is scored only when some frame's audit cannot pin its rates down
    evaluated = eval_rates(model, labels_dir, frames, cache_dir) if set(names) - set(audited) else {}
    cv = model.metadata.get("rates") or {}
    evidence = {}
    for name in names:
        for source, rates in (("audit", audited), ("eval", evaluated), ("cv", cv)):
            if name in rates:
                entry = rates[name]
                evidence[name] = {"tpr": float(entry["tpr"]), "fpr": float(entry["fpr"]),
                                  "positives": float(entry.get("positives") or 0),
                                  "negatives": float(entry.get("negatives") or 0),
                                  "reviewed": int(entry.get("reviewed") or (entry.get("positives") or 0)
                                                  + (entry.get("negatives") or 0)),
                                  "from": source}
                break
    return evidence
