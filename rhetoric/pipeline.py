"""The steps of one pipeline run as plain functions; flows/pipeline.py orchestrates them.

A run checks its settings and opens the store, reads its sources a chunk at a time, prepares
each chunk (rhetoric.prepare) while storing the one before, finds repeats (rhetoric.repeats),
stores and classifies, then counts what it did (rhetoric.summary) and writes the dashboard
(rhetoric.dashboard).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from rhetoric import parallel
from rhetoric.config import Settings, SourceSpec
from rhetoric.errors import ConfigError, StoreError
from rhetoric.ingest import (
    IngestBatch, NewArticle, RawArticle, article_names, read_folder_in_chunks, scored_rows,
)
from rhetoric.labels import load_frames
from rhetoric.prepare import ScoreShare, prepare_chunk, with_late_scores
from rhetoric.repeats import mark_repeats
from rhetoric.store import AddResult, Store
from rhetoric.summary import RunSummary

if TYPE_CHECKING:
    from rhetoric.locking import RunLock

LIVE_KINDS = ("feed", "urls")


def check_store_url(url: str) -> None:
    """Refuse, in one line, a store URL that cannot work, before anything heavy starts.

    Raises:
        ConfigError: a plain path instead of a URL, a URL SQLAlchemy cannot parse, or the PostgreSQL
            driver missing.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if "://" not in url:
        raise ConfigError(f"--db {url!r}: not a store URL; for a SQLite file write sqlite:///{Path(url).resolve()}, "
                          "for PostgreSQL postgresql+psycopg://user@host/dbname")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"--db {url!r}: not a valid store URL; expected sqlite:///PATH or "
                          "postgresql+psycopg://user@host/dbname") from None
    if parsed.drivername.startswith("postgresql"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError(f"--db {url!r}: the PostgreSQL driver is not installed; "
                              "pip install \"rhetoric[postgres]\" (or \".[postgres]\" in a checkout)") from None


def preflight(settings: Settings) -> None:
    """Everything a run needs, checked in a second before Prefect starts: sources, store URL, labels, champion.

    Raises:
        ConfigError / LabelError / ModelError: the first problem, in one line naming the fix.
    """
    from rhetoric.registry import Registry

    for spec in settings.sources:
        if spec.kind == "folder" and not Path(spec.location).is_dir():
            raise ConfigError(f"source folder {spec.location} does not exist; create it, or fix --source or the "
                              f"[[source]] entries of {settings.root / 'rhetoric.toml'}")
    check_store_url(settings.resolved_db_url())
    open_store(settings).close()  # reachable, and its schema in place
    load_frames(settings.labels_dir)
    Registry(settings.models_dir).champion(lazy=True)  # verified now; unpickled once, if the run has text to score


def open_existing_store(settings: Settings) -> Store:
    """The store, which must exist already (reading commands never create an empty one).

    Raises:
        StoreError: a SQLite store file that does not exist.
    """
    url = settings.resolved_db_url()
    check_store_url(url)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise StoreError(f"{path}: no store here yet; run `rhetoric run` first, or pass --db with the store's URL")
    return open_store(settings)


def open_store(settings: Settings) -> Store:
    """The store named by the settings, with its schema in place."""
    store = Store(settings.resolved_db_url())
    store.create_schema()
    return store


def live_sources(settings: Settings) -> list[SourceSpec]:
    """The feed and URL-list sources of the settings."""
    return [spec for spec in settings.sources if spec.kind in LIVE_KINDS]


def start_helpers(settings: Settings) -> bool:
    """Start the helper processes a run will prepare its first chunk with, when that chunk looks new enough to
    share (rhetoric.parallel.processes_for); whether any was started.

    Called before Prefect starts the flow: a helper then has a second or two to start and load
    the language model (rhetoric.prepare.warm), which the first chunk, prepared by the run and
    its helpers together, otherwise waited for (about 0.8 s of a first run on 10,000 articles).
    The first chunk's files are the folders' first batch_size article files by name, as they
    are read; those whose name the store has already recorded as a source are taken as
    unchanged. A rerun that finds nothing new would pay for a helper it never uses (0.4 s of a
    rerun on 10,000 files), so none is started then.
    """
    names = _first_chunk_names(settings)
    if parallel.processes_for(len(names), settings.workers) < 2:  # too few files to share, or one process asked
        return False
    try:
        store = Store(settings.resolved_db_url())
        try:
            known = store.known_sources(names)
        finally:
            store.close()
    except (StoreError, SQLAlchemyError):
        known = set()
    helpers = parallel.processes_for(len(set(names) - known), settings.workers) - 1  # the run prepares a share too
    if helpers < 1:
        return False
    parallel.start(helpers, warm="rhetoric.prepare:warm")
    return True


def _first_chunk_names(settings: Settings) -> list[str]:
    """The names of the article files the folder sources' first chunk will hold (read_folder_in_chunks's order)."""
    names: list[str] = []
    for spec in settings.sources:
        if spec.kind != "folder" or len(names) >= settings.batch_size:
            continue
        try:
            names += article_names(spec.location)[:settings.batch_size - len(names)]
        except OSError:  # the run itself reports the folder
            pass
    return names


def skip_unchanged(store: Store, raw: list[RawArticle]) -> tuple[list[RawArticle], int]:
    """Drop inputs stored before from the same source with the same text: a re-run does not clean them again.

    Returns the inputs left to prepare and how many were skipped (they count as already stored).
    """
    known = store.known_fingerprints(article.fingerprint for article in raw)
    fresh = [a for a in raw if (a.fingerprint, a.source) not in known]
    return fresh, len(raw) - len(fresh)


def store_articles(store: Store, prepared: list[NewArticle], run_id: str,
                   duplicate_of: dict[int, int] | None = None) -> AddResult:
    """Store the prepared articles in one transaction."""
    return store.add_articles(prepared, run_id, duplicate_of)


def ingest(store: Store, settings: Settings, summary: RunSummary, live: IngestBatch, lock: RunLock,
           prepare: Callable | None = None, write: Callable = store_articles,
           classify: Callable[[list[NewArticle], AddResult], int] | None = None,
           scoring: ScoreShare | None = None) -> bool:
    """Bring the sources' new articles into the store settings.batch_size at a time, counting them in the summary.

    The folder sources are read a chunk of files at a time, followed by live (the articles
    fetched from feeds and URL lists); a run of up to batch_size articles is one chunk. Each
    chunk's unchanged inputs are skipped and the rest prepared without the run lock; the lock
    is taken (waiting up to settings.lock_wait) only to check the chunk for repeats, store it
    and classify its new sentences, so runs on one store prepare side by side and write one
    at a time. A story repeated in a later chunk, or stored meanwhile by another run, is
    found stored, by content hash, address or band keys.

    The chunks overlap: while one is checked, stored and classified here, the next is read
    and prepared by the helper processes (rhetoric.parallel), so memory holds two chunks,
    never the corpus. The first chunk, with nothing to overlap, is prepared by this process
    and its helpers together. The "prepare" timing is the time spent waiting for a chunk to
    be prepared, not the time preparing took.

    prepare(raw, local) starts preparing a chunk and returns its future (anything with
    result()); local says whether this process may take a slice. It defaults to
    prepare_chunk on settings.workers processes, from a background thread, its helpers
    scoring what they prepared until the run is ready for it when scoring is given
    (rhetoric.prepare.score_while_waiting); the flow passes its task's submit. write
    defaults to store_articles. classify(prepared, added), when given, scores the sentences
    of a chunk's new articles and returns how many it scored.

    Returns whether the lock was taken at the end (for classify); the caller then holds it
    and releases it. False: it stayed taken lock_wait seconds, and the run stops before
    storing anything more (what it did not store, the next run picks up).
    """
    pool = None
    if prepare is None:
        pool = ThreadPoolExecutor(1, thread_name_prefix="rhetoric-prepare")

        def prepare(raw: list[RawArticle], local: bool):
            return pool.submit(prepare_chunk, raw, settings.workers, local, scoring)
    pending = None  # the chunk being prepared: (how many of its inputs were unchanged, its future)
    try:
        for raw in _timed_chunks(summary, _rechunked(chain(folder_chunks(settings), [live]), settings.batch_size)):
            summary.refusals += raw.refusals
            summary.warnings += raw.warnings
            with summary.timed("dedupe"):  # a first pass without the lock: inputs stored before are not cleaned again
                fresh, unchanged = skip_unchanged(store, raw.articles)
            upcoming = (unchanged, prepare(fresh, pending is None) if fresh else _done(([], [])))
            if pending is not None and not _store_chunk(store, settings, summary, lock, write, classify, *pending):
                parallel.stop()  # the upcoming chunk will not be stored
                return False
            pending = upcoming
        if pending is not None and not _store_chunk(store, settings, summary, lock, write, classify, *pending):
            return False
        with summary.timed("lock wait"):
            return lock.acquire(settings.lock_wait)
    except BaseException:
        parallel.stop()  # a chunk may still be being prepared: the run is ending, end that now
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _done(result) -> Future:
    """A future already holding its result: a chunk with nothing to prepare (a rerun skips every input unread)."""
    future = Future()
    future.set_result(result)
    return future


def _store_chunk(store: Store, settings: Settings, summary: RunSummary, lock: RunLock, write: Callable,
                 classify: Callable[[list[NewArticle], AddResult], int] | None, unchanged: int, future) -> bool:
    """Wait for a chunk to be prepared, then, holding the run lock, check it for repeats, store it and classify
    its new sentences. False when the lock stayed taken lock_wait seconds (nothing of the chunk stored)."""
    with summary.timed("prepare"):
        if not _ready(future):  # a helper that prepared the chunk and is scoring it while it waits: send it now
            parallel.hurry()
        prepared, refused = future.result()
    summary.refusals += refused
    with summary.timed("lock wait"):
        if not lock.acquire(settings.lock_wait):
            return False
    try:
        with summary.timed("dedupe"):
            prepared, duplicate_of, repeats = mark_repeats(store, prepared, settings.near_duplicate_threshold)
        with summary.timed("store"):
            added = write(store, prepared, summary.run_id, duplicate_of)
        _count_chunk(summary, prepared, added, unchanged, repeats)
        if classify is not None and added.new_article_ids:
            with summary.timed("classify"):
                summary.sentences_scored += classify(with_late_scores(prepared), added)
    finally:
        lock.release()
    return True


def _ready(future) -> bool:
    """Whether a chunk's future holds its result already (a concurrent future, or a Prefect future wrapping one)."""
    done = getattr(getattr(future, "wrapped_future", future), "done", None)
    return bool(done()) if callable(done) else False


def folder_chunks(settings: Settings) -> Iterator[IngestBatch]:
    """The folder sources' articles, settings.batch_size files at a time, each read when it is asked for."""
    for spec in settings.sources:
        if spec.kind == "folder":
            yield from read_folder_in_chunks(spec, settings.max_bytes, settings.batch_size)


def _rechunked(batches: Iterable[IngestBatch], size: int) -> Iterator[IngestBatch]:
    """The batches' articles regrouped size at a time (the last chunk may be smaller; at least one chunk), each
    refusal and warning in the chunk of the batch that brought it."""
    pending, yielded = IngestBatch(), False
    for batch in batches:
        pending.refusals += batch.refusals
        pending.warnings += batch.warnings
        for article in batch.articles:
            pending.articles.append(article)
            if len(pending.articles) == size:
                yield pending
                pending, yielded = IngestBatch(), True
    if pending.articles or pending.refusals or pending.warnings or not yielded:
        yield pending


def _timed_chunks(summary: RunSummary, chunks: Iterator[IngestBatch]) -> Iterator[IngestBatch]:
    """The chunks, the time spent reading each counted as the run's "read"."""
    while True:
        with summary.timed("read"):
            chunk = next(chunks, None)
        if chunk is None:
            return
        yield chunk


def _count_chunk(summary: RunSummary, prepared: list[NewArticle], added: AddResult, unchanged: int,
                 repeats: list[str]) -> None:
    summary.refusals += added.refused
    summary.repeats += repeats
    summary.articles_new += len(added.new_article_ids)
    summary.articles_already += added.already_stored + unchanged
    summary.sentences_new += added.new_sentences
    for outlet, count in new_by_outlet(prepared, added).items():
        summary.new_by_outlet[outlet] = summary.new_by_outlet.get(outlet, 0) + count


def model_languages(model) -> tuple[str, ...]:
    """The languages the model was trained on (metadata 'languages'; models from before it: English)."""
    return tuple(model.metadata.get("languages") or ("en",))


def classify_stale(store: Store, model, batch_size: int = 5000) -> int:
    """Score every stored sentence the champion has not scored yet (new ones, or all after a promotion).

    Sentences of articles in a language the model was not trained on are left unscored (and
    any earlier score of theirs removed): "no frame" would be a claim about text it cannot read.
    Scoring stays on one core: split across two processes here it gained nothing (0.94 s
    against 0.99 s per 100,000 sentences), the sparse products contending for memory.
    """
    store.drop_other_frames(model.frames)
    languages = model_languages(model)
    store.drop_predictions_outside(languages)
    if store.all_scored(model.version, model.frames, languages):
        return 0
    scored = 0
    rescoring = store.has_other_versions(model.version)
    for ids, texts in store.iter_stale(model.version, model.frames, batch_size, languages):
        _score(store, model, ids, texts, replace=rescoring)
        scored += len(ids)
    return scored


def _score(store: Store, model, ids: list[int], texts: list[str], replace: bool) -> None:
    """Score one batch of stored sentences and write the model's predictions for them."""
    labels, scores = model.predict(texts)
    store.write_predictions(ids, model.frames, labels, scores, model.version, replace=replace)


def classify_chunk(store: Store, model, prepared: list[NewArticle], added: AddResult, batch_size: int = 5000) -> int:
    """Score the sentences of a chunk's new articles in a language the model reads, batch_size at a time, as
    soon as they are stored; how many were scored.

    The texts are the prepared ones in memory; only the new sentences' ids are read back (by
    article, so it costs the same on a store of any size). classify_stale, at the end of a
    run, catches whatever else is left (a promotion's rescoring).
    """
    readable = set(model_languages(model))
    items = {article_id: prepared[position] for article_id, position in zip(added.new_article_ids, added.new_positions)
             if prepared[position].language is None or prepared[position].language in readable}
    rows = store.sentence_positions(list(items))
    ids = [sentence_id for sentence_id, _, _ in rows]
    texts = [items[article_id].sentences[idx] for _, article_id, idx in rows]
    scored = {article_id: rows_of for article_id, item in items.items() if item.scored is not None
              for rows_of in [scored_rows(item.scored)]
              if rows_of[0] == model.version and len(rows_of[1]) == len(item.sentences)}
    labels, scores = _chunk_scores(model, rows, texts, scored, batch_size)
    for start in range(0, len(ids), batch_size):
        part = slice(start, start + batch_size)
        store.write_predictions(ids[part], model.frames, labels[part], scores[part], model.version, replace=False)
    return len(ids)


def _chunk_scores(model, rows: list[tuple[int, int, int]], texts: list[str], scored: dict[int, tuple],
                  batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores of (sentence id, article id, position) rows: those a helper scored already
    (rhetoric.prepare.score_while_waiting) as it scored them, the rest predicted now, batch_size at a time."""
    k = len(model.frames)
    labels, scores = np.zeros((len(rows), k), dtype=bool), np.zeros((len(rows), k))
    offsets, total = {}, 0
    for article_id, (_, their_labels, _) in scored.items():
        offsets[article_id] = total
        total += len(their_labels)
    at = np.array([offsets.get(article_id, -1) for _, article_id, _ in rows], dtype=np.int64)
    have = at >= 0
    if scored:
        positions = np.array([idx for _, _, idx in rows], dtype=np.int64)
        taken = at[have] + positions[have]
        labels[have] = np.concatenate([their_labels for _, their_labels, _ in scored.values()])[taken]
        scores[have] = np.concatenate([their_scores for _, _, their_scores in scored.values()])[taken]
    missing = np.flatnonzero(~have)
    for start in range(0, len(missing), batch_size):
        part = missing[start:start + batch_size]
        labels[part], scores[part] = model.predict([texts[row] for row in part.tolist()])
    return labels, scores


def new_by_outlet(prepared: list[NewArticle], added: AddResult) -> dict[str, int]:
    """How many new articles each outlet brought."""
    new_hashes = set()
    counts: dict[str, int] = {}
    duplicate_sources = set(added.duplicate_of) | {r.source for r in added.refused}
    for article in prepared:
        if article.source in duplicate_sources or article.content_hash in new_hashes:
            continue
        new_hashes.add(article.content_hash)
        outlet = article.outlet or "unknown"
        counts[outlet] = counts.get(outlet, 0) + 1
    return counts


def frame_shares(store: Store, run_id: str) -> list[dict]:
    """Per frame: this run's new sentences, how many the champion labelled with it, and the share."""
    table = store.run_frame_counts(run_id)
    return [{"frame": r.frame, "sentences": int(r.sentences), "labelled": int(r.labelled),
             "share": round(r.labelled / r.sentences, 4) if r.sentences else 0.0}
            for r in table.itertuples()]


def correction_evidence(store: Store, settings: Settings, model) -> dict:
    """Per frame, the error rates the trend correction uses and where they come from (audit, eval, cv); a
    measurement on the evaluation split is kept under the state folder (rhetoric.audit.eval_rates)."""
    from rhetoric.audit import correction_evidence as evidence

    return evidence(model, settings.labels_dir, load_frames(settings.labels_dir), store, cache_dir=settings.state_dir)


