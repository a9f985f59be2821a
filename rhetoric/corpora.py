"""Real, openly licensed text (../shared/corpora): documents, their sentences, the eval/train split, samplers.

The raw corpora are read in place and never copied into the project. Every
sentence keeps its attribution: the corpus it came from, the document's URL or
id, and the licence of the text. A document belongs to the evaluation pool or to
the training pool by a salted hash of its id, so that no document gives both an
evaluation and a training sentence, whatever is sampled later.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from rhetoric.errors import InputError
from rhetoric.text import clean_lines, split_sentences

EVAL_SALT = "rhetoric-eval-2026-11"
EVAL_SHARE = 0.2
MIN_WORDS = 4
MAX_CHARS = 600


@dataclass(frozen=True)
class Corpus:
    """One corpus file of ../shared/corpora and the terms its text comes under."""

    name: str
    file: str
    licence: str
    attribution: str
    outlet: str


CORPORA = {
    c.name: c
    for c in [
        Corpus("kremlin", "kremlin_en.jsonl.gz", "CC BY 4.0", "President of Russia, en.kremlin.ru, CC BY 4.0",
               "en.kremlin.ru"),
        Corpus("ungdc", "ungdc_2014_2024.jsonl.gz", "CC0 1.0",
               "United Nations General Debate Corpus (Jankin, Baturo & Dasandi), doi:10.7910/DVN/0TJX8Y",
               "UN General Debate"),
        Corpus("statedept", "statedept_press_releases.jsonl.gz", "public domain (17 U.S.C. 105)",
               "US Department of State", "state.gov"),
        Corpus("wikipedia", "wikipedia_current_events.jsonl.gz", "CC BY-SA 4.0",
               "Wikipedia contributors, Portal:Current events", "Wikipedia current events"),
    ]
}


@dataclass(frozen=True)
class Document:
    """One document of a corpus: an item, a speech, a release, or one day of current-events items."""

    source: str
    doc_id: str
    url: str
    licence: str
    published: str
    title: str
    paragraphs: tuple[str, ...]


def default_corpora_dir(project: Path) -> Path:
    """Where the shared corpora sit beside a checkout: ../shared/corpora."""
    return Path(project).resolve().parent / "shared" / "corpora"


def read_documents(corpora_dir: Path, name: str) -> Iterator[Document]:
    """The documents of one corpus, in file order.

    Raises:
        InputError: the corpus name is unknown or its file is missing or not gzip JSONL.
    """
    if name not in CORPORA:
        raise InputError(f"unknown corpus {name!r}; expected one of {', '.join(CORPORA)}")
    corpus = CORPORA[name]
    path = Path(corpora_dir) / corpus.file
    if not path.is_file():
        raise InputError(f"{path}: corpus file not found; pass --corpora pointing at the shared corpora folder")
    if name == "wikipedia":
        yield from _wikipedia_days(path, corpus)
        return
    for line_number, record in _records(path):
        document = _document(name, corpus, record, line_number)
        if document is not None and document.paragraphs:
            yield document


def _records(path: Path) -> Iterator[tuple[int, dict]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        yield line_number, json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise InputError(f"{path}:{line_number}: not valid JSON ({exc.msg}); the corpus file is damaged") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read the corpus ({exc}); it must be gzip-compressed JSONL") from None


def _document(name: str, corpus: Corpus, record: dict, line_number: int) -> Document | None:
    if name == "kremlin":
        return Document(name, str(record.get("id", line_number)), record.get("url", ""), corpus.licence,
                        record.get("date", ""), record.get("title", "").strip(), _paragraphs(record.get("text", "")))
    if name == "statedept":
        title = record.get("title", "").strip()
        if "joint statement" in title.lower():
            return None  # co-signed by other governments: not public domain as a whole
        return Document(name, record.get("url", str(line_number)), record.get("url", ""), corpus.licence,
                        record.get("date", ""), title, _paragraphs(record.get("text", "")))
    iso, year = record.get("country_iso3", "XXX"), record.get("year", "")
    return Document(name, f"{iso}-{year}", f"ungdc:{iso}:{year}", corpus.licence, f"{year}-09-25" if year else "",
                    "", _paragraphs(record.get("text", ""), unwrap=True))


def _wikipedia_days(path: Path, corpus: Corpus) -> Iterator[Document]:
    """Portal:Current events items grouped by day: the day's page is the document."""
    days: dict[str, list[str]] = {}
    for _, record in _records(path):
        text = " ".join(str(record.get("text", "")).split())
        if text:
            days.setdefault(record.get("date", ""), []).append(text)
    for day, items in days.items():
        yield Document("wikipedia", day, f"https://en.wikipedia.org/wiki/Portal:Current_events/{day}",
                       corpus.licence, day, "", tuple(items))


_HYPHEN_BREAK = re.compile(r"(\w)-\s*\n\s*(\w)")


def _paragraphs(text: str, unwrap: bool = False) -> tuple[str, ...]:
    """Paragraphs of a text; unwrap joins hard-wrapped lines (the UN speeches are wrapped at ~50 columns)."""
    if unwrap:
        text = _HYPHEN_BREAK.sub(r"\1-\2", text)
        blocks = re.split(r"\n\s*\n", text)
        text = "\n".join(" ".join(block.split()) for block in blocks)
    return tuple(p for p in clean_lines(text) if p)


def document_sentences(document: Document) -> list[str]:
    """The document's sentences as the pipeline would see them: the title (if any) first, then the body."""
    sentences = [document.title] if document.title else []
    for paragraph in document.paragraphs:
        sentences.extend(split_sentences(paragraph))
    return sentences


def in_eval_pool(document: Document) -> bool:
    """True when the document is reserved for evaluation (a fixed, salted hash of source and id)."""
    digest = hashlib.sha256(f"{EVAL_SALT}:{document.source}:{document.doc_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < EVAL_SHARE


def labellable(sentence: str) -> bool:
    """A sentence worth labelling: a few words, not a whole run-on page, not a speaker tag."""
    words = sentence.split()
    return len(words) >= MIN_WORDS and len(sentence) <= MAX_CHARS and not sentence.isupper()


def sentence_table(corpora_dir: Path, names: Sequence[str] = tuple(CORPORA), pool: str = "eval") -> pd.DataFrame:
    """Every labellable sentence of one pool ("eval" or "train") with its attribution.

    Columns: text, source, url, licence, doc_id, published, position.
    """
    rows = []
    for name in names:
        for document in read_documents(corpora_dir, name):
            if in_eval_pool(document) != (pool == "eval"):
                continue
            for position, sentence in enumerate(document_sentences(document)):
                if labellable(sentence):
                    rows.append((sentence, name, document.url, document.licence, document.doc_id,
                                 document.published, position))
    table = pd.DataFrame(rows, columns=["text", "source", "url", "licence", "doc_id", "published", "position"])
    return table.drop_duplicates(subset="text").reset_index(drop=True)


def topic_pattern(words: Sequence[str]) -> re.Pattern | None:
    """A case-blind regex matching any of the topic words at the start of a word; None for no words."""
    if not words:
        return None
    return re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")", re.IGNORECASE)


def topic_strata(texts: Sequence[str], topics: dict[str, Sequence[str]]) -> np.ndarray:
    """Each text's stratum: the first frame (in the order given) whose topic words it mentions, else 'other'."""
    patterns = {name: topic_pattern(words) for name, words in topics.items() if words}
    strata = np.full(len(texts), "other", dtype=object)
    for i, text in enumerate(texts):
        for name, pattern in patterns.items():
            if pattern.search(text):
                strata[i] = name
                break
    return strata


def stratified_sample(table: pd.DataFrame, strata: np.ndarray, allocation: dict[str, int],
                      seed: int) -> pd.DataFrame:
    """A simple random sample within each (source, stratum) cell, with inclusion weights.

    allocation maps a stratum to the number of sentences drawn per source; a cell smaller
    than that is taken whole. weight = cell size / sentences drawn from the cell, so weighted
    sums over the sample estimate sums over the whole pool.
    """
    rng = np.random.default_rng(seed)
    table = table.assign(stratum=strata)
    parts = []
    for (source, stratum), cell in table.groupby(["source", "stratum"], sort=True):
        wanted = min(len(cell), allocation.get(stratum, 0))
        if wanted == 0:
            continue
        picked = cell.iloc[np.sort(rng.choice(len(cell), size=wanted, replace=False))]
        parts.append(picked.assign(weight=len(cell) / wanted, cell_size=len(cell)))
    return pd.concat(parts).reset_index(drop=True) if parts else table.iloc[:0]


def write_article_folder(documents: Sequence[Document], folder: Path) -> int:
    """Write documents as a folder source (one .txt each, manifest.csv): stores built from real text.

    Returns the number of articles written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "published", "outlet", "title", "url"])
        for number, document in enumerate(documents):
            sentences = document_sentences(document)
            if not sentences:
                continue
            headline = document.title or sentences[0]
            body = document.paragraphs if document.title else _without_first(document.paragraphs, headline)
            name = f"{document.source}_{number:06d}.txt"
            (folder / name).write_text("\n".join([headline, *body]) + "\n", encoding="utf-8")
            writer.writerow([name, document.published[:10], CORPORA[document.source].outlet, headline, document.url])
    return len(documents)


def _without_first(paragraphs: tuple[str, ...], headline: str) -> list[str]:
    first = paragraphs[0]
    rest = first[len(headline):].strip() if first.startswith(headline) else first
    return ([rest] if rest else []) + list(paragraphs[1:])
