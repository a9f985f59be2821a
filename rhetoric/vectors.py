"""Sentence features without scikit-learn: tokenising, keyword and topic flags, and FeatureSpace.

FeatureSpace turns sentences into the TF-IDF rows of a fitted vocabulary. It is what
rhetoric.features.NewsFeatures (the scikit-learn transformer that learns the vocabulary)
transforms with, and what rhetoric.scorer scores with, so that scoring a champion
needs neither scikit-learn nor unpickling.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import sparse

_DIGITS = re.compile(r"\d")


def normalise_text(text: str) -> str:
    """Lower-case and map every digit to 0, so dates and figures do not sway the model."""
    return _DIGITS.sub("0", text.lower())


TOKEN = re.compile(r"\w+")
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
            tokens = tuple(TOKEN.findall(normalise_text(keyword)))
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


class FeatureSpace:
    """A fitted vocabulary: sentences in, sublinear TF-IDF rows out (word, character and flag blocks).

    Attributes set by NewsFeatures.fit or rhetoric.scorer: char_ngrams, keywords, words_,
    chars_, keyword_index_, topic_phrases_, bigram_keys_, bigram_columns_ and idf_.
    """

    def transform(self, texts):
        texts = list(texts)
        counts = self._counts(*tokenise(texts), len(texts))
        self._weigh(counts)
        return counts

    def _width(self) -> int:
        return len(self.words_) + len(self.chars_) + len(self.keywords) + self._topic_columns()

    def _topic_columns(self) -> int:
        """One flag per frame's topic plus "any topic", when topics are given (0 otherwise)."""
        return len(self.topic_phrases_) + 1 if getattr(self, "topic_phrases_", None) else 0

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

    def _counts(self, ids: np.ndarray, doc: np.ndarray, words: list[str], n: int) -> sparse.csr_matrix:
        """Raw counts: (sentence x item) @ (item x column); items are the batch's words, the
        vocabulary's bigrams and the keyword flags."""
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
        topic_item = keyword_item + len(self.keywords)
        if self._topic_columns():
            flagged, frame = np.nonzero(topic_flags(ids, doc, words, n, self.topic_phrases_))
            rows.append(flagged)
            items.append(topic_item + frame)
        n_items = topic_item + self._topic_columns()
        row_arr, item_arr = np.concatenate(rows), np.concatenate(items)
        doc_items = sparse.csr_matrix((np.ones(len(row_arr)), (row_arr, item_arr)), shape=(n, n_items))
        lengths = np.concatenate([[len(r) for r in word_rows], np.ones(n_items - bigram_item, dtype=np.int64)])
        flat = np.concatenate([
            np.fromiter((c for r in word_rows for c in r), dtype=np.int64, count=int(sum(len(r) for r in word_rows))),
            self.bigram_columns_,
            len(self.words_) + len(self.chars_) + np.arange(len(self.keywords) + self._topic_columns(), dtype=np.int64)])
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


def topic_phrases(topics: Sequence[Sequence[str]]) -> list[list[tuple[str, ...]]]:
    """Each frame's topic words as token tuples, normalised like the text."""
    return [[p for p in (tuple(TOKEN.findall(normalise_text(w))) for w in words) if p] for words in topics]


def topic_flags(ids: np.ndarray, doc: np.ndarray, words: list[str], n: int,
                phrases: list[list[tuple[str, ...]]]) -> np.ndarray:
    """(n, frames + 1) booleans: the sentence mentions the frame's topic words; the last column, any frame's.

    A topic matches like rhetoric.corpora.topic_pattern: its words in a row, the last one as the
    start of a word ("sanction" matches "sanctions"), case ignored. Matching runs on the batch's
    distinct words and its token stream, not a regex per sentence.
    """
    index = {w: i for i, w in enumerate(words)}
    flags = np.zeros((n, len(phrases) + 1), dtype=bool)
    for j, group in enumerate(phrases):
        prefixes = tuple(p[0] for p in group if len(p) == 1)
        if prefixes:
            matching = np.fromiter((w.startswith(prefixes) for w in words), bool, len(words))
            flags[doc[matching[ids]], j] = True
        for phrase in (p for p in group if len(p) > 1):
            flags[doc[_phrase_hits(ids, doc, words, index, phrase)], j] = True
    flags[:, -1] = flags[:, :-1].any(axis=1)
    return flags


def _phrase_hits(ids: np.ndarray, doc: np.ndarray, words: list[str], index: dict[str, int],
                 phrase: tuple[str, ...]) -> np.ndarray:
    """Token positions where a phrase of two or more words starts (the last word as a prefix), within one sentence."""
    first = index.get(phrase[0])
    last = len(phrase) - 1
    if first is None or len(ids) <= last:
        return np.zeros(0, dtype=np.int64)
    positions = np.flatnonzero(ids[: len(ids) - last] == first)
    for k, token in enumerate(phrase[1:-1], start=1):
        wanted = index.get(token)
        positions = positions[ids[positions + k] == wanted] if wanted is not None else positions[:0]
    positions = positions[doc[positions] == doc[positions + last]]
    tail = phrase[-1]
    return np.array([p for p in positions.tolist() if words[ids[p + last]].startswith(tail)], dtype=np.int64)
