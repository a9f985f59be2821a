"""The real labels/ files: they load cleanly, every frame is known and represented, origins are valid."""

from pathlib import Path

import pytest

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
