"""Which language an article is written in, so that text the model cannot read is left unclassified.

py3langid (a maintained fork of langid.py, the detector trafilatura itself uses for its
language filter) gives an ISO 639-1 code from character n-grams. On top of it, a script
check: text whose letters are mostly not Latin (Cyrillic, Chinese, Arabic...) is never
reported as English, whatever the n-gram model says about a short sample.

py3langid walks a byte automaton over the sample one byte at a time in Python, which was
half the time of preparing an article (bench/profile_pipeline.py). Its automaton forgets
what came more than a few bytes before, so `_Identifier` walks every position's last few
bytes at once in numpy, and scores with the model's table widened once to float32: the
same scores, two to three times faster. It is used for the model files whose automaton was
checked to forget (WINDOWS); any other model file is read by py3langid's own walk.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
from py3langid.langid import MODEL_DIR, MODEL_FILE, RAW_FLOOR, LanguageIdentifier

UNKNOWN = "und"
SAMPLE_CHARS = 3000
_SCRIPTS = (("CYRILLIC", "ru"), ("CJK", "zh"), ("HIRAGANA", "ja"), ("KATAKANA", "ja"), ("HANGUL", "ko"),
            ("ARABIC", "ar"), ("HEBREW", "he"), ("GREEK", "el"), ("DEVANAGARI", "hi"), ("THAI", "th"),
            ("ARMENIAN", "hy"), ("GEORGIAN", "ka"))


# SHA-256 of a py3langid model file -> bytes after which its automaton's state no longer depends on where
# it started (tests/unit/test_language.py checks the installed model's entry, and compares the scores)
WINDOWS = {"f4f4a2c3465ca1f081541037f9cac23021d68151c2f709c55ae5eedfca522963": 6}  # py3langid 0.4.0


class _Identifier(LanguageIdentifier):
    """py3langid's identifier with its byte automaton walked in numpy (see the module docstring)."""

    __slots__ = ("window", "_nextmove", "_rows", "_outputs", "_table")

    def arm(self, window: int) -> "_Identifier":
        """Walk the automaton `window` bytes back from each position from now on."""
        self.window = window
        self._nextmove = np.asarray(self.tk_nextmove)
        self._rows = np.asarray(self._rowbase, dtype=np.int64)
        self._outputs = np.asarray(self.tk_output, dtype=np.int64)
        # float16 rows are widened on every product otherwise; widening is exact, so the scores are the same
        self._table = np.asarray(self.nb_ptc, dtype=np.float32)
        return self

    def _raw_score(self, text):
        visits = self.visits(text)
        if visits:
            return self._sparse_score(visits, self._table)
        return np.full(len(self.nb_classes), 0.0 if self._norm_probs else RAW_FLOOR, dtype=np.float32)

    def visits(self, text: bytes) -> Counter | None:
        """Feature -> count, in the order features first occur, as py3langid.langid.visit_counts gives them."""
        codes = np.frombuffer(text, dtype=np.uint8)
        states = np.zeros(len(codes), dtype=np.int64)
        for back in range(min(self.window, len(codes)) - 1, -1, -1):
            # position i reads byte i - back: after the last step it has read its last `window` bytes in order,
            # from the start state (positions nearer the start than that read from the first byte, as a walk does)
            states[back:] = self._nextmove[self._rows[states[back:]] + codes[:len(codes) - back]]
        features = self._outputs[states]
        features = features[features >= 0]
        return Counter(features.tolist()) if len(features) else None


_loading = threading.Lock()


def warm_up() -> None:
    """Load the identifier in a background thread (0.4 s, mostly LZMA decompression, which lets other threads
    run), so that it is ready when a run's first article is prepared."""
    threading.Thread(target=_identifier, name="rhetoric-language-warm-up", daemon=True).start()


def load_model() -> None:
    """Load the identifier now, in this thread, if it is not loaded yet (0.3-0.4 s, mostly LZMA decompression).

    Calling detect_language does not do it: text that looks English is answered without
    the model, which then loads at the first article that does not.
    """
    _identifier()


def _identifier() -> LanguageIdentifier:
    """The identifier, loaded once per process (a second caller waits for the first)."""
    with _loading:
        return _load_identifier()


@lru_cache(maxsize=1)
def _load_identifier() -> LanguageIdentifier:
    """The identifier: the numpy walk for a model file known to allow it, else py3langid's own."""
    path = MODEL_DIR / MODEL_FILE
    window = WINDOWS.get(_sha256(path))
    if window is None:
        return LanguageIdentifier.from_modelpath(path, norm_probs=False)
    return _Identifier.from_modelpath(path, norm_probs=False).arm(window)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def detect_language(text: str) -> str:
    """The ISO 639-1 code of the text's language ('en', 'ru', 'zh', ...), or 'und' when there is no text.

    The first 3,000 characters decide. When most letters are of a non-Latin script, the
    answer is never 'en': the n-gram model's guess is kept if it names another language,
    else the script's main language stands in. Mostly Latin letters with many common
    English words are English whatever the n-gram model says, so for those (most of an
    English corpus) the model is not asked: the same answers, in a quarter of the time
    (0.09 s against 0.39 s for 2,500 synthetic articles).
    """
    sample = text[:SAMPLE_CHARS]
    ascii_only = sample.isascii()
    if not (_ASCII_LETTER.search(sample) if ascii_only else any(map(str.isalpha, sample))):
        return UNKNOWN
    script = None if ascii_only else _main_script(sample)
    if script is None and _looks_english(sample):
        return "en"
    guess, _ = _identifier().classify(sample)
    guess = _MERGED.get(guess, guess)
    if script is not None and guess == "en":
        return script
    return guess


_ASCII_LETTER = re.compile("[A-Za-z]")
_NOT_LATIN = re.compile("[^\x00-\u024f]+")  # every character from U+0250 (IPA, Greek, Cyrillic...) on


def _main_script(sample: str) -> str | None:
    """The language standing for the sample's dominant non-Latin script, or None when most of its letters
    are Latin (below U+0250)."""
    latin = sum(map(str.isalpha, _NOT_LATIN.sub("", sample)))
    if latin * 2 >= sum(map(str.isalpha, sample)):
        return None
    counts: dict[str, int] = {}
    for ch in sample:
        if ch >= "\u0250" and ch.isalpha():
            name = unicodedata.name(ch, "")
            for prefix, code in _SCRIPTS:
                if name.startswith(prefix):
                    counts[code] = counts.get(code, 0) + 1
                    break
    return max(counts, key=counts.get) if counts else UNKNOWN


_MERGED = {"wuu": "zh", "yue": "zh"}  # langid's Chinese varieties are reported as Chinese
_COMMON_ENGLISH = frozenset("the of and to in is that for on with as was by it are be this from at said".split())


def _looks_english(sample: str) -> bool:
    """A guard for short Latin-script headlines the n-gram model misreads: many common English words."""
    words = [w.strip(".,;:!?\"'()").lower() for w in sample.split()]
    if len(words) < 6:
        return False
    return sum(w in _COMMON_ENGLISH for w in words) / len(words) >= 0.2
