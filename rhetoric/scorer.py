"""A trained model as plain arrays: what scoring needs, loaded without scikit-learn or unpickling.

Scoring a champion from its joblib file imports scikit-learn (0.6 s, most of it SciPy's
statistics) and unpickles the pipeline (0.2 s): most of a small hand run's classify step.
Every model whose features are NewsFeatures and whose classifier is one linear model per
frame is also saved as scorer.npz: the vocabulary, the IDF weights, the (features x frames)
weight matrix, the intercepts, the Platt calibration and the thresholds. LinearScorer
computes exactly what FrameModel computes (the same FeatureSpace.transform, the same
product, the same calibration), and numpy reads the file with allow_pickle=False, so
loading it runs no code. Models with sentence embeddings have no scorer.npz and score
through their joblib file.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from rhetoric.errors import ModelError, exception_line
from rhetoric.vectors import FeatureSpace, keyword_index, topic_phrases

if TYPE_CHECKING:
    from rhetoric.model import FrameModel

FORMAT = 1
PREDICT_CHUNK = 4000  # sentences per feature matrix: small enough to stay in cache
_ARRAYS = ("words", "chars", "settings", "bigram_keys", "bigram_columns", "idf", "weights", "intercepts",
           "calibration", "thresholds")


def calibrate(decision: np.ndarray, calibration: np.ndarray) -> np.ndarray:
    """Apply per-frame Platt scaling: sigmoid(a * score + b)."""
    return 1.0 / (1.0 + np.exp(-(decision * calibration[:, 0] + calibration[:, 1])))


class Scoring:
    """Calibrated scores and labels from per-frame decision scores: what FrameModel and LinearScorer share.

    Subclasses set frames, calibration ((k, 2) Platt parameters) and thresholds, and define decision.
    """

    frames: tuple[str, ...]
    calibration: np.ndarray
    thresholds: np.ndarray

    def decision(self, texts: list[str]) -> np.ndarray:
        """Uncalibrated decision scores, shape (n, k)."""
        raise NotImplementedError

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated probabilities, shape (n, k); computed in chunks, which keeps the matrices in cache."""
        texts = list(texts)
        chunks = [self.decision(texts[i:i + PREDICT_CHUNK]) for i in range(0, len(texts), PREDICT_CHUNK)]
        if not chunks:
            return np.zeros((0, len(self.frames)))
        return calibrate(np.vstack(chunks), self.calibration)

    def predict(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(labels bool (n, k), calibrated scores (n, k)), thresholds applied."""
        scores = self.scores(texts)
        return scores >= self.thresholds, scores


class LinearScorer(Scoring):
    """Calibrated frame scores from a FeatureSpace and one linear model per frame."""

    def __init__(self, space: FeatureSpace, weights: np.ndarray, intercepts: np.ndarray, calibration: np.ndarray,
                 thresholds: np.ndarray, frames: Sequence[str]):
        self.space, self.weights, self.intercepts = space, weights, intercepts
        self.calibration, self.thresholds, self.frames = calibration, thresholds, tuple(frames)

    def decision(self, texts: list[str]) -> np.ndarray:
        """The features' product with the (features x frames) weights, plus the intercepts."""
        return np.asarray(self.space.transform(texts) @ self.weights) + self.intercepts

    @classmethod
    def from_model(cls, model: FrameModel) -> LinearScorer | None:
        """The scorer of a trained FrameModel, or None when its features are not a FeatureSpace (embeddings)."""
        from rhetoric.model import linear_weights

        space = model.pipeline.named_steps["features"]
        if not isinstance(space, FeatureSpace):
            return None
        weights, intercepts = linear_weights(model.pipeline.named_steps["classifier"])
        return cls(space, weights, intercepts, model.calibration, model.thresholds, model.frames)

    def save(self, path: Path) -> None:
        """Write the scorer as a deflated .npz of plain arrays, byte for byte the same for the same model.

        np.savez stamps each member with the time of writing; here every member carries one fixed
        date, so that retraining on the same labels gives the same file and the same SHA-256.
        """
        s = self.space
        settings = {"format": FORMAT, "frames": list(self.frames), "char_ngrams": list(s.char_ngrams or ()),
                    "keywords": [list(k) for k in s.keywords], "topics": [list(t) for t in getattr(s, "topics", ())]}
        arrays = {"words": _joined(s.words_), "chars": _joined(s.chars_), "settings": _utf8(settings),
                  "bigram_keys": s.bigram_keys_, "bigram_columns": s.bigram_columns_, "idf": s.idf_,
                  "weights": self.weights, "intercepts": self.intercepts, "calibration": self.calibration,
                  "thresholds": self.thresholds}
        with zipfile.ZipFile(path, "w") as archive:
            for name in _ARRAYS:
                member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                member.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(member, "w") as handle:
                    np.lib.format.write_array(handle, np.asarray(arrays[name]), allow_pickle=False)

    @classmethod
    def load(cls, path: Path, frames: Sequence[str], restore: str) -> LinearScorer:
        """Read a scorer.npz; anything that is not one, for these frames, is refused in one line."""
        try:
            with np.load(path, allow_pickle=False) as stored:
                missing = [name for name in _ARRAYS if name not in stored.files]
                if missing:
                    raise ValueError(f"no {', '.join(missing)} array")
                arrays = {name: stored[name] for name in _ARRAYS}
            settings = json.loads(arrays["settings"].tobytes().decode("utf-8"))
            if settings.get("format") != FORMAT:
                raise ModelError(f"{path}: scorer format {settings.get('format')!r}, this rhetoric reads format "
                                 f"{FORMAT}; upgrade rhetoric or {restore}")
            space = _space(arrays, settings)
        except ModelError:
            raise
        except Exception as exc:  # not a zip, truncated, an object array, bad JSON: all one answer
            found = exception_line(exc)
            raise ModelError(f"{path}: not a readable scorer file ({found}); {restore}") from None
        if tuple(settings.get("frames", ())) != tuple(frames):
            raise ModelError(f"{path}: the scorer's frames {', '.join(settings.get('frames', ()))} differ from "
                             f"metadata.json's {', '.join(frames) or '(none)'}; {restore}")
        k = len(frames)
        if arrays["weights"].shape != (len(arrays["idf"]), k) or arrays["calibration"].shape != (k, 2):
            raise ModelError(f"{path}: its weights are {arrays['weights'].shape} for {len(arrays['idf'])} features "
                             f"and {k} frames; {restore}")
        return cls(space, arrays["weights"], arrays["intercepts"], arrays["calibration"], arrays["thresholds"],
                   frames)


def _space(arrays: dict[str, np.ndarray], settings: dict) -> FeatureSpace:
    """The FeatureSpace the arrays describe, rebuilt as NewsFeatures.fit left it."""
    space = FeatureSpace()
    words, chars = _split(arrays["words"]), _split(arrays["chars"])
    space.words_ = dict(zip(words, range(len(words))))
    space.chars_ = dict(zip(chars, range(len(chars))))
    space.char_ngrams = tuple(settings["char_ngrams"]) or None
    space.keywords = tuple(tuple(k) for k in settings["keywords"])
    space.topics = tuple(tuple(t) for t in settings["topics"])
    space.keyword_index_ = keyword_index(space.keywords)
    space.topic_phrases_ = topic_phrases(space.topics)
    space.bigram_keys_, space.bigram_columns_ = arrays["bigram_keys"], arrays["bigram_columns"]
    space.idf_ = arrays["idf"]
    if len(space.idf_) != space._width():
        raise ValueError(f"{len(space.idf_)} IDF weights for {space._width()} features")
    return space


def _joined(vocabulary: dict[str, int]) -> np.ndarray:
    """A vocabulary's terms in column order, newline-joined, as UTF-8 bytes (terms hold no newline)."""
    terms = sorted(vocabulary, key=vocabulary.__getitem__)
    if [vocabulary[t] for t in terms] != list(range(len(terms))) or any("\n" in t for t in terms):
        raise ValueError("a vocabulary is not numbered 0..n-1 or a term holds a newline")
    return _utf8("\n".join(terms))


def _split(stored: np.ndarray) -> list[str]:
    text = stored.tobytes().decode("utf-8")
    return text.split("\n") if text else []


def _utf8(value: object) -> np.ndarray:
    text = value if isinstance(value, str) else json.dumps(value)
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
