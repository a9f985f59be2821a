"""The steps of one pipeline run as plain functions; flows/pipeline.py orchestrates them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rhetoric.config import Settings
from rhetoric.ingest import IngestBatch, RawArticle, Refusal, read_folder
from rhetoric.store import AddResult, NewArticle, Store
from rhetoric.text import article_sentences, content_hash


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
                "chart_path": self.chart_path}

    def render(self) -> str:
        """The human summary of the run."""
        lines = [
            f"run {self.run_id}",
            f"articles: {self.articles_new} new, {self.articles_already} already stored, "
            f"{len(self.refusals)} refused",
        ]
        lines += [f"  refused {r.source}: {r.reason}" for r in self.refusals]
        lines += [f"  warning: {w}" for w in self.warnings]
        lines.append(f"sentences: {self.sentences_new} new, {self.sentences_scored} classified")
        lines.append(f"model version: {self.model_version}")
        lines.append(f"chart: {self.chart_path}")
        return "\n".join(lines)


def open_store(settings: Settings) -> Store:
    """The store named by the settings, with its schema in place."""
    store = Store(settings.resolved_db_url())
    store.create_schema()
    return store


def read_sources(settings: Settings) -> IngestBatch:
    """Read every folder source of the settings into one batch."""
    batch = IngestBatch()
    for spec in settings.sources:
        if spec.kind == "folder":
            batch.extend(read_folder(spec, settings.max_bytes))
    return batch


def prepare_articles(raw: list[RawArticle]) -> tuple[list[NewArticle], list[Refusal]]:
    """Clean, split and hash each article; refuse those with no text left after cleaning."""
    prepared: list[NewArticle] = []
    refused: list[Refusal] = []
    for article in raw:
        sentences = article_sentences(article.text, article.title)
        if not sentences:
            refused.append(Refusal(article.source, "no article text left after removing boilerplate"))
            continue
        prepared.append(NewArticle(
            content_hash=content_hash(sentences), sentences=sentences, source=article.source,
            title=article.title or sentences[0], published=article.published, outlet=article.outlet,
            url=article.url, canonical_url=article.url, author=article.author,
        ))
    return prepared, refused


def store_articles(store: Store, prepared: list[NewArticle], run_id: str) -> AddResult:
    """Store the prepared articles in one transaction."""
    return store.add_articles(prepared, run_id)


def classify_stale(store: Store, model, batch_size: int = 5000) -> int:
    """Score every stored sentence the champion has not scored yet (new ones, or all after a promotion)."""
    store.drop_other_frames(model.frames)
    scored = 0
    for ids, texts in store.iter_stale(model.version, model.frames, batch_size):
        labels, scores = model.predict(texts)
        store.write_predictions(ids, model.frames, labels, scores, model.version)
        scored += len(ids)
    return scored


def new_by_outlet(prepared: list[NewArticle], added: AddResult) -> dict[str, int]:
    """How many new articles each outlet brought."""
    new_hashes = set()
    counts: dict[str, int] = {}
    duplicate_sources = set(added.duplicate_of)
    for article in prepared:
        if article.source in duplicate_sources or article.content_hash in new_hashes:
            continue
        new_hashes.add(article.content_hash)
        outlet = article.outlet or "unknown"
        counts[outlet] = counts.get(outlet, 0) + 1
    return counts


def write_dashboard(store: Store, settings: Settings, model_meta: dict | None, history: list[dict]) -> Path:
    """Build the dashboard from the store and write it to OUT/index.html."""
    from rhetoric.charts.page import dashboard_html
    from rhetoric.labels import load_frames
    from rhetoric.trends import dashboard_data

    frames = load_frames(settings.labels_dir)
    data = dashboard_data(store, {f.name: f.title for f in frames}, model_meta, history)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    path = settings.out_dir / "index.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(dashboard_html(data), encoding="utf-8")
    tmp.replace(path)
    return path
