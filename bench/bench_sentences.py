"""Speed of sentence splitting on a synthetic news corpus.

Builds paragraphs from templates full of abbreviations, numbers and quotes
(fixed random seed), then times `split_sentences` and `article_sentences` and
prints sentences per second. It prints figures; it asserts nothing.

    PYTHONPATH=. .venv/bin/python bench/bench_sentences.py --sentences 200000
"""

from __future__ import annotations

import argparse
import random
import time

from rhetoric.text import article_sentences, split_sentences

NAMES = ["Sergey Lavrov", "Wang Yi", "George W. Bush", "Nikolai Patrushev", "Antony J. Blinken", "Dmitry Peskov"]
TITLES = ["Mr.", "Gen.", "Sen.", "Dr.", "Prof.", "Gov.", "Lt. Col.", "Rep."]
PLACES = ["Moscow", "Beijing", "St. Petersburg", "Washington, D.C.", "Kyiv", "Huangshan", "Geneva"]
MONTHS = ["Jan.", "Feb.", "Aug.", "Sept.", "Oct.", "Nov.", "Dec."]
QUOTES = ["solid as a rock", "no limits", "a multipolar world", "true multilateralism", "unbalanced"]

# Each template is one sentence; {n}, {d}, {name}, ... are filled at random.
TEMPLATES = [
    "{title} {name} told reporters in {place} on {month} {day} that ties were \"{quote}.\"",
    "Trade between the two countries rose to ${n}.{d} billion, up {n}.{d}% from a year earlier.",
    "U.S. officials met {title} {name} at {n} p.m. local time in {place}.",
    "\"Why now?\" asked {title} {name}, who heads the U.N. mission in {place}.",
    "The E.U. and the U.K. said sanctions on Acme Corp. and Globex Inc. would stay.",
    "Former President George W. Bush once called the No. {n} priority \"{quote}.\"",
    "Bilateral trade reached {n}.{d} trillion yuan in {month} {day}, according to customs data.",
    "The talks, which began on {month} {day}, covered energy, grain, arms, etc. and lasted {n} hours.",
    "He said the plan (worth about ${n}.{d} million) was \"{quote}\" and would pass.",
    "The special operation\u2026 and the negotiations continued, the ministry said.",
    "\u201cWe will move towards {quote},\u201d {name} said in a video released by the ministry.",
    "The meeting in {place} ended at {n} a.m. Moscow time without a joint statement.",
    "The ministers agreed on three points: 1. End the war. 2. Lift the sanctions. 3. Hold talks.",
    "Analysts at Goldman Sachs Group Inc. and Nomura Holdings Ltd. expect growth of {n}.{d}%.",
    "But a spokesperson declined to give exact dates for the visit to the U.S.",
]
# A sentence ending in an ambiguous abbreviation splits only before a common starter,
# so the template after it must begin with one.
STARTER_TEMPLATES = [t for t in TEMPLATES if t.split()[0] in {"The", "But", "He"}]


def sentence(rng: random.Random, template: str) -> str:
    """One filled template."""
    return template.format(
        title=rng.choice(TITLES), name=rng.choice(NAMES), place=rng.choice(PLACES), month=rng.choice(MONTHS),
        quote=rng.choice(QUOTES), n=rng.randint(1, 99), d=rng.randint(0, 9), day=rng.randint(1, 28))


def corpus(total: int, seed: int = 13) -> tuple[list[str], int]:
    """Paragraphs of 1-6 sentences; returns them and how many sentences they hold."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    count = 0
    while count < total:
        parts: list[str] = []
        for _ in range(rng.randint(1, 6)):
            after_abbreviation = bool(parts) and parts[-1].endswith("U.S.")
            template = rng.choice(STARTER_TEMPLATES if after_abbreviation else TEMPLATES)
            parts.append(sentence(rng, template))
            count += 3 if template.startswith("The ministers agreed on three") else 1
        paragraphs.append(" ".join(parts))
    return paragraphs, count


def articles(paragraphs: list[str], per_article: int = 12) -> list[str]:
    """Articles of headline + paragraphs with the boilerplate a scraper leaves in."""
    out = []
    for start in range(0, len(paragraphs), per_article):
        body = paragraphs[start:start + per_article]
        out.append("\n".join(["China's top diplomat to meet Putin in Moscow", "20 minutes ago", *body[:3],
                              "READ MORE: China, US, Russia, Pakistan to hold talks on Afghanistan",
                              *body[3:], "Source: TRTWorld and agencies"]))
    return out


def timed(label: str, func, items: list[str]) -> None:
    """Run func over items, print the sentence count and rate."""
    started = time.perf_counter()
    found = sum(len(func(item)) for item in items)
    elapsed = time.perf_counter() - started
    print(f"{label:<20} {found:>9,} sentences in {elapsed:6.2f} s = {found / elapsed:>10,.0f} sentences/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=200_000, help="sentences in the synthetic corpus")
    parser.add_argument("--seed", type=int, default=13, help="random seed for the templates")
    args = parser.parse_args()
    paragraphs, expected = corpus(args.sentences, args.seed)
    docs = articles(paragraphs)
    print(f"corpus: {len(paragraphs):,} paragraphs, {len(docs):,} articles, {expected:,} sentences generated "
          f"(+1 headline per article)")
    timed("split_sentences", split_sentences, paragraphs)
    timed("article_sentences", article_sentences, docs)


if __name__ == "__main__":
    main()
