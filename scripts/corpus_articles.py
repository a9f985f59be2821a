"""Write the training pool of ../shared/corpora as folder sources, to build stores for `rhetoric label suggest`.

Only documents outside the evaluation pool are written (rhetoric.corpora.in_eval_pool), one
folder per corpus with a manifest.csv (published, outlet, title and the document's URL or id),
so that `rhetoric run --source DIR --db URL` stores them and the labelling loop runs on real text:

    python scripts/corpus_articles.py --out /tmp/corpus --every 3
    rhetoric run --source /tmp/corpus/kremlin --db sqlite:////tmp/corpus/kremlin.db
    rhetoric label suggest -n 1500 --random 0.3 --topical 0.35 --db sqlite:////tmp/corpus/kremlin.db

The files are a temporary working copy: they are never committed (labels/ keeps only the
labelled sentences, with their attribution).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rhetoric.corpora import CORPORA, in_eval_pool, read_documents, write_article_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path("../shared/corpora"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--every", type=int, default=1, help="keep every k-th training document (default 1: all)")
    args = parser.parse_args()
    for name in CORPORA:
        documents = [d for d in read_documents(args.corpora, name) if not in_eval_pool(d)][::args.every]
        written = write_article_folder(documents, args.out / name)
        print(f"{name}: {written} documents -> {args.out / name}")


if __name__ == "__main__":
    main()
