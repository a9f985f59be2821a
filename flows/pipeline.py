"""The ingestion pipeline as a Prefect flow: read, fetch, prepare, store, classify, chart, report.

Tasks work on whole batches (a Prefect task costs milliseconds, a flow run about a
second): one task fetches each feed, one fetches each source's new pages, and folders are
read, prepared, stored and classified batch_size articles at a time (rhetoric.pipeline.ingest),
one prepare, one store and one classify-new task per chunk, the next chunk prepared (by helper
processes) while one is stored and classified. Only the I/O steps retry. A feed or page that
still fails after its retries becomes a refusal in the run summary; the run itself completes.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run
from prefect.tasks import exponential_backoff
from prefect.utilities.annotations import quote

from rhetoric import dashboard, fetch, network, pipeline, prepare
from rhetoric.config import Settings, SourceSpec, cli_source, load_settings
from rhetoric.dedupe import canonical_url
from rhetoric.ingest import IngestBatch, NewArticle, RawArticle, Refusal
from rhetoric.registry import Registry, ensure_champion
from rhetoric.store import Store
from rhetoric.summary import RunSummary


def _transient(task, task_run, state) -> bool:
    """Retry only what may work next time: connection errors, timeouts, HTTP 5xx."""
    return isinstance(state.result(raise_on_failure=False), fetch.FetchFailed)


@task(name="fetch-feed", cache_policy=NO_CACHE, retry_condition_fn=_transient)
def fetch_feed(spec: SourceSpec, options: fetch.HttpOptions) -> fetch.FeedListing:
    """Fetch and parse one RSS/Atom feed (retried on transient failures)."""
    return fetch.read_feed(spec, options)


@task(name="fetch-pages", cache_policy=NO_CACHE, retry_condition_fn=_transient)
def fetch_pages(refs: list[fetch.PageRef], options: fetch.HttpOptions,
                progress: fetch.PageProgress) -> IngestBatch:
    """Fetch and extract one source's new pages; a retry fetches only the pages that failed."""
    return fetch.fetch_pages(refs, options, progress)


@task(name="prepare-articles", cache_policy=NO_CACHE)
def prepare_articles(raw: list[RawArticle], workers: int, local: bool, scoring: prepare.ScoreShare | None = None):
    """Clean, split into sentences and sign the whole batch, on `workers` processes (0: one per core); without
    local, all on helper processes (the run is storing and classifying the chunk before), which then score
    what they prepared until the run asks for it (scoring: rhetoric.prepare.score_while_waiting)."""
    return prepare.prepare_chunk(raw, workers, local, scoring)


@task(name="store-articles", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def store_articles(store: Store, prepared: list[NewArticle], run_id: str,
                   duplicate_of: dict[int, int] | None = None):
    """Write the batch in one transaction (a retry cannot half-write); repeats become extra sources, rows the
    database refuses become refusals."""
    return pipeline.store_articles(store, prepared, run_id, duplicate_of)


@task(name="classify-new", cache_policy=NO_CACHE)
def classify_new(store: Store, model, prepared: list[NewArticle], added, batch_size: int) -> int:
    """Score the sentences of a chunk's new articles, as soon as they are stored."""
    return pipeline.classify_chunk(store, model, prepared, added, batch_size)


@task(name="classify", cache_policy=NO_CACHE)
def classify(store: Store, model, batch_size: int) -> int:
    """Score every sentence the champion has not scored yet: all of them after a promotion, else what an
    earlier run left."""
    return pipeline.classify_stale(store, model, batch_size)


@task(name="write-dashboard", retries=1, cache_policy=NO_CACHE)
def write_dashboard(store: Store, settings: Settings, model, evidence: dict, run_id: str) -> str:
    """Rebuild outputs/index.html from the store."""
    history = Registry(settings.models_dir).history()
    return str(dashboard.write_dashboard(store, settings, model.metadata, history, evidence, run_id=run_id))


@flow(name="rhetoric-run", log_prints=False)
def run_pipeline(sources: list[str] | None = None, db: str | None = None, out: str | None = None,
                 models: str | None = None, root: str = ".") -> RunSummary:
    """Ingest new articles from the sources, classify their sentences, store them and refresh the charts.

    Args:
        sources: extra sources added to those in rhetoric.toml (default: seeds/): a folder,
            or an http(s) address of an RSS/Atom feed.
        db: store URL (default: RHETORIC_DB, else a SQLite file under .rhetoric/).
        out: folder for the dashboard (default: outputs/).
        models: model registry folder (default: models/).
        root: project folder holding rhetoric.toml, labels/ and the defaults.
    """
    settings = load_settings(root, overrides={"db_url": db, "out_dir": out, "models_dir": models},
                             extra_sources=tuple(cli_source(s) for s in sources or ()))
    return run_with_settings(settings)


def run_with_settings(settings: Settings) -> RunSummary:
    """The body of the flow, for callers that already hold settings (serve, tests).

    Runs on one store may overlap, from any project folder and under any spelling of the
    store's address: each reads, fetches and prepares its articles on its own, then takes
    the store's run lock (rhetoric.locking) to check for duplicates, store and classify,
    waiting up to settings.lock_wait seconds before it skips. Each run also holds a lock
    on itself until it ends, so a row left "running" by a killed run is recognised as dead.
    """
    logger = get_run_logger()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    store = pipeline.open_store(settings)
    summary = RunSummary(run_id=run_id)
    alive = store.alive_lock(run_id)
    alive.acquire(settings.lock_wait)  # a run id is unique: only a retried flow run finds its lock taken
    try:
        store.start_run(run_id)
        dead = store.mark_interrupted(except_run=run_id)
        if dead:
            summary.warnings.append(f"{dead} earlier run(s) ended without recording it (killed?); "
                                    "marked interrupted")
        dashboard.remove_dead_partials(store, settings)
        with network.stop_on_signals(chain=True):  # SIGINT/SIGTERM stop every fetch at once, then end the run
            status = _ingest_and_classify(settings, store, summary)
        store.finish_run(run_id, status, summary.counts(), summary.details())
    except BaseException as exc:
        stopped = isinstance(exc, KeyboardInterrupt) or network.STOP.is_set()  # SIGTERM reaches here as Prefect's
        _record_end(store, summary, "interrupted" if stopped else "failed")
        raise
    finally:
        alive.end()
        store.close()  # now, not when the process ends: SQLite checkpoints its write-ahead log as it closes
    if summary.skipped:
        logger.warning("run %s skipped: %s", run_id, summary.skipped)
    else:
        logger.info("run %s: %d new articles, %d refused, %d failed sources, %d sentences classified",
                    run_id, summary.articles_new, len(summary.refusals), len(summary.source_failures),
                    summary.sentences_scored)
    _publish(summary)
    return summary


def _record_end(store: Store, summary: RunSummary, status: str) -> None:
    """Record how a run that did not complete ended, if the store lets us; else the next run marks it interrupted."""
    try:
        store.finish_run(summary.run_id, status, summary.counts(), summary.details())
    except Exception as exc:  # never hide the error that stopped the run behind this one
        get_run_logger().warning("run %s: could not record its end as %s: %s", summary.run_id, status,
                                 str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _ingest_and_classify(settings: Settings, store: Store, summary: RunSummary) -> str:
    """Read and prepare without the run lock; check duplicates, store and classify holding it; then chart.

    Returns how the run ended: "completed", or "skipped" when the lock stayed taken for lock_wait seconds.
    """
    timed = summary.timed
    with timed("read"):
        live, summary.source_failures, stored_pages = read_live_sources(settings, store)
    summary.articles_already += stored_pages
    lock = store.run_lock()
    with timed("load model"):  # not a task: verifying costs milliseconds; unpickled when there is text to score
        model = ensure_champion(settings.models_dir, settings.labels_dir, lazy=True)
    scoring = prepare.score_share(model)  # a helper that prepared a chunk scores it while the run is busy
    # folders then live, settings.batch_size articles at a time: read, skip, prepare (the next chunk while
    # this one is stored); the lock taken to store each chunk and score its new sentences
    taken = pipeline.ingest(
        store, settings, summary, live, lock,
        prepare=lambda raw, local: prepare_articles.submit(quote(raw), settings.workers, local, scoring),
        write=lambda s, prepared, run, dup: store_articles(s, quote(prepared), run, dup),
        classify=lambda prepared, added: classify_new(store, model, quote(prepared), quote(added),
                                                      settings.batch_size))
    if not taken:
        waited = f"waited {settings.lock_wait:g} s (lock_wait in rhetoric.toml); " if settings.lock_wait else ""
        summary.skipped = (f"another run is writing to this store ({lock.holder()}); {waited}"
                           "this one stops here and the next one picks up what is new")
        return "skipped"
    summary.model_version = model.version
    try:
        with timed("classify"):
            summary.sentences_scored += classify(store, model, settings.batch_size)
    finally:
        lock.release()
    with timed("rates"):
        summary.languages = pipeline.model_languages(model)
        summary.unreadable = store.unreadable_articles(summary.languages)
        summary.frame_shares = pipeline.frame_shares(store, summary.run_id)
        evidence = pipeline.correction_evidence(store, settings, model)
    summary.rates = evidence
    with timed("dashboard"):
        summary.chart_path = write_dashboard(store, settings, model, evidence, summary.run_id)
    return "completed"


def read_live_sources(settings: Settings, store: Store) -> tuple[IngestBatch, list[Refusal], int]:
    """Fetch the feeds, then the pages not stored yet, one task per source; feeds run side by side.

    Returns the fetched articles (with refused pages), the sources that could not be read, and
    how many listed pages were stored already (not fetched again; they count as already stored).
    """
    specs = pipeline.live_sources(settings)
    batch, failures = IngestBatch(), []
    if not specs:
        return batch, failures, 0
    options = fetch.HttpOptions.from_settings(settings)
    attempts = settings.fetch_retries + 1
    retry = {"retries": settings.fetch_retries,
             "retry_delay_seconds": exponential_backoff(settings.retry_backoff) if settings.retry_backoff else 0}
    feeds = {i: fetch_feed.with_options(**retry).submit(spec, options)
             for i, spec in enumerate(specs) if spec.kind == "feed"}
    groups = []  # in config order, so the first source to carry a story is its stored original
    for i, spec in enumerate(specs):
        if spec.kind == "urls":
            groups.append(fetch.url_pages(spec))
            continue
        listing = feeds[i].result(raise_on_failure=False)
        if isinstance(listing, BaseException):
            failures.append(Refusal(spec.location, f"feed not read after {attempts} attempt(s): {listing}"))
        elif listing.failure:
            failures.append(Refusal(spec.location, listing.failure))
        else:
            batch.warnings.extend(listing.warnings)
            groups.append(listing.pages)
    fetched, stored = _fetch_new_pages(store, groups, options, retry, attempts)
    fetch.check_stop()  # a signal cut the fetching short: end the run rather than store a partial batch
    batch.extend(fetched)
    return batch, failures, stored


def _fetch_new_pages(store: Store, groups: list[list[fetch.PageRef]], options: fetch.HttpOptions,
                     retry: dict, attempts: int) -> tuple[IngestBatch, int]:
    """One fetch-pages task per source for the pages not read before, by their own address (a canonical
    link another page declares does not count: Store.known_urls).

    Returns the fetched pages and how many listed pages were already stored.
    """
    listed = [ref for refs in groups for ref in refs]
    known = set(store.known_urls([canonical_url(ref.url) for ref in listed] + [ref.url for ref in listed]))
    already = len({canonical_url(ref.url) for ref in listed if canonical_url(ref.url) in known or ref.url in known})
    running = []
    for refs in groups:
        fresh = fetch.unseen(refs, known)
        known.update(canonical_url(ref.url) for ref in fresh)
        if fresh:
            progress = fetch.PageProgress()
            running.append((progress, fetch_pages.with_options(**retry).submit(fresh, options, progress)))
    batch = IngestBatch()
    for progress, future in running:
        outcome = future.result(raise_on_failure=False)
        batch.extend(progress.batch(attempts if isinstance(outcome, BaseException) else None))
    return batch, already


def _publish(summary: RunSummary) -> None:
    """Prefect artifacts of the run: the Markdown summary, this run's frame shares, the dashboard link."""
    logger = get_run_logger()
    try:
        create_markdown_artifact(key="rhetoric-run-summary", markdown=summary.markdown(),
                                 description=f"rhetoric run {summary.run_id}")
        if summary.frame_shares:
            create_table_artifact(key="rhetoric-frame-shares", table=summary.frame_shares,
                                  description="Share of this run's new sentences labelled with each frame")
        if summary.chart_path:
            create_link_artifact(key="rhetoric-dashboard", link=Path(summary.chart_path).resolve().as_uri(),
                                 link_text="rhetoric dashboard", description="The refreshed trend charts")
    except Exception as exc:  # artifacts explain a run; failing to publish one must not fail it
        logger.warning("could not publish the run's Prefect artifacts: %s", exc)
