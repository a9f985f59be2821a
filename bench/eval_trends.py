"""How well the trend estimates recover true shares on the held-out articles.

The evaluation split (labels/eval/*.csv) holds whole articles with dates and outlets and
a person's labels on every sentence, so each year's true share of each frame is known.
This script classifies those sentences with the champion, builds the yearly trends table
exactly as `rhetoric export trends --freq Y` does, and prints, per frame and overall, the
mean absolute error of the raw and the adjusted shares against the truth and how often
the 90% band covers it. It prints figures and asserts nothing.

    python bench/eval_trends.py [--labels labels/] [--models models/] [--freq Y]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rhetoric.labels import label_matrix, load_eval_labels, load_frames
from rhetoric.registry import Registry
from rhetoric.trends import trends_table

ROOT = Path(__file__).resolve().parents[1]


def article_totals(table: pd.DataFrame, matrix: np.ndarray, scores: np.ndarray, frames: list[str]) -> pd.DataFrame:
    """Store.article_frame_totals()'s shape, from a labelled (or predicted) sentence matrix."""
    rows = []
    ids = {batch: i for i, batch in enumerate(dict.fromkeys(table["batch"]))}
    for batch, group in table.groupby("batch", sort=False):
        where = group.index.to_numpy()
        for j, frame in enumerate(frames):
            rows.append({"article_id": ids[batch], "published": pd.Timestamp(group["published"].iloc[0]),
                         "outlet": group["outlet"].iloc[0], "frame": frame, "sentences": len(group),
                         "count": int(matrix[where, j].sum()), "score_sum": float(scores[where, j].sum())})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=ROOT / "labels")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--freq", default="Y", choices=("W", "M", "Q", "Y"))
    args = parser.parse_args()

    frames = load_frames(args.labels)
    table = load_eval_labels(args.labels, frames).reset_index(drop=True)
    model = Registry(args.models).champion()
    names = list(model.frames)
    predicted, scores = model.predict(table["text"].tolist())
    truth = label_matrix(table, names)

    estimated = trends_table(article_totals(table, predicted, scores, names), model.metadata.get("rates"),
                             freq=args.freq)
    true = trends_table(article_totals(table, truth, truth.astype(float), names), None, freq=args.freq)
    both = estimated.merge(true[["period", "frame", "share"]].rename(columns={"share": "true_share"}),
                           on=["period", "frame"])
    both["raw_error"] = (both["share"] - both["true_share"]).abs()
    both["adjusted_error"] = (both["adjusted_share"] - both["true_share"]).abs()
    both["covered"] = (both["share_low"] <= both["true_share"] + 1e-12) & (
        both["true_share"] <= both["share_high"] + 1e-12)

    print(f"champion {model.version}; {len(table)} held-out sentences in {table['batch'].nunique()} articles; "
          f"periods: {args.freq} ({both['period'].nunique()})")
    print(f"{'frame':16} {'raw MAE':>8} {'adj MAE':>8} {'covered':>8}")
    for frame, group in both.groupby("frame", sort=False):
        print(f"{frame:16} {group['raw_error'].mean():8.3f} {group['adjusted_error'].mean():8.3f} "
              f"{group['covered'].mean():8.0%}")
    print(f"{'all':16} {both['raw_error'].mean():8.3f} {both['adjusted_error'].mean():8.3f} "
          f"{both['covered'].mean():8.0%}  ({both['covered'].sum()}/{len(both)} true shares inside the band)")
    print("\nper period (true / adjusted [band]):")
    for _, row in both.sort_values(["frame", "period"]).iterrows():
        mark = " " if row["covered"] else "*"
        print(f"  {row['frame']:15} {row['period']}  {row['true_share']:.3f} / {row['adjusted_share']:.3f} "
              f"[{row['share_low']:.3f}, {row['share_high']:.3f}]{mark}")


if __name__ == "__main__":
    main()
