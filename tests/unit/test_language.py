"""Language detection: a table of languages and scripts, and the numpy walk of py3langid's automaton
scoring exactly as py3langid's own walk does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

from rhetoric import language
from rhetoric.language import WINDOWS, _identifier, _main_script, _sha256, detect_language

SEEDS = Path(__file__).resolve().parents[2] / "seeds"

CASES = [
    ("Foreign Minister Wang Yi said on Tuesday that the world is moving towards a multipolar order.", "en"),
    ("Министр иностранных дел России Сергей Лавров заявил, что санкции Запада незаконны.", "ru"),
    ("外交部发言人毛宁表示，中方坚决反对单边制裁，支持通过对话谈判解决乌克兰危机。", "zh"),
    ("Le ministre des Affaires étrangères a déclaré mardi que les sanctions étaient illégales.", "fr"),
    ("Der Außenminister sagte am Dienstag, die Sanktionen seien rechtswidrig und kontraproduktiv.", "de"),
    # mostly Cyrillic letters: never English, whatever the n-grams say
    ("The ministers met in Kazan. Россия и Китай подписали соглашение о сотрудничестве в области энергетики.",
     "ru"),
    # a Cyrillic quote inside English text: the Latin letters are the majority
    ("Lavrov: \"Мы готовы к переговорам\", said the minister in Moscow on Monday.", "en"),
    ("Café, naïve résumé in São Paulo: the deal was signed on Friday by both ministers.", "en"),
    ("", "und"),
    ("2024 — 15:30", "und"),
    ("12 345 678", "und"),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_detect_language(text, expected):
    assert detect_language(text) == expected


def _letters_main_script(sample: str) -> str | None:
    """_main_script as it was written first, over a list of the sample's letters."""
    letters = [ch for ch in sample if ch.isalpha()]
    latin = sum(1 for ch in letters if ch < "\u0250")
    if latin * 2 >= len(letters):
        return None
    counts: dict[str, int] = {}
    for ch in letters:
        if ch >= "\u0250":
            name = __import__("unicodedata").name(ch, "")
            for prefix, code in language._SCRIPTS:
                if name.startswith(prefix):
                    counts[code] = counts.get(code, 0) + 1
                    break
    return max(counts, key=counts.get) if counts else "und"


@pytest.mark.parametrize("sample", [text for text, _ in CASES] + [
    "Ἀθῆναι καὶ Σπάρτη", "ǅemal Bijedić ɐ ɑ ʃ", "ㄱㄴㄷ 한국어 텍스트", "\ud800\ud801 abc", "ÀÉÎ ØÜ ß ÿ", "ΑΒΓ abc",
])
def test_main_script_counts_letters_as_before(sample):
    assert _main_script(sample) == _letters_main_script(sample)


def test_the_installed_model_takes_the_numpy_walk():
    path = MODEL_DIR / MODEL_FILE
    assert _sha256(path) in WINDOWS, (
        f"{path} is not a model rhetoric.language.WINDOWS knows, so detection falls back to py3langid's slow walk; "
        "run this file's test_window_forgets_the_start on it and add its SHA-256 and window")
    assert isinstance(_identifier(), language._Identifier)


def forgetting_depth(identifier: LanguageIdentifier, limit: int = 16) -> int | None:
    """Bytes after which the automaton is in the same state from any start state (None: not within limit).

    Follows every pair (state s, start state) over every byte until the pair's two states meet.
    """
    nextmove = np.asarray(identifier.tk_nextmove, dtype=np.int64)
    rows = np.asarray(identifier._rowbase, dtype=np.int64)
    n = len(rows)
    byte = np.arange(256)
    pairs = np.arange(1, n, dtype=np.int64) * n  # (s, 0) packed as s * n + 0
    for depth in range(1, limit + 1):
        reached = []
        for start in range(0, len(pairs), 8192):
            chunk = pairs[start:start + 8192]
            a = nextmove[(rows[chunk // n][:, None] + byte).ravel()]
            b = nextmove[(rows[chunk % n][:, None] + byte).ravel()]
            apart = a != b
            reached.append(np.unique(a[apart] * n + b[apart]))
        pairs = np.unique(np.concatenate(reached))
        if not len(pairs):
            return depth
    return None


def test_window_forgets_the_start():
    identifier = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=False)
    depth = forgetting_depth(identifier)
    assert depth is not None
    assert WINDOWS[_sha256(MODEL_DIR / MODEL_FILE)] >= depth


def _samples() -> list[str]:
    texts = [text for text, _ in CASES]
    texts += [path.read_text(encoding="utf-8")[:language.SAMPLE_CHARS] for path in sorted(SEEDS.glob("*.txt"))]
    texts += ["a", "ab", "abcde", "ABCDEFGH UPPER CASE HEADLINE", "x" * 5000, "日本語のテキストです", "ok",
              "\U0001F600 emoji \U0001F600", "tab\tand\nnew line", "ВСТРЕЧА В МОСКВЕ"]
    return texts


def test_numpy_walk_scores_exactly_as_py3langid():
    reference = LanguageIdentifier.from_modelpath(MODEL_DIR / MODEL_FILE, norm_probs=False)
    fast = _identifier()
    assert isinstance(fast, language._Identifier)
    samples = _samples()
    assert len(samples) > 25
    for sample in samples:
        expected, found = reference._decide(sample), fast._decide(sample)
        assert np.array_equal(found, expected), sample[:60]
        assert fast.classify(sample) == reference.classify(sample)


def test_numpy_walk_counts_features_in_walk_order():
    from py3langid.langid import visit_counts

    fast = _identifier()
    for sample in _samples():
        data = fast._encode(sample)
        expected = visit_counts(fast.tk_nextmove, fast._rowbase, fast.tk_output, data)
        found = fast.visits(data)
        assert (found is None) == (expected is None)
        if expected is not None:
            assert list(found.items()) == list(expected.items())  # same order: the scores sum in it


def _asked_first(text: str) -> str:
    """detect_language as it was before it skipped the n-gram model for English-looking text: the model asked first."""
    sample = text[:language.SAMPLE_CHARS]
    ascii_only = sample.isascii()
    if not (language._ASCII_LETTER.search(sample) if ascii_only else any(map(str.isalpha, sample))):
        return language.UNKNOWN
    guess, _ = _identifier().classify(sample)
    guess = language._MERGED.get(guess, guess)
    script = None if ascii_only else _main_script(sample)
    if script is not None and guess == "en":
        return script
    if script is None and guess != "en" and language._looks_english(sample):
        return "en"
    return guess


TRICKY = [
    "Le président a dit que the talks were over and that the sanctions of the West are in force.",  # half English
    "In the city of Astana, el ministro dijo que la guerra es ilegal y que the sanctions are unfair.",
    "Die Minister trafen sich in Berlin und sprachen über die Lage in der Region und die Zukunft.",
    "The Кремль said it was ready for talks with the West on the security of the region and its people.",
    "said said said said said said the the the of of of",  # English words, nothing else: English either way
    "Ministr zahraničí řekl, že sankce jsou nezákonné a že jednání bude pokračovat v příštím měsíci.",
    # common English words among mostly Cyrillic letters: not English
    "the of and to in Россия Китай Москва Пекин соглашение сотрудничество энергетика",
]


def test_text_that_looks_english_is_english_without_asking_the_model_as_before(monkeypatch):
    texts = [text for text, _ in CASES] + TRICKY + [p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))]
    expected = [_asked_first(text) for text in texts]
    assert [detect_language(text) for text in texts] == expected  # the same answers
    assert "en" in expected and len(set(expected)) >= 5

    def not_asked():
        raise AssertionError("the n-gram model was asked")

    monkeypatch.setattr(language, "_identifier", not_asked)
    english = [text for text in texts if language._looks_english(text[:language.SAMPLE_CHARS])
               and _main_script(text[:language.SAMPLE_CHARS]) is None]
    assert len(english) >= 5 and all(detect_language(text) == "en" for text in english)


def test_a_helper_warming_up_loads_the_model_though_english_text_does_not_need_it():
    import subprocess
    import sys

    check = ("from rhetoric import language, prepare\n"
             "language.detect_language('The minister said on Monday that the talks in Geneva were useful.')\n"
             "before = language._load_identifier.cache_info().currsize\n"
             "prepare.warm()\n"
             "print(before, language._load_identifier.cache_info().currsize)\n")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.split() == ["0", "1"]  # English text answered without the model; warm() loaded it
