"""Throughput of champion prediction: sentences per second on N synthetic news-like sentences.

Run: PYTHONPATH=. .venv/bin/python bench/bench_classify.py [N]
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from rhetoric.labels import load_frames, load_labels
from rhetoric.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def sentences(n: int, seed: int = 1) -> list[str]:
    """N distinct news-like sentences: the start of one labelled sentence joined to the end of another."""
    frames = load_frames(ROOT / "labels")
    pool = [t.split() for t in load_labels(ROOT / "labels", frames)["text"]]
    rng = random.Random(seed)
    out = []
    for i in range(n):
        head, tail = rng.choice(pool), rng.choice(pool)
        cut_head, cut_tail = rng.randint(3, max(3, len(head) - 1)), rng.randint(0, max(0, len(tail) - 4))
        out.append(" ".join(head[:cut_head] + [str(rng.randint(1, 2030))] + tail[cut_tail:]))
    return out


def main(n: int = 100_000) -> None:
    model = Registry(ROOT / "models").champion()
    if model is None:
        print("no champion in models/; run `rhetoric train` first")
        return
    texts = sentences(n)
    model.predict(texts[:1000])
    words = sum(len(t.split()) for t in texts) / n
    print(f"{n} synthetic sentences, {words:.1f} words on average")
    for batch in (n, 5000):
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, n, batch):
            model.predict(texts[i:i + batch])
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"champion {model.version}, batches of {batch}: {elapsed:.2f} s wall, {n / elapsed:,.0f} sentences/s "
              f"({n / cpu:,.0f} per CPU-second)")

if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
