"""Preparing a chunk of articles: cleaning, sentences, content hash, language and near-duplicate signature.

A run's helper processes (rhetoric.parallel) import this module, not the pipeline, to prepare
their slices: it loads no database, data-frame or model library, so a helper is ready sooner.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, fields, replace
from functools import partial
from typing import Iterator

from rhetoric import parallel
from rhetoric.dedupe import canonical_url, signatures
from rhetoric.ingest import NewArticle, RawArticle, Refusal
from rhetoric.language import detect_language, load_model
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
        url=article.url, canonical_url=article.canonical_url or address, address=address,
        author=article.author, signature=signature, fingerprint=original.fingerprint,
        language=detect_language(" ".join(sentences)),
    ) for (original, article, sentences), signature in zip(kept, signed)
        for address in [canonical_url(article.url)]]  # here, on a helper: 0.05 s a chunk the run no longer spends
    return prepared, refused


def warm() -> None:
    """Load what a run's helper needs before the first slice comes: a helper started early
    (rhetoric.pipeline.start_helpers) calls this as it starts. The language model takes half a second to load,
    which a first chunk waited for, and the scorer's libraries (pandas, SciPy's sparse matrices, for
    score_while_waiting) as long again; the dashboard's bootstrap bands and charts, which the helper draws at
    the end of the run (rhetoric.trends.band_tables, rhetoric.charts.draw_template), need SciPy's beta
    function (0.07 s) and plotly's drawing code (0.3 s, loaded by drawing a small page)."""
    from rhetoric.charts import warm_drawing

    load_model()
    import rhetoric.scorer  # noqa: F401
    import rhetoric.trends  # noqa: F401
    import scipy.special  # noqa: F401
    warm_drawing()


@dataclass(frozen=True)
class ScoreShare:
    """What a helper needs to score the articles it prepared while the run is still busy: the champion's scorer
    file, the SHA-256 the run verified it by, its version, frames and languages."""

    path: str
    sha256: str
    version: str
    frames: tuple[str, ...]
    languages: tuple[str, ...]


def score_share(model) -> ScoreShare | None:
    """The ScoreShare of a registry model (rhetoric.registry.LoadedModel); None when it has no scorer file
    (models with sentence embeddings are scored by the run alone)."""
    from rhetoric.pipeline import model_languages  # the run's process only: helpers never call this

    path, sha = getattr(model, "scorer_path", None), model.metadata.get("scorer_sha256")
    if path is None or not sha:
        return None
    return ScoreShare(str(path), sha, model.version, tuple(model.frames), model_languages(model))


SCORE_STEP = 64  # articles a helper scores between two looks for the run's call (about 20 ms of work)
_scorers: dict[tuple[str, str], object] = {}


def _scorer(spec: ScoreShare):
    """The scorer of spec, loaded once per process from bytes whose SHA-256 was checked; None when it cannot be."""
    key = (spec.path, spec.sha256)
    if key not in _scorers:
        from rhetoric.scorer import LinearScorer

        try:
            with open(spec.path, "rb") as handle:
                data = handle.read()
            if hashlib.sha256(data).hexdigest() != spec.sha256:
                raise ValueError("changed since the run verified it")
            _scorers[key] = LinearScorer.load(io.BytesIO(data), spec.frames, "")
        except Exception:  # the run scores these articles itself, with the model it verified
            _scorers[key] = None
    return _scorers[key]


def score_while_waiting(result: tuple[list[NewArticle], list[Refusal]], spec: ScoreShare
                        ) -> Iterator[list[tuple[str, tuple]]]:
    """A helper's spare work on a prepared slice (rhetoric.parallel.map_slices): score its articles, from the
    last one back, SCORE_STEP at a time, each then carrying its labels and scores in NewArticle.scored; each
    step yields the (content hash, scored) pairs it added.

    The run asks for the slice when it is ready for it; what was scored by then is work taken
    off the run's core. The helper goes on until it is handed its next slice: for the run's
    last chunk, it scores on while the run checks and stores the chunk, and the run takes
    those scores just before it scores the rest itself (with_late_scores,
    rhetoric.pipeline.classify_chunk). A scorer file that cannot be read, or is not the one
    the run verified, scores nothing.
    """
    prepared = result[0]
    wanted = [i for i in range(len(prepared) - 1, -1, -1)
              if prepared[i].language is None or prepared[i].language in spec.languages]
    scorer = _scorer(spec) if wanted else None
    if scorer is None:
        return
    for start in range(0, len(wanted), SCORE_STEP):
        step = wanted[start:start + SCORE_STEP]
        labels, scores = scorer.predict([sentence for i in step for sentence in prepared[i].sentences])
        at, added = 0, []
        for i in step:  # the step's rows shared, not copied: pickled once for all of its articles
            n = len(prepared[i].sentences)
            prepared[i] = replace(prepared[i], scored=(spec.version, labels, scores, at, at + n))
            added.append((prepared[i].content_hash, prepared[i].scored))
            at += n
        yield added


def with_late_scores(prepared: list[NewArticle]) -> list[NewArticle]:
    """The chunk's articles, those not scored yet carrying what the helpers scored of them after they handed the
    chunk over (rhetoric.parallel.late_spare; by content hash: the same text, the same sentences and scores)."""
    late = dict(parallel.late_spare())
    if not late:
        return prepared
    return [replace(article, scored=late[article.content_hash])
            if article.scored is None and article.content_hash in late else article for article in prepared]


def prepare_chunk(raw: list[RawArticle], workers: int = 1, local: bool = True, scoring: ScoreShare | None = None
                  ) -> tuple[list[NewArticle], list[Refusal]]:
    """prepare_articles on `workers` processes side by side (settings.workers; 0: one per core), results in
    input order; a small chunk is prepared here alone. Without local, this process leaves the slices to
    its helpers, being busy storing and classifying the chunk before (rhetoric.parallel.map_slices). With
    scoring, a helper that has prepared its slice scores it until the run asks for it
    (score_while_waiting; the run calls rhetoric.parallel.hurry() when it is ready)."""
    prepared, refused = [], []
    spare = partial(score_while_waiting, spec=scoring) if scoring is not None else None
    for articles, refusals in parallel.map_slices(prepare_articles, raw, workers, local, spare):
        prepared += articles
        refused += refusals
    return prepared, refused


def _without_nul(article: RawArticle) -> RawArticle:
    """The article without NUL bytes: never text, and PostgreSQL refuses any value holding one."""
    values = {f.name: getattr(article, f.name) for f in fields(article)}
    dirty = {name: value.replace("\x00", "") for name, value in values.items()
             if isinstance(value, str) and "\x00" in value}
    return replace(article, **dirty) if dirty else article
