"""The ingestion pipeline as a Prefect flow: read, prepare, store, classify, chart.

Tasks work on whole batches (a Prefect task costs milliseconds, a flow run about a
second), and only the I/O steps retry.
"""

from __future__ import annotations

import uuid

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from rhetoric import pipeline
from rhetoric.config import Settings, folder_source, load_settings
from rhetoric.ingest import IngestBatch, RawArticle
from rhetoric.registry import Registry, ensure_champion
from rhetoric.store import NewArticle, Store


@task(name="read-sources", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def read_sources(settings: Settings) -> IngestBatch:
    """Read every configured source into one batch of raw articles."""
    return pipeline.read_sources(settings)


@task(name="prepare-articles", cache_policy=NO_CACHE)
def prepare_articles(raw: list[RawArticle]):
    """Clean, split into sentences and hash the whole batch."""
    return pipeline.prepare_articles(raw)


@task(name="store-articles", retries=2, retry_delay_seconds=[1, 5], cache_policy=NO_CACHE)
def store_articles(store: Store, prepared: list[NewArticle], run_id: str):
    """Write the batch in one transaction (a retry cannot half-write)."""
    return pipeline.store_articles(store, prepared, run_id)


@task(name="load-champion", cache_policy=NO_CACHE)
def load_champion(settings: Settings):
    """The champion model from the registry (trained on first use)."""
    return ensure_champion(settings.models_dir, settings.labels_dir)


@task(name="classify", cache_policy=NO_CACHE)
def classify(store: Store, model, batch_size: int) -> int:
    """Score every sentence the champion has not scored: new ones, or all after a promotion."""
    return pipeline.classify_stale(store, model, batch_size)


@task(name="write-dashboard", retries=1, cache_policy=NO_CACHE)
def write_dashboard(store: Store, settings: Settings, model) -> str:
    """Rebuild outputs/index.html from the store."""
    history = Registry(settings.models_dir).history()
    return str(pipeline.write_dashboard(store, settings, model.metadata, history))


@flow(name="rhetoric-run", log_prints=False)
def run_pipeline(sources: list[str] | None = None, db: str | None = None, out: str | None = None,
                 models: str | None = None, root: str = ".") -> pipeline.RunSummary:
    """Ingest new articles from the sources, classify their sentences, store them and refresh the charts.

    Args:
        sources: extra folders to read, added to those in rhetoric.toml (default: seeds/).
        db: store URL (default: RHETORIC_DB, else a SQLite file under .rhetoric/).
        out: folder for the dashboard (default: outputs/).
        models: model registry folder (default: models/).
        root: project folder holding rhetoric.toml, labels/ and the defaults.
    """
    settings = load_settings(root, overrides={"db_url": db, "out_dir": out, "models_dir": models},
                             extra_sources=tuple(folder_source(s) for s in sources or ()))
    return run_with_settings(settings)


def run_with_settings(settings: Settings) -> pipeline.RunSummary:
    """The body of the flow, for callers that already hold settings (serve, tests)."""
    logger = get_run_logger()
    run_id = str(flow_run.get_id() or uuid.uuid4())
    store = pipeline.open_store(settings)
    summary = pipeline.RunSummary(run_id=run_id)
    store.start_run(run_id)
    try:
        batch = read_sources(settings)
        prepared, refused = prepare_articles(batch.articles)
        summary.refusals = batch.refusals + refused
        summary.warnings = batch.warnings
        added = store_articles(store, prepared, run_id)
        summary.articles_new = len(added.new_article_ids)
        summary.articles_already = added.already_stored
        summary.sentences_new = added.new_sentences
        summary.new_by_outlet = pipeline.new_by_outlet(prepared, added)
        model = load_champion(settings)
        summary.model_version = model.version
        summary.sentences_scored = classify(store, model, settings.batch_size)
        summary.chart_path = write_dashboard(store, settings, model)
    except BaseException:
        store.finish_run(run_id, "failed", summary.counts(), summary.details())
        raise
    store.finish_run(run_id, "completed", summary.counts(), summary.details())
    logger.info("run %s: %d new articles, %d refused, %d sentences classified",
                run_id, summary.articles_new, len(summary.refusals), summary.sentences_scored)
    return summary
