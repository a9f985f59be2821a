"""Which language an article is written in, so that text the model cannot read is left unclassified.

py3langid (a maintained fork of langid.py, the detector trafilatura itself uses for its
language filter) gives an ISO 639-1 code from character n-grams in a few tens of
microseconds. On top of it, a script check: text whose letters are mostly not Latin
(Cyrillic, Chinese, Arabic...) is never reported as English, whatever the n-gram model
says about a short sample.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

UNKNOWN = "und"
SAMPLE_CHARS = 3000
_SCRIPTS = (("CYRILLIC", "ru"), ("CJK", "zh"), ("HIRAGANA", "ja"), ("KATAKANA", "ja"), ("HANGUL", "ko"),
            ("ARABIC", "ar"), ("HEBREW", "he"), ("GREEK", "el"), ("DEVANAGARI", "hi"), ("THAI", "th"),
            ("ARMENIAN", "hy"), ("GEORGIAN", "ka"))


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=False)


def detect_language(text: str) -> str:
    """The ISO 639-1 code of the text's language ('en', 'ru', 'zh', ...), or 'und' when there is no text.

    The first 3,000 characters decide. When most letters are of a non-Latin script, the
    answer is never 'en': the n-gram model's guess is kept if it names another language,
    else the script's main language stands in.
    """
    sample = text[:SAMPLE_CHARS]
    letters = [ch for ch in sample if ch.isalpha()]
    if not letters:
        return UNKNOWN
    guess, _ = _identifier().classify(sample)
    guess = _MERGED.get(guess, guess)
    script = _main_script(letters)
    if script is not None and guess == "en":
        return script
    if script is None and guess not in ("en",) and _looks_english(sample):
        return "en"
    return guess


def _main_script(letters: list[str]) -> str | None:
    """The language standing for the dominant non-Latin script, or None when Latin letters are the majority."""
    latin = sum(1 for ch in letters if ch < "\u0250")
    if latin * 2 >= len(letters):
        return None
    counts: dict[str, int] = {}
    for ch in letters:
        if ch >= "\u0250":
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
