"""Draw the real-text evaluation sample (labels/eval/real_*.csv) from ../shared/corpora.

Seeded and repeatable. Only documents of the evaluation pool (rhetoric.corpora.in_eval_pool,
a salted hash of each document's id: about 20% of documents) are drawn from, so no
document gives both an evaluation and a training sentence. Within each corpus the pool's
sentences are cut into strata by the frames' topic words (labels/frames.toml `topics`;
the first frame whose topic a sentence mentions, else "other"), and a simple random
sample is drawn from every (corpus, stratum) cell. Each row's `weight` is its cell's size
over the number drawn from it, so weighted figures estimate the whole pool.

    python scripts/sample_eval.py --corpora ../shared/corpora --out /tmp/eval_sample.csv

Extending a labelled sample: --extend labels/eval/real.csv,labels/eval/real_wikipedia.csv
--more other=750 draws, in every (corpus, stratum) cell named, that many further sentences
from those not drawn yet (a second seeded simple random sample of the remainder: with the
first, a simple random sample of the cell), writes only the new rows, and prints the new
weights of every row (cell size / all drawn from the cell) for the labelled files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rhetoric.corpora import CORPORA, sentence_table, stratified_sample, topic_strata
import pandas as pd

from rhetoric.labels import load_frames, text_key

SEED = 20261129
PER_SOURCE = {"multipolarity": 110, "anti_sanctions": 90, "peace_talks": 70, "anti_hegemony": 90, "other": 260}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"))
    parser.add_argument("--labels", type=Path, default=Path("labels"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--extend", help="comma-separated labelled eval files whose rows are already drawn")
    parser.add_argument("--more", default="", help="stratum=n,...: further sentences per corpus, with --extend")
    args = parser.parse_args()
    frames = load_frames(args.labels)
    table = sentence_table(args.corpora, tuple(CORPORA), pool="eval")
    strata = topic_strata(list(table["text"]), {f.name: f.topics for f in frames})
    if args.extend:
        extend(table, strata, args)
        return
    sample = stratified_sample(table, strata, PER_SOURCE, SEED)
    sample = sample.sample(frac=1.0, random_state=SEED).reset_index(drop=True)  # labellers see no order
    sample.insert(0, "id", [f"e{i:05d}" for i in range(len(sample))])
    sample.to_csv(args.out, index=False)
    print(f"pool: {len(table)} sentences; sample: {len(sample)}")
    print(sample.groupby(["source", "stratum"]).agg(n=("text", "size"), cell=("cell_size", "first")).to_string())


def extend(table: pd.DataFrame, strata, args) -> None:
    """A second-phase draw in the named cells, from the sentences not drawn yet; new weights for all rows."""
    drawn = pd.concat([pd.read_csv(p, keep_default_na=False) for p in args.extend.split(",")])
    taken = set(drawn["text"].map(text_key))
    more = {k: int(v) for k, v in (item.split("=") for item in args.more.split(",") if item)}
    fresh = table.assign(stratum=strata)
    fresh = fresh[~fresh["text"].map(text_key).isin(taken)]
    sample = stratified_sample(fresh.drop(columns="stratum"), fresh["stratum"].to_numpy(), more, SEED + 1)
    sample.insert(0, "id", [f"x{i:05d}" for i in range(len(sample))])
    sample = sample.sample(frac=1.0, random_state=SEED + 1).reset_index(drop=True)
    sample.to_csv(args.out, index=False)
    cells = table.assign(stratum=strata).groupby(["source", "stratum"]).size()
    counts = pd.concat([drawn[["source", "stratum"]], sample[["source", "stratum"]]]).value_counts()
    weights = (cells / counts).dropna().rename("weight").reset_index()
    weights.to_csv(args.out.with_suffix(".weights.csv"), index=False)
    print(f"{len(sample)} new sentences; weights per cell in {args.out.with_suffix('.weights.csv')}")


if __name__ == "__main__":
    main()
