"""The audit loop: a stratified draw of classified sentences, and the champion's error measured on it."""

import numpy as np
import pandas as pd
import pytest

from rhetoric.audit import (AUDIT_COLUMNS, EVAL_RATES_CACHE, UNFLAGGED, audit_metrics, audit_rates, correction_evidence,
                            draw_audit, eval_rates, report_table)
from rhetoric.labels import Frame

FRAMES = ("alpha", "beta")


def classified(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    alpha = rng.random(n) < 0.05
    beta = rng.random(n) < 0.02
    return pd.DataFrame({"sentence_id": np.arange(1, n + 1), "text": [f"sentence number {i}" for i in range(n)],
                         "source": [f"a{i // 10}.txt" for i in range(n)], "outlet": "Wire",
                         "published": pd.Timestamp("2024-01-01").date(), "alpha": alpha.astype(int),
                         "beta": beta.astype(int)})


def test_draw_is_stratified_seeded_and_weighted_to_the_whole_store():
    table = classified()
    audit = draw_audit(table, FRAMES, "v1", n=100, seed=3)
    assert list(audit.columns) == AUDIT_COLUMNS
    assert len(audit) == 100 and set(audit["origin"]) == {""} and set(audit["model_version"]) == {"v1"}
    first = np.where(table["alpha"] == 1, "alpha", np.where(table["beta"] == 1, "beta", UNFLAGGED))
    sizes = pd.Series(first).value_counts()
    drawn = audit.merge(table[["sentence_id"]].assign(stratum=first), on="sentence_id")
    # every stratum is represented and its weights add up to its size
    assert drawn.groupby("stratum")["weight"].sum().round().to_dict() == sizes.to_dict()
    assert audit["weight"].sum() == pytest.approx(len(table))
    assert (drawn["stratum"] == UNFLAGGED).sum() >= 40  # its 40%, plus what the small beta stratum left
    assert list(draw_audit(table, FRAMES, "v1", n=100, seed=3)["sentence_id"]) == list(audit["sentence_id"])


class KeywordModel:
    """Flags alpha when the text holds 'A', beta when it holds 'B'."""

    version = "v2"
    frames = FRAMES
    metadata = {"rates": {"alpha": {"tpr": 0.9, "fpr": 0.1, "positives": 50, "negatives": 50},
                          "beta": {"tpr": 0.8, "fpr": 0.2, "positives": 50, "negatives": 50}}}

    def predict(self, texts):
        labels = np.array([["A" in t, "B" in t] for t in texts])
        return labels, labels.astype(float)


def reviewed_audit():
    # 20 flagged alpha (weight 2): 15 right; 80 unflagged (weight 50): 4 carry alpha
    rows = [{"text": f"A flagged {i}", "frames": "alpha" if i < 15 else "", "weight": 2.0} for i in range(20)]
    rows += [{"text": f"plain {i}", "frames": "alpha" if i < 4 else "", "weight": 50.0} for i in range(80)]
    audit = pd.DataFrame(rows).assign(origin="audit", batch="x", sentence_id=range(1, 101))
    audit["frames"] = audit["frames"].map(lambda f: (f,) if f else ())
    stored = audit[["sentence_id", "text"]]
    return audit, stored


def test_metrics_are_weighted_with_intervals_and_only_count_stored_reviewed_rows():
    audit, stored = reviewed_audit()
    metrics = audit_metrics(audit, stored, KeywordModel(), [Frame(f, f, f, ()) for f in FRAMES], rounds=300)
    alpha = metrics["per_frame"]["alpha"]
    assert metrics["n"] == 100
    assert alpha["precision"] == pytest.approx(15 / 20)
    assert alpha["tpr"] == pytest.approx(30 / (30 + 200))  # weighted: 15 x 2 found, 4 x 50 missed
    assert alpha["fpr"] == pytest.approx(10 / (10 + 76 * 50))
    assert alpha["tpr_low"] < alpha["tpr"] < alpha["tpr_high"]
    assert alpha["positives"] == 19 and alpha["negatives"] == 81
    # a row whose sentence is no longer stored, or not yet reviewed, does not count
    partial = audit_metrics(audit.assign(origin=["audit"] * 90 + [""] * 10), stored.iloc[:50],
                            KeywordModel(), [Frame(f, f, f, ()) for f in FRAMES], rounds=50)
    assert partial["n"] == 50
    assert "alpha" in report_table(metrics) and "[" in report_table(metrics)


def test_audit_rates_need_enough_positives_and_negatives():
    audit, stored = reviewed_audit()
    metrics = audit_metrics(audit, stored, KeywordModel(), [Frame(f, f, f, ()) for f in FRAMES], rounds=50)
    rates = audit_rates(metrics)
    assert set(rates) == {"alpha"}  # beta has no positive in the audit
    assert rates["alpha"]["positives"] < 19  # the effective count, smaller than the raw one under unequal weights


def test_correction_evidence_prefers_the_audit_then_eval_then_cv(tmp_path):
    audit, stored = reviewed_audit()
    labels = tmp_path / "labels"
    (labels / "audit").mkdir(parents=True)
    audit.assign(frames=audit["frames"].map(";".join)).to_csv(labels / "audit" / "review.csv", index=False)

    class Store:
        def texts_by_id(self, ids):
            return stored

    frames = [Frame(f, f, f, ()) for f in FRAMES]
    evidence = correction_evidence(KeywordModel(), labels, frames, Store())
    assert evidence["alpha"]["from"] == "audit" and evidence["beta"]["from"] == "cv"
    assert evidence["alpha"]["reviewed"] == 100
    assert {e["from"] for e in correction_evidence(KeywordModel(), labels, frames, None).values()} == {"cv"}


class CountingModel(KeywordModel):
    """A registry champion's shape: a version and a recorded SHA-256; counts the sentences it scores."""

    def __init__(self, version="2026.01.01-aaaaaaaa", sha="ab" * 32):
        self.version, self.scored = version, 0
        self.metadata = {**KeywordModel.metadata, "sha256": sha}

    def predict(self, texts):
        self.scored += len(texts)
        return super().predict(texts)


def eval_labels(tmp_path):
    labels = tmp_path / "labels"
    (labels / "eval").mkdir(parents=True)
    rows = [f"A case {i},alpha,corpus,d{i},2.0" for i in range(6)]
    rows += [f"plain {i},,corpus,e{i},1.0" for i in range(6)]
    (labels / "eval" / "real.csv").write_text("text,frames,origin,batch,weight\n" + "\n".join(rows) + "\n")
    return labels


def test_eval_rates_are_measured_once_per_champion_and_evaluation_files(tmp_path):
    labels, state = eval_labels(tmp_path), tmp_path / ".rhetoric"
    frames = [Frame(f, f, f, ()) for f in FRAMES]
    model = CountingModel()
    first = eval_rates(model, labels, frames, cache_dir=state)
    assert model.scored == 12 and first["alpha"]["tpr"] == 1.0
    assert (state / EVAL_RATES_CACHE).is_file()
    assert eval_rates(model, labels, frames, cache_dir=state) == first
    assert model.scored == 12  # the second call read the cache
    assert eval_rates(model, labels, frames) == first and model.scored == 24  # no cache folder: measured
    other = CountingModel(version="2026.01.02-bbbbbbbb")
    eval_rates(other, labels, frames, cache_dir=state)
    assert other.scored == 12  # another champion is measured
    (labels / "eval" / "real.csv").write_text((labels / "eval" / "real.csv").read_text().replace(",alpha,", ",,", 1))
    changed = eval_rates(other, labels, frames, cache_dir=state)
    assert other.scored == 24 and changed["alpha"]["fpr"] > first["alpha"]["fpr"]  # an edited file: measured again


def test_eval_rates_without_a_recorded_hash_or_with_a_broken_cache_are_measured(tmp_path):
    labels, state = eval_labels(tmp_path), tmp_path / ".rhetoric"
    frames = [Frame(f, f, f, ()) for f in FRAMES]
    unversioned = CountingModel(sha="")
    eval_rates(unversioned, labels, frames, cache_dir=state)
    eval_rates(unversioned, labels, frames, cache_dir=state)
    assert unversioned.scored == 24 and not (state / EVAL_RATES_CACHE).exists()
    state.mkdir(exist_ok=True)
    (state / EVAL_RATES_CACHE).write_text("{not json")
    model = CountingModel()
    assert eval_rates(model, labels, frames, cache_dir=state)["alpha"]["tpr"] == 1.0 and model.scored == 12
    assert eval_rates(model, labels, frames, cache_dir=state) and model.scored == 12  # rewritten, then read
