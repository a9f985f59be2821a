"""Classifying what is stored: the sentences a model version has yet to score, and writing its predictions."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from rhetoric.errors import StoreError
from rhetoric.store.schema import articles, predictions, sentences
from rhetoric.store.sql import chunks, insert_many, readable, select_in


class Scoring:
    """The classification side of Store (rhetoric.store): a mixin that uses the store's engine."""

    def iter_stale(self, model_version: str, frames: Sequence[str], batch_size: int = 5000,
                   languages: Sequence[str] | None = None) -> Iterator[tuple[list[int], list[str]]]:
        """Batches of (sentence ids, texts) that this model version has not scored on all frames, in id order.

        languages, when given, limits them to articles in those languages (or of unknown
        language, stored before detection existed): text the model cannot read stays unscored.
        Each batch is read when it is asked for (the sentences after the last id yielded), so
        a store of millions of sentences is never in memory at once, and predictions written
        between batches do not disturb the reading.
        """
        # per sentence, its predictions by this version, through the primary key (sentence_id, frame)
        scored = (select(func.count()).select_from(predictions)
                  .where(predictions.c.sentence_id == sentences.c.id, predictions.c.frame.in_(list(frames)),
                         predictions.c.model_version == model_version)
                  .scalar_subquery())
        query = select(sentences.c.id, sentences.c.text).where(scored < len(frames))
        if languages is not None:
            query = query.join(articles, articles.c.id == sentences.c.article_id).where(readable(languages))
        last = None
        while True:
            page = query if last is None else query.where(sentences.c.id > last)
            with self.engine.connect() as conn:
                rows = conn.execute(page.order_by(sentences.c.id).limit(batch_size)).all()
            if not rows:
                return
            yield [r[0] for r in rows], [r[1] for r in rows]
            if len(rows) < batch_size:
                return
            last = rows[-1][0]

    def sentence_positions(self, article_ids: Sequence[int]) -> list[tuple[int, int, int]]:
        """(sentence id, article id, position in the article) of every sentence of these articles, by id."""
        with self.engine.connect() as conn:
            return sorted(tuple(row) for rows in select_in(conn, sentences, ("id", "article_id", "idx"),
                                                            "article_id", [int(a) for a in article_ids])
                          for row in rows)

    def write_predictions(self, sentence_ids: Sequence[int], frames: Sequence[str],
                          labels, scores, model_version: str, replace: bool = True) -> None:
        """Write this model version's predictions for these sentences, in one transaction.

        replace deletes the sentences' earlier predictions first (rescoring after a
        promotion); new sentences have none, and skipping the delete halves the cost.
        """
        count, width = len(sentence_ids), len(frames)
        rows = list(zip(np.repeat(np.asarray(sentence_ids, dtype=np.int64), width).tolist(),
                        list(frames) * count,
                        np.asarray(scores, dtype=float).reshape(-1).tolist(),
                        np.asarray(labels).astype(bool).astype(int).reshape(-1).tolist(),
                        [model_version] * (count * width)))
        try:
            with self.engine.begin() as conn:
                if replace:
                    for chunk in chunks(list(sentence_ids), 500):
                        conn.execute(predictions.delete().where(predictions.c.sentence_id.in_(chunk)))
                insert_many(conn, predictions, ("sentence_id", "frame", "score", "label", "model_version"), rows)
        except SQLAlchemyError as exc:
            raise StoreError(f"could not write predictions (none of this batch was kept): {exc}") from None

    def unreadable_articles(self, languages: Sequence[str]) -> dict[str, int]:
        """Articles in languages outside the given ones, counted per language: stored, never classified."""
        query = (select(articles.c.language, func.count())
                 .where(articles.c.language.is_not(None), articles.c.language.not_in(list(languages)))
                 .group_by(articles.c.language).order_by(func.count().desc(), articles.c.language))
        with self.engine.connect() as conn:
            return {language: int(n) for language, n in conn.execute(query)}

    def drop_predictions_outside(self, languages: Sequence[str]) -> None:
        """Delete predictions of sentences whose article is in a language the model cannot read."""
        unreadable = (select(sentences.c.id).join(articles, articles.c.id == sentences.c.article_id)
                      .where(articles.c.language.is_not(None), articles.c.language.not_in(list(languages))))
        with self.engine.begin() as conn:
            conn.execute(predictions.delete().where(predictions.c.sentence_id.in_(unreadable)))

    def has_other_versions(self, model_version: str) -> bool:
        """Whether any stored prediction was made by another model version (a promotion to catch up on)."""
        with self.engine.connect() as conn:
            return conn.execute(select(predictions.c.sentence_id)
                                .where(predictions.c.model_version != model_version).limit(1)).first() is not None

    def all_scored(self, model_version: str, frames: Sequence[str], languages: Sequence[str]) -> bool:
        """Whether this version scored every frame of every sentence in a readable language (or of unknown
        language): what iter_stale would find nothing for, told by two counts instead of a lookup per sentence
        (0.13 s against 0.45 s on 200,000 sentences). Exact once drop_predictions_outside and
        drop_other_frames have run: a (sentence, frame) pair has one prediction at most, so the counts match
        only when none is missing."""
        to_score = (select(func.count()).select_from(sentences.join(articles, articles.c.id == sentences.c.article_id))
                    .where(readable(languages)))
        made = (select(func.count()).select_from(predictions)
                .where(predictions.c.model_version == model_version, predictions.c.frame.in_(list(frames))))
        with self.engine.connect() as conn:
            return conn.execute(made).scalar_one() >= conn.execute(to_score).scalar_one() * len(frames)

    def drop_other_frames(self, frames: Sequence[str]) -> None:
        """Delete predictions for frames the current taxonomy no longer has."""
        with self.engine.begin() as conn:
            conn.execute(predictions.delete().where(predictions.c.frame.not_in(list(frames))))
