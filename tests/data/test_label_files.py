"""The real labels/ files: they load cleanly, every frame is known and represented, origins are valid."""

from pathlib import Path

import pytest

from rhetoric.corpora import CORPORA
from rhetoric.labels import ORIGINS, check_disjoint, load_eval_labels, load_frames, load_labels, text_key

LABELS = Path(__file__).resolve().parents[2] / "labels"


@pytest.fixture(scope="module")
def frames():
    return load_frames(LABELS)


@pytest.fixture(scope="module")
def training(frames):
    return load_labels(LABELS, frames)


@pytest.fixture(scope="module")
def held_out(frames):
    return load_eval_labels(LABELS, frames)


def test_frames_file_defines_frames_with_keywords(frames):
    assert len(frames) >= 2
    assert all(f.keywords and f.description for f in frames)


def test_training_files_load_without_problems(training):
    # load_labels raises LabelError for unknown frames, empty text, malformed rows and conflicting labels
    assert len(training) > 0
    assert training["text"].str.strip().ne("").all()


def test_every_frame_has_examples_and_none_dominates(training, frames):
    for frame in frames:
        count = sum(frame.name in row for row in training["frames"])
        assert count >= 20, f"frame {frame.name} has only {count} training sentences"
    assert sum(len(row) == 0 for row in training["frames"]) >= 50, "too few sentences without a frame"


def test_origins_are_valid(training, held_out):
    assert set(training["origin"]) <= set(ORIGINS)
    assert set(held_out["origin"]) <= set(ORIGINS)


def test_no_text_labelled_two_ways_across_training_and_eval(training, held_out):
    both = {}
    for table in (training, held_out):
        for text, labelled in zip(table["text"], table["frames"]):
            both.setdefault(text_key(text), set()).add(labelled)
    assert [k for k, v in both.items() if len(v) > 1] == []


def test_eval_split_exists_and_never_overlaps_training(training, held_out):
    assert len(held_out) >= 50
    check_disjoint(training, held_out)


def test_batches_allow_grouped_cross_validation(training):
    assert training["batch"].nunique() >= 10


# --- real text: attribution, licences, the document-level split, the real evaluation split -----------------

ATTRIBUTION = ("source", "url", "licence")


def _real(table):
    return table[table["origin"].isin(["corpus", "reviewed", "audit"])]


def test_real_labels_carry_source_document_and_licence(training, held_out):
    for table in (_real(training), _real(held_out)):
        assert len(table) > 0
        for column in ATTRIBUTION:
            assert column in table, f"real labels need a {column!r} column"
            assert table[column].astype(str).str.strip().ne("").all(), f"empty {column!r} in {set(table['file'])}"
        assert set(table["source"]) <= set(CORPORA)
        expected = table["source"].map(lambda name: CORPORA[name].licence)
        assert (table["licence"] == expected).all(), "a row's licence differs from its corpus's licence"


def test_share_alike_labels_live_in_files_of_their_own(training, held_out):
    for table in (_real(training), _real(held_out)):
        share_alike = table["licence"].eq("CC BY-SA 4.0")
        assert share_alike.any()
        files_with = set(table.loc[share_alike, "file"])
        assert set(table.loc[~share_alike, "file"]).isdisjoint(files_with)
        assert all("wikipedia" in f for f in files_with)


def test_no_document_gives_both_an_evaluation_and_a_training_sentence(training, held_out):
    train_docs = set(_real(training)["url"])
    eval_docs = set(_real(held_out)["url"])
    assert train_docs and eval_docs
    assert train_docs.isdisjoint(eval_docs)


def test_real_evaluation_split_is_large_weighted_and_has_positives(held_out, frames):
    real = held_out[held_out["origin"] == "corpus"]
    assert len(real) >= 2000
    weights = real["weight"].astype(float)
    assert (weights >= 1.0).all()
    for frame in frames:
        assert sum(frame.name in row for row in real["frames"]) >= 60, f"fewer than 60 {frame.name} positives"


def test_real_evaluation_labels_come_from_two_passes(held_out):
    real = held_out[held_out["origin"] == "corpus"]
    agreed = real[real["pass_a"] == real["pass_b"]]
    assert len(agreed) / len(real) > 0.9
    # where the passes agreed the label is theirs; elsewhere it was settled to one of the two or another answer
    assert (agreed["frames"].map(";".join) == agreed["pass_a"].fillna("")).all()


def test_no_sentence_in_another_script_is_labelled(training, held_out):
    # the codebook: text in another language is not labelled (the product leaves it unclassified)
    for table in (training, held_out):
        letters = table["text"].map(lambda t: [c for c in t if c.isalpha()])
        latin_share = letters.map(lambda ls: sum(c < "\u0250" for c in ls) / max(len(ls), 1))
        assert list(table.loc[latin_share < 0.8, "text"]) == []
