"""What the exports, the audit and the dashboard read from the store: each aggregate in as few queries as it takes."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from sqlalchemy import Numeric, and_, case, cast, exists, false, func, or_, select

from rhetoric.store.frames import scored_frames, stored_frames
from rhetoric.store.schema import (
    article_sources, articles, frame_columns, frame_label, frame_score, scores, scores_table, sentences,
)
from rhetoric.store.sql import select_in


class Reads:
    """The read side of Store (rhetoric.store): a mixin that uses the store's engine."""

    def export_sentences(self, frames: Sequence[str]) -> pd.DataFrame:
        """Every sentence with its article's metadata and one label and score column per frame."""
        base = (select(sentences.c.id.label("sentence_id"), articles.c.source, articles.c.published,
                       articles.c.outlet, articles.c.title, articles.c.url, articles.c.language,
                       sentences.c.idx, sentences.c.text)
                .join(articles, articles.c.id == sentences.c.article_id)
                .order_by(articles.c.id, sentences.c.idx))
        with self.engine.connect() as conn:
            present = set(stored_frames(conn))
            table = pd.DataFrame(conn.execute(base).all(), columns=[
                "sentence_id", "source", "published", "outlet", "title", "url", "language", "idx", "text"])
            kept = scores_table([f for f in frames if f in present])
            scored = pd.DataFrame(conn.execute(select(*kept.c)).all(), columns=[c.name for c in kept.c])
        return _widen(table, scored.set_index("sentence_id"), frames)

    def article_names(self, article_ids: Iterable[int]) -> dict[int, str]:
        """'"Title" (source)' of each stored article among these ids: how a run summary names a repeated story."""
        with self.engine.connect() as conn:
            return {article_id: f'"{title or "untitled"}" ({source})'
                    for rows in select_in(conn, articles, ("id", "title", "source"), "id",
                                           sorted({int(i) for i in article_ids}))
                    for article_id, title, source in rows}

    def texts_by_id(self, sentence_ids: Iterable) -> pd.DataFrame:
        """sentence_id, text of the stored sentences among these ids (audit rows are matched this way)."""
        wanted = sorted({int(i) for i in sentence_ids if str(i).strip().lstrip("-").isdigit()})
        with self.engine.connect() as conn:
            rows = [tuple(row) for found in select_in(conn, sentences, ("id", "text"), "id", wanted) for row in found]
        return pd.DataFrame(rows, columns=["sentence_id", "text"])

    def sentence_texts(self) -> pd.DataFrame:
        """sentence_id, text, source, outlet, published, language of every stored sentence."""
        query = (select(sentences.c.id, sentences.c.text, articles.c.source, articles.c.outlet,
                        articles.c.published, articles.c.language)
                 .join(articles, articles.c.id == sentences.c.article_id))
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).all(),
                                columns=["sentence_id", "text", "source", "outlet", "published", "language"])

    def article_frame_totals(self) -> pd.DataFrame:
        """One row per scored article and frame: its sentences, those labelled, and their summed score.

        Only sentences labelled with some frame are aggregated (a few percent of the scores),
        every frame's sums side by side; articles without a label for a frame get a zero row.
        """
        with self.engine.connect() as conn:
            frames = scored_frames(conn)
            table = scores_table(frames)
            labels = [frame_label(table, f) for f in frames]
            sums = []
            for frame, label in zip(frames, labels):
                sums += [func.sum(label), func.sum(case((label == 1, frame_score(table, frame)), else_=0.0))]
            labelled = (select(sentences.c.article_id, *sums)
                        .select_from(table.join(sentences, sentences.c.id == table.c.sentence_id))
                        .where(or_(false(), *[label == 1 for label in labels]))
                        .group_by(sentences.c.article_id))
            scored = (select(articles.c.id, articles.c.published, articles.c.outlet, articles.c.n_sentences)
                      .where(exists(select(table.c.sentence_id)
                                    .join(sentences, sentences.c.id == table.c.sentence_id)
                                    .where(sentences.c.article_id == articles.c.id)))
                      .order_by(articles.c.id))
            # plain tuples: pandas asks every SQLAlchemy Row for a dtype first, which took half of this method
            counts = list(map(tuple, conn.execute(labelled).all())) if frames else []
            rows = list(map(tuple, conn.execute(scored).all())) if frames else []
        named = [f"{kind}:{f}" for f in frames for kind in ("count", "score_sum")]
        wide = pd.DataFrame(rows, columns=["article_id", "published", "outlet", "sentences"]).merge(
            pd.DataFrame(counts, columns=["article_id", *named]), on="article_id", how="left")
        n = len(wide)
        return pd.DataFrame({
            "article_id": np.repeat(wide["article_id"].to_numpy(dtype="int64"), len(frames)),
            "published": pd.to_datetime(np.repeat(wide["published"].to_numpy(dtype=object), len(frames))),
            "outlet": np.repeat(wide["outlet"].fillna("unknown").to_numpy(dtype=object), len(frames)),
            "frame": pd.Series(frames * n, dtype=object),
            "sentences": np.repeat(wide["sentences"].to_numpy(dtype="int64"), len(frames)),
            "count": wide[[f"count:{f}" for f in frames]].fillna(0).to_numpy(dtype="int64").reshape(-1),
            "score_sum": wide[[f"score_sum:{f}" for f in frames]].fillna(0.0).to_numpy(dtype="float64").reshape(-1),
        })

    def top_sentences(self, frame: str, limit: int = 200) -> pd.DataFrame:
        """The highest-scoring sentences labelled with this frame.

        The best `limit` scores are picked from the scores table alone, and only those
        sentences are joined to their text and article (joining every labelled sentence
        first and sorting after took twice as long in SQLite), read as plain tuples (pandas
        asks every SQLAlchemy Row for a dtype first): the 10k corpus's four frames, 775
        sentences each, in 0.10-0.13 s against 0.13-0.25 s, the same rows in the same order.
        Scores equal to the sixth decimal are ordered by sentence id, so the cut at `limit`, and
        the dashboard's drill-down, is the same on every run over the same corpus: one sentence
        text scored in two batches (by the run, or by a helper ahead of it) can differ in the last
        bits (about 1e-15), which used to decide between tied sentences.
        """
        columns = ["sentence_id", "article_id", "published", "outlet", "title", "url", "source", "idx", "text",
                   "score"]
        with self.engine.connect() as conn:
            rows = []
            if frame in stored_frames(conn):
                table = scores_table([frame])
                score, label = frame_score(table, frame), frame_label(table, frame)
                rank = func.round(cast(score, Numeric), 6)  # numeric: PostgreSQL rounds no double to places
                best = (select(table.c.sentence_id, score.label("score"), rank.label("rank")).where(label == 1)
                        .order_by(rank.desc(), table.c.sentence_id).limit(limit).subquery())
                rows = list(map(tuple, conn.execute(
                    select(sentences.c.id, articles.c.id, articles.c.published, articles.c.outlet, articles.c.title,
                           articles.c.url, articles.c.source, sentences.c.idx, sentences.c.text, best.c.score)
                    .select_from(best.join(sentences, sentences.c.id == best.c.sentence_id)
                                 .join(articles, articles.c.id == sentences.c.article_id))
                    .order_by(best.c.rank.desc(), best.c.sentence_id)).all()))
        table = pd.DataFrame(rows, columns=columns)
        table["published"] = pd.to_datetime(table["published"])
        return table

    def cooccurrence(self) -> pd.DataFrame:
        """Sentences labelled with both frames of each pair (a frame with itself: its own count), in one pass."""
        with self.engine.connect() as conn:
            frames = sorted(scored_frames(conn))
            table = scores_table(frames)
            pairs = [(a, b) for i, a in enumerate(frames) for b in frames[i:]]
            both = [func.sum(case((and_(frame_label(table, a) == 1, frame_label(table, b) == 1), 1), else_=0))
                    for a, b in pairs]
            any_label = or_(false(), *[frame_label(table, f) == 1 for f in frames])
            counts = conn.execute(select(*both).where(any_label)).one() if pairs else ()
        return pd.DataFrame([(a, b, int(n)) for (a, b), n in zip(pairs, counts) if n],
                            columns=["frame_a", "frame_b", "count"])

    def corpus_summary(self) -> dict:
        """Counts, date span, outlets, last run and model versions in use."""
        with self.engine.connect() as conn:
            n_articles, first, last = conn.execute(
                select(func.count(articles.c.id), func.min(articles.c.published),
                       func.max(articles.c.published))).one()
            n_sentences = conn.execute(select(func.count(sentences.c.id))).scalar_one()
            outlets = [o for (o,) in conn.execute(select(articles.c.outlet).distinct()
                                                  .order_by(articles.c.outlet)) if o]
            undated = conn.execute(select(func.count()).where(articles.c.published.is_(None))).scalar_one()
            versions = [v for (v,) in conn.execute(select(scores.c.model_version).distinct())]
            languages = {language: int(n) for language, n in conn.execute(
                select(articles.c.language, func.count()).where(articles.c.language.is_not(None))
                .group_by(articles.c.language))}
        return {"languages": languages, "articles": n_articles, "sentences": n_sentences, "first_published": first,
                "last_published": last, "undated_articles": undated, "outlets": outlets,
                "last_run": self.last_run(), "model_versions": versions}

    def content_token(self) -> list:
        """Figures that change whenever what the dashboard shows of the store changes: the store's address, and
        the row count and highest id of articles, their sources and sentences, when the last article was stored
        (a store emptied and filled again with as many stories has the same counts and ids), and the number of
        predictions (classifying, rescoring and dropping frames all change it; versions are named by the model)."""
        with self.engine.connect() as conn:
            figures = [conn.execute(select(func.count(), func.max(table.c.id))).one()
                       for table in (articles, article_sources, sentences)]
            figures.append(conn.execute(select(func.max(articles.c.created_at))).one())
            frames = sorted(scored_frames(conn))  # the predictions view's rows, counted in one pass of scores
            table = scores_table(frames)
            counts = [func.count(frame_score(table, frame)) for frame in frames]
            scored = sum(conn.execute(select(*counts)).one()) if counts else 0
        return [self.engine.url.render_as_string(hide_password=True), *[list(f) for f in figures], scored]

    def run_frame_counts(self, run_id: str) -> pd.DataFrame:
        """Per frame: sentences of the articles a run added that carry a prediction, and how many are labelled."""
        with self.engine.connect() as conn:
            frames = sorted(scored_frames(conn))
            table = scores_table(frames)
            figures = [agg for f in frames for agg in (func.count(frame_score(table, f)),
                                                        func.coalesce(func.sum(frame_label(table, f)), 0))]
            query = (select(*figures)
                     .select_from(table.join(sentences, sentences.c.id == table.c.sentence_id)
                                  .join(articles, articles.c.id == sentences.c.article_id))
                     .where(articles.c.run_id == run_id))
            values = conn.execute(query).one() if frames else ()
        rows = [(frame, int(values[2 * k]), int(values[2 * k + 1])) for k, frame in enumerate(frames)
                if values[2 * k]]
        return pd.DataFrame(rows, columns=["frame", "sentences", "labelled"])


def _widen(table: pd.DataFrame, scored: pd.DataFrame, frames: Sequence[str]) -> pd.DataFrame:
    out = table.set_index("sentence_id")
    for frame in frames:
        # a sentence left unclassified (a language the model cannot read) keeps empty cells, not 0
        label = frame_columns(frame)[1]
        out[frame] = scored[label].reindex(out.index).astype("Int64") if label in scored else pd.NA
    for frame in frames:
        score = frame_columns(frame)[0]
        out[f"score_{frame}"] = scored[score].reindex(out.index).astype(float) if score in scored else float("nan")
    out["model_version"] = scored["model_version"].reindex(out.index)
    return out.reset_index()
