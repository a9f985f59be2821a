"""Preparing a chunk of articles: cleaning, sentences, content hash, language and near-duplicate signature.

A run's helper processes (rhetoric.parallel) import this module, not the pipeline, to prepare
their slices: it loads no database, data-frame or model library, so a helper is ready sooner.
"""

from __future__ import annotations

from dataclasses import fields, replace

from rhetoric import parallel
from rhetoric.dedupe import canonical_url, signatures
from rhetoric.ingest import NewArticle, RawArticle, Refusal
from rhetoric.language import detect_language
from rhetoric.text import article_sentences, content_hash


def prepare_articles(raw: list[RawArticle]) -> tuple[list[NewArticle], list[Refusal]]:
    """Clean, split, hash and sign each article; refuse those with no text left after cleaning."""
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
    return prepared, refused


def warm() -> None:
    """Load what preparing needs before the first slice comes: a helper started early (rhetoric.pipeline.start_helpers)
    calls this as it starts. The language model takes half a second to load, which a first chunk waited for."""
    detect_language("Loading the language model before the first article.")


def prepare_chunk(raw: list[RawArticle], workers: int = 1, local: bool = True
                  ) -> tuple[list[NewArticle], list[Refusal]]:
    """prepare_articles on `workers` processes side by side (settings.workers; 0: one per core), results in
    input order; a small chunk is prepared here alone. Without local, this process leaves the slices to
    its helpers, being busy storing and classifying the chunk before (rhetoric.parallel.map_slices)."""
    prepared, refused = [], []
    for articles, refusals in parallel.map_slices(prepare_articles, raw, workers, local):
        prepared += articles
        refused += refusals
    return prepared, refused


def _without_nul(article: RawArticle) -> RawArticle:
    """The article without NUL bytes: never text, and PostgreSQL refuses any value holding one."""
    values = {f.name: getattr(article, f.name) for f in fields(article)}
    dirty = {name: value.replace("\x00", "") for name, value in values.items()
             if isinstance(value, str) and "\x00" in value}
    return replace(article, **dirty) if dirty else article
