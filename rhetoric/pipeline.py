"""The steps of one pipeline run as plain functions; flows/pipeline.py orchestrates them."""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

import numpy as np

from rhetoric import parallel
from rhetoric.config import Settings, SourceSpec
from rhetoric.errors import ConfigError, StoreError
from rhetoric.dedupe import (
    BatchBands, NearestStored, SignatureIndex, band_keys, canonical_url, decode_signatures, signature, split_pairs,
)
from rhetoric.ingest import IngestBatch, RawArticle, Refusal, read_folder_in_chunks
from rhetoric.labels import FRAMES_FILE, load_frames
from rhetoric.language import detect_language
from rhetoric.locking import is_dead
from rhetoric.store import AddResult, NewArticle, Store
from rhetoric.text import article_sentences, content_hash

if TYPE_CHECKING:
    from rhetoric.charts.template import PageTemplate
    from rhetoric.locking import RunLock

LIVE_KINDS = ("feed", "urls")


@dataclass
class RunSummary:
    """What one run did; printed by `rhetoric run` and recorded in the runs table."""

    run_id: str
    articles_new: int = 0
    articles_already: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sentences_new: int = 0
    sentences_scored: int = 0
    model_version: str | None = None
    chart_path: str | None = None
    new_by_outlet: dict[str, int] = field(default_factory=dict)
    source_failures: list[Refusal] = field(default_factory=list)
    repeats: list[str] = field(default_factory=list)
    frame_shares: list[dict] = field(default_factory=list)
    skipped: str | None = None
    # stored articles in languages the champion was not trained on: language -> articles
    unreadable: dict[str, int] = field(default_factory=dict)
    languages: tuple[str, ...] = ()
    # frame -> the trend correction's rates: tpr, fpr, reviewed, from (audit, eval or cv)
    rates: dict[str, dict] = field(default_factory=dict)
    # stage -> seconds the run spent in it (read, prepare, dedupe, store, classify, dashboard, ...)
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the time spent in the block to the stage's figure."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(self.timings.get(stage, 0.0) + time.perf_counter() - began, 4)

    def counts(self) -> dict:
        """The counters stored with the run."""
        return {"articles_new": self.articles_new, "articles_seen": self.articles_already,
                "articles_refused": len(self.refusals), "sentences_new": self.sentences_new,
                "sentences_rescored": max(self.sentences_scored - self.sentences_new, 0),
                "model_version": self.model_version}

    def details(self) -> dict:
        """Refusals, warnings and per-outlet counts, kept as JSON with the run."""
        return {"refused": [{"source": r.source, "reason": r.reason} for r in self.refusals],
                "warnings": self.warnings, "new_by_outlet": self.new_by_outlet,
                "chart_path": self.chart_path,
                "failed_sources": [{"source": r.source, "reason": r.reason} for r in self.source_failures],
                "repeats": self.repeats, "frame_shares": self.frame_shares, "skipped": self.skipped,
                "unreadable": self.unreadable, "rates": self.rates, "timings": self.timings}

    def render(self) -> str:
        """The human summary of the run."""
        if self.skipped:
            return f"run {self.run_id}\nskipped: {self.skipped}"
        lines = [
            f"run {self.run_id}",
            f"articles: {self.articles_new} new, {self.articles_already} already stored, "
            f"{len(self.refusals)} refused",
        ]
        lines += [f"  refused {r.source}: {r.reason}" for r in self.refusals]
        lines += [f"  repeat {note}" for note in self.repeats]
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.source_failures:
            lines.append(f"sources: {len(self.source_failures)} failed this run (tried again next run)")
            lines += [f"  failed {r.source}: {r.reason}" for r in self.source_failures]
        lines.append(f"sentences: {self.sentences_new} new, {self.sentences_scored} classified")
        if self.unreadable:
            lines.append(f"not classified: {self.unreadable_text()}")
        lines.append(f"model version: {self.model_version}")
        if self.rates:
            lines.append(f"error rates: {self.rates_text()}")
        lines.append(f"chart: {self.chart_path}")
        return "\n".join(lines)

    def rates_text(self) -> str:
        """'multipolarity TPR 0.53 FPR 0.002 from audit (300 reviewed); ... (hint when not all from an audit)'."""
        parts = [f"{frame} TPR {e['tpr']:.2f} FPR {e['fpr']:.3f} from {e['from']}"
                 + (f" ({int(e['reviewed']):,} reviewed)" if e.get("reviewed") else "")
                 for frame, e in self.rates.items()]
        hint = "" if all(e["from"] == "audit" for e in self.rates.values()) else \
            " (measured on other text: run `rhetoric label audit`)"
        return "; ".join(parts) + hint

    def unreadable_text(self) -> str:
        """'3 stored article(s) in ru 2, zh 1: the model reads en only'."""
        total = sum(self.unreadable.values())
        shown = ", ".join(f"{language} {n}" for language, n in self.unreadable.items())
        readable = ", ".join(self.languages) or "en"
        return f"{total} stored article(s) in {shown}: the model reads {readable} only"

    def markdown(self) -> str:
        """The run summary as Markdown, for the Prefect UI."""
        if self.skipped:
            return f"# Run {self.run_id}\n\nSkipped: {self.skipped}\n"
        out = [f"# Run {self.run_id}", "",
               f"**{self.articles_new}** new articles, {self.articles_already} already stored "
               f"(including {len(self.repeats)} repeat(s) of stored stories), "
               f"{len(self.refusals)} refused; {self.sentences_new} new sentences; "
               f"{self.sentences_scored} classified by model `{self.model_version}`.", ""]
        if self.unreadable:
            out += [f"Not classified: {self.unreadable_text()}.", ""]
        if self.rates:
            out += [f"Error rates of the trend correction: {self.rates_text()}.", ""]
        out += ["## New articles per outlet", "", "| outlet | new articles |", "|---|---:|"]
        out += [f"| {_cell(o)} | {n} |" for o, n in sorted(self.new_by_outlet.items())] or ["| (none) | 0 |"]
        if self.source_failures:
            out += ["", "## Sources that failed (tried again next run)", ""]
            out += [f"- `{r.source}`: {_cell(r.reason)}" for r in self.source_failures]
        out += ["", "## Refused inputs", ""]
        out += [f"- `{r.source}`: {_cell(r.reason)}" for r in self.refusals] or ["None."]
        out += ["", "## Frames in this run's new sentences", ""]
        if self.frame_shares:
            out += ["| frame | sentences | labelled | share |", "|---|---:|---:|---:|"]
            out += [f"| {r['frame']} | {r['sentences']} | {r['labelled']} | {r['share']:.1%} |"
                    for r in self.frame_shares]
        else:
            out.append("No new sentences.")
        if self.chart_path:
            out += ["", f"Dashboard: [{self.chart_path}]({Path(self.chart_path).resolve().as_uri()})"]
        return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


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


def skip_unchanged(store: Store, raw: list[RawArticle]) -> tuple[list[RawArticle], int]:
    """Drop inputs stored before from the same source with the same text: a re-run does not clean them again.

    Returns the inputs left to prepare and how many were skipped (they count as already stored).
    """
    known = store.known_fingerprints(article.fingerprint for article in raw)
    fresh = [a for a in raw if (a.fingerprint, a.source) not in known]
    return fresh, len(raw) - len(fresh)


def prepare_articles(raw: list[RawArticle]) -> tuple[list[NewArticle], list[Refusal]]:
    """Clean, split, hash and sign each article; refuse those with no text left after cleaning."""
    prepared: list[NewArticle] = []
    refused: list[Refusal] = []
    for original in raw:
        article = _without_nul(original)
        sentences = article_sentences(article.text, article.title)
        if not sentences:
            refused.append(Refusal(article.source, "no article text left after removing boilerplate"))
            continue
        prepared.append(NewArticle(
            content_hash=content_hash(sentences), sentences=sentences, source=article.source,
            title=article.title or sentences[0], published=article.published, outlet=article.outlet,
            url=article.url, canonical_url=article.canonical_url or canonical_url(article.url),
            author=article.author, signature=signature(sentences[1:]), fingerprint=original.fingerprint,
            language=detect_language(" ".join(sentences)),
        ))
    return prepared, refused


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


def mark_repeats(store: Store, prepared: list[NewArticle], threshold: float
                 ) -> tuple[list[NewArticle], dict[int, int], list[str]]:
    """Find items that repeat a story, by address, content or near-duplicate text (rhetoric.dedupe).

    An item's address is where it was read from, never the canonical link its page declares:
    a page must not make another page a repeat of itself.

    Near-duplicates of stored articles are found through the band keys kept in the store
    (nearest_stored): only the candidates' signatures are read. Those of the batch's own
    items are held in memory as it is read, so two copies in one batch are found too; a
    stored match wins over a batch one of equal similarity, as it did when both sat in one index.

    Returns the batch (a repeat of an earlier item of the batch takes that item's content
    hash, so the store records it as another source), duplicate_of for add_articles
    (batch position -> stored article id), and one line per repeat saying why.
    """
    addresses = [canonical_url(a.url) for a in prepared]
    stored_urls = store.known_urls(a for a in addresses if a)
    stored_hashes = store.known_hashes(a.content_hash for a in prepared)
    stored_near = nearest_stored(store, [None if a.content_hash in stored_hashes or addresses[i] in stored_urls
                                         else a.signature for i, a in enumerate(prepared)], threshold)
    index = SignatureIndex([], threshold)  # this batch's own stories
    signed, values = decode_signatures([a.signature for a in prepared])  # decoded and keyed at once
    decoded = dict(zip(signed.tolist(), zip(values, band_keys(values).tolist())))
    batch_urls: dict[str, int] = {}
    items = list(prepared)
    duplicate_of: dict[int, int] = {}
    notes: list[tuple[str, int | None, str]] = []  # (text, stored article named after it, rest of the text)
    for position, item in enumerate(items):
        url = addresses[position]
        if item.content_hash in stored_hashes:
            continue  # the very same text: the store records the source itself
        if url in stored_urls:
            duplicate_of[position] = stored_urls[url]
            notes.append((f"{item.source}: same canonical URL as stored article", stored_urls[url], ""))
            continue
        if url in batch_urls:
            earlier = batch_urls[url]
            notes.append((f"{item.source}: same canonical URL as {items[earlier].source}", None, ""))
            _same_story(items, duplicate_of, position, earlier)
            continue
        own = decoded.get(position)
        match = _closer(stored_near.get(position), index.match_values(*own) if own else None)
        if match is not None:
            key, score = match
            if isinstance(key, int):
                duplicate_of[position] = key
                notes.append((f"{item.source}: near-duplicate of stored article", key, f" (similarity {score:.2f})"))
            else:
                earlier = int(key.removeprefix("batch:"))
                notes.append((f"{item.source}: near-duplicate of {items[earlier].source} (similarity {score:.2f})",
                              None, ""))
                _same_story(items, duplicate_of, position, earlier)
            continue
        if url:
            batch_urls[url] = position
        if own:
            index.add_values(f"batch:{position}", *own)
    names = store.article_names(duplicate_of.values()) if duplicate_of else {}
    return items, duplicate_of, [
        head if article_id is None else f"{head} {article_id}, {names.get(article_id, 'no longer stored')}{tail}"
        for head, article_id, tail in notes]


def _closer(stored: tuple[int, float] | None, in_batch: tuple[str, float] | None) -> tuple[int | str, float] | None:
    """The closer of a stored and a batch match; the stored one when they are equally close."""
    if in_batch is not None and (stored is None or in_batch[1] > stored[1]):
        return in_batch
    return stored


def nearest_stored(store: Store, signatures: list[str | None], threshold: float,
                   chunk: int = 5000) -> dict[int, tuple[int, float]]:
    """Position -> (stored article id, similarity) of the signatures with a near-duplicate in the store.

    The candidates are the stored articles sharing a band key with a signature (Store.band_matches);
    their signatures are read and compared a chunk of articles at a time (rhetoric.dedupe.NearestStored).
    """
    positions, values = decode_signatures(signatures)
    if not len(positions):
        return {}
    bands = BatchBands(band_keys(values))
    found = [bands.pairs(found_keys, found_ids) for found_keys, found_ids in store.band_matches(bands.unique_keys())]
    rows, ids = split_pairs(np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64))
    nearest = NearestStored(values, threshold)
    candidates = np.unique(ids)
    for start in range(0, len(candidates), chunk):
        wanted = candidates[start:start + chunk]
        found_ids, found_values = _signature_values(store, wanted.tolist())
        if not len(found_ids):
            continue
        span = slice(np.searchsorted(ids, wanted[0]), np.searchsorted(ids, wanted[-1], side="right"))  # ids sorted
        at = np.searchsorted(found_ids, ids[span]).clip(max=len(found_ids) - 1)
        usable = found_ids[at] == ids[span]
        nearest.compare(rows[span][usable], ids[span][usable], at[usable], found_values)
    return {int(positions[row]): match for row, match in nearest.matches().items()}


def _signature_values(store: Store, article_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The ids, sorted, and MinHash values of those of these stored articles that have a usable signature."""
    stored = sorted(store.signatures_of(article_ids))
    usable, values = decode_signatures([text for _, text in stored])
    return np.array([stored[p][0] for p in usable], dtype=np.int64), values


def _same_story(items: list[NewArticle], duplicate_of: dict[int, int], position: int, earlier: int) -> None:
    if earlier in duplicate_of:
        duplicate_of[position] = duplicate_of[earlier]
    else:
        items[position] = replace(items[position], content_hash=items[earlier].content_hash)


def store_articles(store: Store, prepared: list[NewArticle], run_id: str,
                   duplicate_of: dict[int, int] | None = None) -> AddResult:
    """Store the prepared articles in one transaction."""
    return store.add_articles(prepared, run_id, duplicate_of)


def ingest(store: Store, settings: Settings, summary: RunSummary, live: IngestBatch, lock: RunLock,
           prepare: Callable | None = None, write: Callable = store_articles,
           classify: Callable[[list[NewArticle], AddResult], int] | None = None) -> bool:
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
    prepare_chunk on settings.workers processes, from a background thread; the flow passes
    its task's submit. write defaults to store_articles. classify(prepared, added), when
    given, scores the sentences of a chunk's new articles and returns how many it scored.

    Returns whether the lock was taken at the end (for classify); the caller then holds it
    and releases it. False: it stayed taken lock_wait seconds, and the run stops before
    storing anything more (what it did not store, the next run picks up).
    """
    pool = None
    if prepare is None:
        pool = ThreadPoolExecutor(1, thread_name_prefix="rhetoric-prepare")

        def prepare(raw: list[RawArticle], local: bool):
            return pool.submit(prepare_chunk, raw, settings.workers, local)
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
                summary.sentences_scored += classify(prepared, added)
    finally:
        lock.release()
    return True


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
    for start in range(0, len(ids), batch_size):
        _score(store, model, ids[start:start + batch_size], texts[start:start + batch_size], replace=False)
    return len(ids)


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


def write_dashboard(store: Store, settings: Settings, model_meta: dict | None, history: list[dict],
                    evidence: dict | None = None, run_id: str | None = None) -> Path:
    """Build the dashboard from the store and write it to OUT/index.html (atomically).

    run_id names the run writing the page, if any: only that run is "this page's run".
    A write that fails or is interrupted leaves no partial index.html.tmp behind.

    The page but its "Last run" fact is kept under the state folder with a key made of the
    store's content_token, the frames, model, champion history, error rates, outlet groups
    and the code that draws it. When the key matches (a run that found nothing new), that
    template is refilled with the last run in milliseconds instead of querying the store and
    drawing every chart again.
    """
    titles = frame_titles(settings, model_meta)
    key = _dashboard_key(store, titles, model_meta, history, evidence, settings.outlet_groups)
    template = _kept_template(settings, key)
    if template is None:
        # imported here: plotly and scipy.stats take most of a second, and nothing before the dashboard needs them
        from rhetoric.charts.page import dashboard_template
        from rhetoric.trends import dashboard_data

        data = dashboard_data(store, titles, model_meta, history, evidence=evidence,
                              outlet_groups=settings.outlet_groups)
        template = dashboard_template(data)
        _keep_template(settings, key, template)
    from rhetoric.charts.template import fill_last_run

    last_run = store.last_run()
    if last_run and last_run.get("status") == "running":
        last_run["status"] = live_status(store, last_run["run_id"], run_id)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    path = settings.out_dir / "index.html"
    tmp = partial_dashboard(settings, run_id)
    try:
        tmp.write_text(fill_last_run(template, last_run), encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


TEMPLATE_FILE = "dashboard-template.html"


def _dashboard_key(store: Store, titles: dict, model_meta: dict | None, history: list[dict], evidence: dict | None,
                   outlet_groups) -> str:
    """What the page but its last run depends on, hashed (write_dashboard)."""
    import hashlib
    import json

    parts = [store.content_token(), titles, model_meta, history, evidence, outlet_groups, _drawing_code()]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@lru_cache(maxsize=1)
def _drawing_code() -> str:
    """A hash of the code that turns the store into the page (rhetoric.trends, rhetoric.charts) and plotly's version."""
    import hashlib
    from importlib.metadata import version

    package = Path(__file__).parent
    digest = hashlib.sha256(version("plotly").encode())
    for path in sorted([package / "trends.py", *(package / "charts").glob("*.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _kept_template(settings: Settings, key: str) -> PageTemplate | None:
    """The kept page template if it was made under this key; None otherwise (or if it cannot be read)."""
    from rhetoric.charts.template import PageTemplate

    try:
        with open(settings.state_dir / TEMPLATE_FILE, encoding="utf-8", newline="") as kept:
            if kept.readline().rstrip("\n") != key:
                return None
            cut = int(kept.readline())
            page = kept.read()
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return PageTemplate(page[:cut], page[cut:]) if 0 <= cut <= len(page) else None


def _keep_template(settings: Settings, key: str, template: PageTemplate) -> None:
    """Keep the template: its key, where it is cut, then the page; replaced in one step, so overlapping runs
    never mix two."""
    from rhetoric.project import keep_state_file

    keep_state_file(settings.state_dir / TEMPLATE_FILE,
                    f"{key}\n{len(template.before)}\n{template.before}{template.after}")


def partial_dashboard(settings: Settings, run_id: str | None = None) -> Path:
    """Where a run writes the dashboard before it replaces index.html: one file per run, as runs may overlap."""
    return settings.out_dir / (f"index.html.{run_id}.tmp" if run_id else f"index.html.{os.getpid()}.tmp")


def remove_dead_partials(store: Store, settings: Settings) -> int:
    """Remove the half-written dashboards of runs that died writing them; how many there were."""
    removed = 0
    for tmp in settings.out_dir.glob("index.html*.tmp"):
        owner = tmp.name.removeprefix("index.html").removesuffix(".tmp").lstrip(".")
        if not owner or owner.isdigit() or is_dead(store.alive_lock(owner)):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def live_status(store: Store, recorded_run: str, writing_run: str | None) -> str:
    """What a run recorded as running really is: 'writing' (the run writing the page), 'running' (it holds
    its own alive lock), or 'interrupted' (that lock is free: it died without recording its end)."""
    if recorded_run == writing_run:
        return "writing"
    return "interrupted" if is_dead(store.alive_lock(recorded_run)) else "running"


def frame_titles(settings: Settings, model_meta: dict | None) -> dict[str, str]:
    """Frame names in words, from labels/frames.toml; the model's own names where it is absent."""
    if (settings.labels_dir / FRAMES_FILE).is_file():
        return {f.name: f.title for f in load_frames(settings.labels_dir)}
    names = (model_meta or {}).get("frames") or []
    return {name: name.replace("_", " ").capitalize() for name in names}
