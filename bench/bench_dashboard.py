"""Time building the dashboard from a store of about 1,000,000 sentences.

Fills a SQLite store with synthetic articles, sentences and predictions (bulk inserts, reused
on later runs unless --rebuild), then times dashboard_data (store queries + estimates) and
dashboard_html (figures + page) and prints the figures.

    PYTHONPATH=. .venv/bin/python bench/bench_dashboard.py [--sentences 1000000] [--db PATH] [--rebuild]
"""

from __future__ import annotations

import argparse
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import func, select

from rhetoric.charts.page import dashboard_html
from rhetoric.store import Store, articles, scores
from rhetoric.trends import dashboard_data

FRAMES = {"multipolarity": "Multipolarity", "anti_sanctions": "Anti-sanctions",
          "peace_talks": "Peace talks", "anti_hegemony": "Anti-hegemony"}
OUTLETS = ["Xinhua", "Global Times", "CGTN", "RT", "TASS", "China Daily", "Sputnik", "PressTV"]
MODEL = "bench-v1"
CHUNK = 200_000


def populate(store: Store, n_sentences: int, seed: int = 0) -> None:
    """Bulk-insert about n_sentences sentences (25 per article on average) and their predictions."""
    rng = np.random.default_rng(seed)
    n_articles = max(1, n_sentences // 25)
    sizes = rng.integers(5, 46, n_articles)
    sizes = np.maximum(1, np.round(sizes * n_sentences / sizes.sum()).astype(int))
    start = date(2019, 1, 1)
    days = rng.integers(0, 5 * 365, n_articles)
    outlets = rng.choice(OUTLETS, n_articles)
    now = datetime.now(timezone.utc).isoformat(" ")
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.executemany(
            "INSERT INTO articles (id, content_hash, title, published, date_missing, outlet, source, url,"
            " n_sentences, created_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
            [(i + 1, f"h{i}", f"Article {i}", (start + timedelta(days=int(days[i]))).isoformat(),
              str(outlets[i]), f"bench/{i}.html", f"https://example.org/{i}", int(sizes[i]), now)
             for i in range(n_articles)])
        article_of = np.repeat(np.arange(1, n_articles + 1), sizes)
        index_in = np.concatenate([np.arange(s) for s in sizes])
        prevalence = rng.uniform(0.02, 0.15, len(FRAMES))
        for first in range(0, len(article_of), CHUNK):
            ids = np.arange(first + 1, min(first + CHUNK, len(article_of)) + 1)
            cur.executemany("INSERT INTO sentences (id, article_id, idx, text) VALUES (?, ?, ?, ?)",
                            [(int(s), int(article_of[s - 1]), int(index_in[s - 1]),
                              f"Synthetic sentence {s} of article {article_of[s - 1]} for the benchmark.")
                             for s in ids])
            raw.commit()
            drawn = np.column_stack([rng.beta(0.5, 0.5 / p, len(ids)) for p in prevalence])
            store.write_predictions(ids.tolist(), FRAMES, drawn >= 0.5, drawn, MODEL, replace=False)
        raw.commit()
    finally:
        raw.close()
    store.start_run("bench", MODEL)
    store.finish_run("bench", "completed", {"articles_new": n_articles, "sentences_new": len(article_of)})


def time_store_reads(store: Store) -> dict[str, float]:
    """Wrap the store's read methods so the run can say where the time went."""
    spent: dict[str, float] = {}
    for name in ("article_frame_totals", "top_sentences", "cooccurrence", "corpus_summary"):
        method = getattr(store, name)

        def timed(*args, _method=method, _name=name, **kwargs):
            began = time.perf_counter()
            try:
                return _method(*args, **kwargs)
            finally:
                spent[_name] = spent.get(_name, 0.0) + time.perf_counter() - began
        setattr(store, name, timed)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1_000_000)
    parser.add_argument("--db", default=".rhetoric/bench_dashboard.db")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    path = Path(args.db)
    if args.rebuild and path.exists():
        path.unlink()
    store = Store(f"sqlite:///{path.resolve()}")
    store.create_schema()
    with store.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(scores)).scalar_one()
    if stored == 0:
        began = time.perf_counter()
        populate(store, args.sentences)
        print(f"populate: {time.perf_counter() - began:.1f} s")
    with store.engine.connect() as conn:
        n_articles = conn.execute(select(func.count()).select_from(articles)).scalar_one()
        n_sentences = conn.execute(select(func.sum(articles.c.n_sentences))).scalar_one()

    rates = {frame: {"tpr": 0.8, "fpr": 0.03} for frame in FRAMES}
    meta = {"version": MODEL, "rates": rates, "metrics": {"eval": {"macro_f1": 0.8}}}
    history = [{"version": MODEL, "promoted_at": "2021-06-01T00:00:00+00:00", "macro_f1": 0.8}]
    spent = time_store_reads(store)
    began = time.perf_counter()
    data = dashboard_data(store, FRAMES, meta, history)
    queried = time.perf_counter()
    page = dashboard_html(data)
    done = time.perf_counter()
    print(f"store: {n_articles:,} articles, {n_sentences:,} sentences, {len(FRAMES)} frames")
    print(f"dashboard_data: {queried - began:.2f} s  ({len(data.trends)} trend rows, freq {data.freq}, "
          f"{len(data.sentences)} drill-down sentences)")
    print("  of which store reads: " + ", ".join(f"{k} {v:.2f} s" for k, v in spent.items()))
    print(f"dashboard_html: {done - queried:.2f} s  ({len(page) / 1e6:.1f} MB page)")
    print(f"total: {done - began:.2f} s (budget 10 s)")


if __name__ == "__main__":
    main()
