"""How long a chunk's prepared articles take to come back from a helper while the run's own thread is busy.

A run's helper (rhetoric.parallel) prepares the next chunk while the run's main thread stores
and classifies the one before; a thread of the run waits for the helper's result. This script
prepares a chunk of N synthetic articles (bench_pipeline's generator) once, then has a child
process send that result back R times, two ways, alternating, with a thread of this process
spinning in pure Python meanwhile (as the run's main thread is busy):

- pipe: the child pickles onto a pipe, this process unpickles from it (pickle.load), as
  rhetoric.parallel did up to the ninth stop;
- socket: rhetoric.parallel.send_message / receive_message over a socket pair, the message's
  length first and the pickle read in one call that waits for all of it (MSG_WAITALL).

It prints, per way, the median [min-max] seconds from the start of the wait to the result in
hand, and how long the child was blocked writing. Asserts nothing.

    PYTHONPATH=. python bench/bench_transport.py [--articles 2500] [--repeat 5] [--idle]
"""

from __future__ import annotations

import argparse
import pickle
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_pipeline import synthetic_article  # noqa: E402
from rhetoric import parallel  # noqa: E402
from rhetoric.ingest import RawArticle  # noqa: E402
from rhetoric.prepare import prepare_articles  # noqa: E402

# The child: load the message, wait for the word, then send it and report how long its writing took.
CHILD = r"""
import pickle, socket, sys, time
sys.path.insert(0, sys.argv[3])
from rhetoric import parallel
message = pickle.load(open(sys.argv[2], "rb"))
way = sys.argv[1]
if way == "socket":
    channel = socket.socket(fileno=0)
    channel.recv(1)
    began = time.perf_counter()
    parallel.send_message(channel, message)
else:
    sys.stdin.buffer.read(1)
    began = time.perf_counter()
    pickle.dump(message, sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
    sys.stdout.flush()
sys.stderr.write(f"{time.perf_counter() - began:.4f}\n")
"""


def spin(stop: threading.Event) -> None:
    """Pure-Python work that holds the GIL, as the run's main thread does while it stores and classifies."""
    total = 0
    while not stop.is_set():
        for i in range(1000):
            total += i


def one(way: str, path: Path) -> tuple[float, float]:
    """(seconds waiting for the message, seconds the child spent writing it)."""
    if way == "socket":
        mine, theirs = socket.socketpair()
        child = subprocess.Popen([sys.executable, "-c", CHILD, way, str(path), str(ROOT)], stdin=theirs,
                                 stderr=subprocess.PIPE, text=True)
        theirs.close()
        time.sleep(1.0)  # the child has loaded its message
        mine.sendall(b"go")
        began = time.perf_counter()
        parallel.receive_message(mine)
        mine.close()
    else:
        child = subprocess.Popen([sys.executable, "-c", CHILD, way, str(path), str(ROOT)], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False)
        time.sleep(1.0)
        child.stdin.write(b"g")
        child.stdin.flush()
        began = time.perf_counter()
        pickle.load(child.stdout)
    waited = time.perf_counter() - began
    writing = float(child.stderr.read())
    child.wait()
    return waited, writing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--idle", action="store_true", help="no busy thread in this process")
    args = parser.parse_args()
    rng = random.Random(7)
    raw = [RawArticle(source=f"a{i:06d}.txt", text=synthetic_article(rng, i)[1]) for i in range(args.articles)]
    result = prepare_articles(raw)
    blob = pickle.dumps((True, result), protocol=pickle.HIGHEST_PROTOCOL)
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as handle:
        handle.write(blob)
    path = Path(handle.name)
    stop = threading.Event()
    busy = None if args.idle else threading.Thread(target=spin, args=(stop,), daemon=True)
    if busy:
        busy.start()
    figures: dict[str, list[tuple[float, float]]] = {"pipe": [], "socket": []}
    try:
        for _ in range(args.repeat):
            for way in figures:
                figures[way].append(one(way, path))
    finally:
        stop.set()
        path.unlink()
    print(f"a prepared chunk of {args.articles:,} articles: {len(blob) / 1e6:.1f} MB pickled; "
          f"{'no busy thread' if args.idle else 'a thread of this process busy meanwhile'}; "
          f"median [min-max] of {args.repeat}")
    for way, runs in figures.items():
        waits, writes = [w for w, _ in runs], [w for _, w in runs]
        print(f"{way:<7} result in hand after {statistics.median(waits):.3f} s [{min(waits):.3f}-{max(waits):.3f}]"
              f"   the helper writing for {statistics.median(writes):.3f} s")


if __name__ == "__main__":
    main()
