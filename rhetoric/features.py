"""Sentence features in one pass: word n-gram and character n-gram TF-IDF plus keyword flags.

scikit-learn's character n-gram vectoriser manages about 6,000 news sentences a second
here; NewsFeatures builds the same TF-IDF columns (a test checks it against
TfidfVectorizer) from one tokenisation, fast enough for the classify budget. The
transform itself lives in rhetoric.vectors, which needs no scikit-learn.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from rhetoric.vectors import TOKEN, FeatureSpace, keyword_index, normalise_text, tokenise, topic_phrases


class NewsFeatures(FeatureSpace, BaseEstimator, TransformerMixin):
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
                 keywords: tuple[tuple[str, ...], ...] = (), min_df: int = 2, keyword_weight: float = 1.0,
                 topics: tuple[tuple[str, ...], ...] = ()):
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.keywords = keywords
        self.min_df = min_df
        self.keyword_weight = keyword_weight
        self.topics = topics

    def fit(self, texts, y=None):
        if self.word_ngrams not in (1, 2):
            raise ValueError(f"word_ngrams must be 1 or 2, found {self.word_ngrams!r}")
        tokens = [TOKEN.findall(normalise_text(t)) for t in texts]
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
        self.topic_phrases_ = topic_phrases(self.topics)
        size = len(self.words_)
        pairs = sorted((self.words_[a] * size + self.words_[b], column)
                       for term, column in self.words_.items() if " " in term for a, b in [term.split(" ")])
        self.bigram_keys_ = np.array([k for k, _ in pairs], dtype=np.int64)
        self.bigram_columns_ = np.array([c for _, c in pairs], dtype=np.int64)
        self.idf_ = np.ones(self._width())
        trained = self._counts(*tokenise(texts), len(texts))
        df = np.bincount(trained.indices, minlength=self._width())
        self.idf_ = np.log((1 + len(texts)) / (1 + df)) + 1
        self.idf_[len(self.words_) + len(self.chars_):] = self.keyword_weight
        self.idf_[len(self.words_) + len(self.chars_) + len(self.keywords):] = 1.0  # topic flags: plain 0/1
        return self
