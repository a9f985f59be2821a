"""What the exports, the audit and the dashboard read from the store: each aggregate in as few queries as it takes."""

from __future__ import annotations

from typing import Iterable, Sequence

import pandas as pd
from sqlalchemy import exists, func, select, text as sql_text

from rhetoric.store.schema import article_sources, articles, predictions, sentences
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
        preds = select(predictions.c.sentence_id, predictions.c.frame, predictions.c.label,
                       predictions.c.score, predictions.c.model_version)
        with self.engine.connect() as conn:
            table = pd.DataFrame(conn.execute(base).all(), columns=[
                "sentence_id", "source", "published", "outlet", "title", "url", "language", "idx", "text"])
            scored = pd.DataFrame(conn.execute(preds).all(),
                                  columns=["sentence_id", "frame", "label", "score", "model_version"])
        return _widen(table, scored, frames)

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

        Only labelled predictions are aggregated (a few percent of the table), then articles
        without a label for a frame get a zero row: 5x faster than grouping every prediction.
        """
        labelled = (select(sentences.c.article_id, predictions.c.frame, func.count(), func.sum(predictions.c.score))
                    .select_from(predictions.join(sentences, sentences.c.id == predictions.c.sentence_id))
                    .where(predictions.c.label == 1)
                    .group_by(sentences.c.article_id, predictions.c.frame))
        scored = (select(articles.c.id, articles.c.published, articles.c.outlet, articles.c.n_sentences)
                  .where(exists(select(predictions.c.sentence_id)
                                .join(sentences, sentences.c.id == predictions.c.sentence_id)
                                .where(sentences.c.article_id == articles.c.id))))
        # plain tuples: pandas asks every SQLAlchemy Row for a dtype first, which took half of this method
        with self.engine.connect() as conn:
            counts = pd.DataFrame(list(map(tuple, conn.execute(labelled).all())),
                                  columns=["article_id", "frame", "count", "score_sum"])
            table = pd.DataFrame(list(map(tuple, conn.execute(scored).all())),
                                 columns=["article_id", "published", "outlet", "sentences"])
            frames = [f for (f,) in conn.execute(select(predictions.c.frame).distinct())]
        grid = table.merge(pd.DataFrame({"frame": pd.Series(frames, dtype=object)}), how="cross")
        counts["frame"] = counts["frame"].astype(object)
        frame = grid.merge(counts, on=["article_id", "frame"], how="left").fillna({"count": 0, "score_sum": 0.0})
        frame["published"] = pd.to_datetime(frame["published"])
        frame["outlet"] = frame["outlet"].fillna("unknown")
        return frame[["article_id", "published", "outlet", "frame", "sentences", "count", "score_sum"]].astype(
            {"article_id": "int64", "sentences": "int64", "count": "int64", "score_sum": "float64"})

    def top_sentences(self, frame: str, limit: int = 200) -> pd.DataFrame:
        """The highest-scoring sentences labelled with this frame."""
        query = (select(sentences.c.id, articles.c.id, articles.c.published, articles.c.outlet,
                        articles.c.title, articles.c.url, articles.c.source, sentences.c.idx,
                        sentences.c.text, predictions.c.score)
                 .select_from(predictions.join(sentences, sentences.c.id == predictions.c.sentence_id)
                              .join(articles, articles.c.id == sentences.c.article_id))
                 .where(predictions.c.frame == frame, predictions.c.label == 1)
                 .order_by(predictions.c.score.desc()).limit(limit))
        with self.engine.connect() as conn:
            table = pd.DataFrame(conn.execute(query).all(), columns=[
                "sentence_id", "article_id", "published", "outlet", "title", "url", "source",
                "idx", "text", "score"])
        table["published"] = pd.to_datetime(table["published"])
        return table

    def cooccurrence(self) -> pd.DataFrame:
        """Sentences labelled with both frames of each pair (a frame with itself: its own count)."""
        query = sql_text(
            "SELECT a.frame AS frame_a, b.frame AS frame_b, COUNT(*) AS count "
            "FROM predictions a JOIN predictions b ON a.sentence_id = b.sentence_id "
            "WHERE a.label = 1 AND b.label = 1 AND a.frame <= b.frame GROUP BY a.frame, b.frame")
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=["frame_a", "frame_b", "count"])

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
            versions = [v for (v,) in conn.execute(select(predictions.c.model_version).distinct())]
            languages = {language: int(n) for language, n in conn.execute(
                select(articles.c.language, func.count()).where(articles.c.language.is_not(None))
                .group_by(articles.c.language))}
        return {"languages": languages, "articles": n_articles, "sentences": n_sentences, "first_published": first,
                "last_published": last, "undated_articles": undated, "outlets": outlets,
                "last_run": self.last_run(), "model_versions": versions}

    def content_token(self) -> list:
        """Figures that change whenever what the dashboard shows of the store changes: the store's address, and
        the row count and highest id of articles, their sources and sentences, and the number of predictions
        (classifying, rescoring and dropping frames all change it; versions are named by the model)."""
        with self.engine.connect() as conn:
            figures = [conn.execute(select(func.count(), func.max(table.c.id))).one()
                       for table in (articles, article_sources, sentences)]
            scored = conn.execute(select(func.count()).select_from(predictions)).scalar_one()
        return [self.engine.url.render_as_string(hide_password=True), *[list(f) for f in figures], scored]

    def run_frame_counts(self, run_id: str) -> pd.DataFrame:
        """Per frame: sentences of the articles a run added that carry a prediction, and how many are labelled."""
        query = (select(predictions.c.frame, func.count(), func.sum(predictions.c.label))
                 .select_from(predictions.join(sentences, sentences.c.id == predictions.c.sentence_id)
                              .join(articles, articles.c.id == sentences.c.article_id))
                 .where(articles.c.run_id == run_id)
                 .group_by(predictions.c.frame).order_by(predictions.c.frame))
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).all(), columns=["frame", "sentences", "labelled"])


def _widen(table: pd.DataFrame, scored: pd.DataFrame, frames: Sequence[str]) -> pd.DataFrame:
    frames = list(frames)
    labels = scored.pivot(index="sentence_id", columns="frame", values="label")
    scores = scored.pivot(index="sentence_id", columns="frame", values="score")
    versions = scored.groupby("sentence_id")["model_version"].first()
    out = table.set_index("sentence_id")
    for frame in frames:
        # a sentence left unclassified (a language the model cannot read) keeps empty cells, not 0
        out[frame] = labels[frame].reindex(out.index).astype("Int64") if frame in labels else pd.NA
    for frame in frames:
        out[f"score_{frame}"] = scores[frame].reindex(out.index) if frame in scores else float("nan")
    out["model_version"] = versions.reindex(out.index)
    return out.reset_index()
