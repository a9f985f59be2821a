"""Preparing a chunk of articles: cleaning, sentences, content hash, language and near-duplicate signature,
and, given the champion's scorer, the sentences' frame scores.

A run's helper processes (rhetoric.parallel) import this module, not the pipeline, to prepare
their slices: it loads no database or model library until a slice asks for scores, so a
helper is ready sooner.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, fields, replace
from functools import partial
from itertools import accumulate
from pathlib import Path

from rhetoric import parallel
from rhetoric.dedupe import canonical_url, signatures
from rhetoric.ingest import NewArticle, RawArticle, Refusal, SentenceScores
from rhetoric.language import detect_language
from rhetoric.text import article_sentences, content_hash


@dataclass(frozen=True)
class Scoring:
    """What a helper needs to score prepared sentences as the run would: the champion's scorer.npz (verified by
    the run before it hands this out), its version and frames, and the languages it reads."""

    version: str
    frames: tuple[str, ...]
    scorer_path: str
    languages: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"version": self.version, "frames": list(self.frames), "scorer_path": self.scorer_path,
                           "languages": list(self.languages)})

    @classmethod
    def from_json(cls, text: str) -> Scoring:
        data = json.loads(text)
        return cls(data["version"], tuple(data["frames"]), data["scorer_path"], tuple(data["languages"]))


def prepare_articles(raw: list[RawArticle], scoring: Scoring | None = None) -> tuple[list[NewArticle], list[Refusal]]:
    """Clean, split, hash and sign each article; refuse those with no text left after cleaning. With scoring,
    also score the sentences of every article in a language the model reads (score_articles)."""
    kept: list[tuple[RawArticle, RawArticle, list[str]]] = []  # (as read, without NUL bytes, its sentences)
    refused: list[Refusal] = []
    for original in raw:
        article = _without_nul(original)
        sentences = article_sentences(article.text, article.title)
        if sentences:
            kept.append((original, article, sentences))
        else:
            refused.append(Refusal(article.source, "no article text left after removing boilerplate"))
    signed = signatures([sentences[1:] for _, _, sentences in kept])  # all at once: a few numpy passes
    prepared = [NewArticle(
        content_hash=content_hash(sentences), sentences=sentences, source=article.source,
        title=article.title or sentences[0], published=article.published, outlet=article.outlet,
        url=article.url, canonical_url=article.canonical_url or canonical_url(article.url),
        author=article.author, signature=signature, fingerprint=original.fingerprint,
        language=detect_language(" ".join(sentences)),
    ) for (original, article, sentences), signature in zip(kept, signed)]
    if scoring is not None:
        prepared = score_articles(prepared, scoring)
    return prepared, refused


def score_articles(prepared: list[NewArticle], scoring: Scoring) -> list[NewArticle]:
    """The articles, each in a language the model reads (or of unknown language) carrying its sentences' scores.

    The run's classify step stores these instead of scoring the sentences itself (it checks
    that version and frames are its champion's). Scoring is the same whichever process does
    it: the same scorer.npz and the same texts give the same numbers.
    """
    readable = set(scoring.languages)
    chosen = [i for i, article in enumerate(prepared) if article.language is None or article.language in readable]
    if not chosen:
        return prepared
    texts = [text for i in chosen for text in prepared[i].sentences]
    labels, scores = scorer_for(scoring).predict(texts)
    bounds = [0, *accumulate(len(prepared[i].sentences) for i in chosen)]
    scored = list(prepared)
    for i, start, end in zip(chosen, bounds, bounds[1:]):
        scored[i] = replace(prepared[i], scores=SentenceScores(scoring.version, scoring.frames,
                                                               labels[start:end], scores[start:end]))
    return scored


_scorers: dict[tuple[str, str], object] = {}
_scorers_guard = threading.Lock()


def scorer_for(scoring: Scoring):
    """The LinearScorer of scoring.scorer_path, loaded once per process (a warm-up and a slice may ask at once)."""
    key = (scoring.scorer_path, scoring.version)
    with _scorers_guard:
        if key not in _scorers:
            from rhetoric.scorer import LinearScorer

            restore = "restore models/ from git (git checkout models/) or retrain with `rhetoric train --force`"
            _scorers.clear()  # one champion at a time
            _scorers[key] = LinearScorer.load(Path(scoring.scorer_path), scoring.frames, restore)
        return _scorers[key]


def warm(scoring: str | None = None) -> None:
    """Load what preparing needs before the first slice comes: a helper started early (rhetoric.pipeline.start_helpers)
    calls this as it starts, with the Scoring its slices will carry as JSON (Scoring.to_json). The language model
    takes half a second to load, which a first chunk waited for; the scorer, with the libraries it needs, about as
    long."""
    detect_language("Loading the language model before the first article.")
    if scoring:
        scorer_for(Scoring.from_json(scoring))


def prepare_chunk(raw: list[RawArticle], workers: int = 1, local: bool = True, scoring: Scoring | None = None
                  ) -> tuple[list[NewArticle], list[Refusal]]:
    """prepare_articles (scoring too, when given) on `workers` processes side by side (settings.workers; 0: one
    per core), results in input order; a small chunk is prepared here alone. Without local, this process leaves
    the slices to its helpers, being busy storing the chunk before (rhetoric.parallel.map_slices)."""
    prepared, refused = [], []
    function = prepare_articles if scoring is None else partial(prepare_articles, scoring=scoring)
    for articles, refusals in parallel.map_slices(function, raw, workers, local):
        prepared += articles
        refused += refusals
    return prepared, refused


def _without_nul(article: RawArticle) -> RawArticle:
    """The article without NUL bytes: never text, and PostgreSQL refuses any value holding one."""
    values = {f.name: getattr(article, f.name) for f in fields(article)}
    dirty = {name: value.replace("\x00", "") for name, value in values.items()
             if isinstance(value, str) and "\x00" in value}
    return replace(article, **dirty) if dirty else article
