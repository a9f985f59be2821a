"""Draw the real-text evaluation sample (labels/eval/real_*.csv) from ../shared/corpora.

Seeded and repeatable. Only documents of the evaluation pool (rhetoric.corpora.in_eval_pool,
a salted hash of each document's id: about 20% of documents) are drawn from, so no
document gives both an evaluation and a training sentence. Within each corpus the pool's
sentences are cut into strata by the frames' topic words (labels/frames.toml `topics`;
the first frame whose topic a sentence mentions, else "other"), and a simple random
sample is drawn from every (corpus, stratum) cell. Each row's `weight` is its cell's size
over the number drawn from it, so weighted figures estimate the whole pool.

    python scripts/sample_eval.py --corpora ../shared/corpora --out /tmp/eval_sample.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rhetoric.corpora import CORPORA, sentence_table, stratified_sample, topic_strata
from rhetoric.labels import load_frames

SEED = 20261129
PER_SOURCE = {"multipolarity": 110, "anti_sanctions": 90, "peace_talks": 70, "anti_hegemony": 90, "other": 260}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"))
    parser.add_argument("--labels", type=Path, default=Path("labels"))
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    frames = load_frames(args.labels)
    table = sentence_table(args.corpora, tuple(CORPORA), pool="eval")
    strata = topic_strata(list(table["text"]), {f.name: f.topics for f in frames})
    sample = stratified_sample(table, strata, PER_SOURCE, SEED)
    sample = sample.sample(frac=1.0, random_state=SEED).reset_index(drop=True)  # labellers see no order
    sample.insert(0, "id", [f"e{i:05d}" for i in range(len(sample))])
    sample.to_csv(args.out, index=False)
    print(f"pool: {len(table)} sentences; sample: {len(sample)}")
    print(sample.groupby(["source", "stratum"]).agg(n=("text", "size"), cell=("cell_size", "first")).to_string())


if __name__ == "__main__":
    main()
