"""How many lines of real text the cleaner drops as boilerplate, by kind, on ../shared/corpora.

Every paragraph of the four corpora goes through the cleaner's line classifier; the script prints,
per corpus and kind (caption, teaser, signoff, byline, timestamp), how many lines it drops, and
a sample of each kind so that a person can check they are boilerplate. Prints; asserts nothing.

    python bench/bench_boilerplate.py [--corpora ../shared/corpora] [--samples 3]
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

from rhetoric.corpora import CORPORA, _records
from rhetoric.text import _boilerplate_kind, normalise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpora")
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    total_lines = 0
    counts: Counter = Counter()
    samples: dict[tuple[str, str], list[str]] = defaultdict(list)
    for name, corpus in CORPORA.items():
        for _, record in _records(args.corpora / corpus.file):
            text = str(record.get("text", ""))
            if name == "ungdc":  # hard-wrapped at ~50 columns: lines of a paragraph are joined, as the reader does
                text = "\n".join(" ".join(block.split()) for block in text.split("\n\n"))
            for raw in text.splitlines():
                line = normalise(raw)
                if not line:
                    continue
                total_lines += 1
                kind = _boilerplate_kind(line)
                if kind:
                    counts[(name, kind)] += 1
                    if len(samples[(name, kind)]) < args.samples:
                        samples[(name, kind)].append(line[:140])
    print(f"{total_lines:,} non-empty raw lines read")
    for (name, kind), n in sorted(counts.items()):
        print(f"{name:<10} {kind:<10} {n:>7,}")
        for line in samples[(name, kind)]:
            print(f"             e.g. {line}")
    print(f"dropped as boilerplate: {sum(counts.values()):,} lines")


if __name__ == "__main__":
    main()
