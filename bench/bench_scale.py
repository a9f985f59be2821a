"""Benchmark one `rhetoric run` of N synthetic articles into PostgreSQL: wall time, throughput, peak memory.

Writes N articles with bench_pipeline.write_corpus, starts a scratch PostgreSQL with
scripts/pg_scratch.sh (or uses --db), makes a project with `rhetoric init`, starts the
project's Prefect server (so the temporary server's start-up and memory stay out of the
figures), then runs `python -m rhetoric.cli run --source CORPUS --db URL` once and prints:
wall time, articles/s, sentences/s, the run's peak memory (its maximum RSS from wait4,
which covers the process and its children; the flow runs in-process) and the peak of the
summed RSS of its process tree sampled from /proc, and the articles and sentences stored.
Asserts nothing.

    python bench/bench_scale.py [--articles 100000] [--db URL] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_pipeline import write_corpus  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--db", help="store URL (default: a scratch PostgreSQL from scripts/pg_scratch.sh)")
    parser.add_argument("--keep", type=Path, help="keep the corpus, project and scratch server's folder here")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="rhetoric-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # as root, pg_scratch.sh runs the server as postgres, which must reach work/pg
    corpus, project, pg_dir = work / "corpus", work / "project", work / "pg"
    python = [sys.executable, "-m", "rhetoric.cli"]
    if not corpus.exists():
        began = time.perf_counter()
        write_corpus(corpus, args.articles)
        print(f"corpus: {args.articles:,} articles written in {time.perf_counter() - began:.0f} s", flush=True)
    db = args.db or start_postgres(pg_dir)
    if not project.exists():
        check([*python, "init", str(project)], ROOT)
    check([*python, "server", "start"], project)
    try:
        wall, peak_kib, (tree_kib, tree_at), output = measured([*python, "run", "--source", str(corpus), "--db", db], project)
    finally:
        subprocess.run([*python, "server", "stop"], cwd=project, capture_output=True)
    articles, sentences, timings = stored_counts(db)
    print(f"articles: {args.articles:,} written, {articles:,} stored   sentences stored: {sentences:,}")
    print(f"rhetoric run: {wall:,.0f} s   {articles / wall:,.0f} articles/s   {sentences / wall:,.0f} sentences/s")
    print(f"peak memory: {peak_kib / 1024:,.0f} MiB max RSS of the run (wait4), "
          f"{tree_kib / 1024:,.0f} MiB peak summed RSS of its process tree (sampled, {tree_at:,.0f} s into the run)")
    if timings:
        print("stages (s): " + ", ".join(f"{stage} {seconds:,.1f}" for stage, seconds in timings.items()))
    print("last lines of the run:\n  " + "\n  ".join(output.strip().splitlines()[-5:]))
    if not args.db and not args.keep:
        subprocess.run(["bash", str(ROOT / "scripts" / "pg_scratch.sh"), "stop", str(pg_dir)], check=False)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def start_postgres(folder: Path) -> str:
    """A scratch PostgreSQL server's URL (scripts/pg_scratch.sh prints `export RHETORIC_TEST_POSTGRES_URL=...`)."""
    printed = check(["bash", str(ROOT / "scripts" / "pg_scratch.sh"), "start", str(folder)], ROOT)
    return printed.strip().splitlines()[-1].split("=", 1)[1]


def check(cmd: list[str], cwd: Path) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def measured(cmd: list[str], cwd: Path) -> tuple[float, int, tuple[int, float], str]:
    """Run cmd; its wall time, its max RSS (KiB, from wait4), the peak summed RSS of its process tree (KiB) and
    when it was sampled (seconds after the start), and its output."""
    out = (cwd / "run-output.txt").open("w+", encoding="utf-8")
    began = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True)
    sampler = TreeSampler(child.pid)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    sampler.stop()
    out.seek(0)
    output = out.read()
    out.close()
    if child.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({child.returncode}):\n{output[-3000:]}")
    return wall, usage.ru_maxrss, (sampler.peak_kib, sampler.peak_at), output


class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and its descendants from /proc every 0.2 s; keeps the peak and when."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_kib, self.peak_at, self._done = pid, 0, 0.0, threading.Event()

    def run(self) -> None:
        began = time.perf_counter()
        while not self._done.wait(0.2):
            rss = sum(_rss_kib(p) for p in _tree(self.pid))
            if rss > self.peak_kib:
                self.peak_kib, self.peak_at = rss, time.perf_counter() - began

    def stop(self) -> None:
        self._done.set()
        self.join()


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as fh:
                    parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * PAGE // 1024
    except (OSError, IndexError, ValueError):
        return 0


def stored_counts(db: str) -> tuple[int, int, dict]:
    """Articles and sentences in the store, and the stage timings its last run recorded (if it records them)."""
    from rhetoric.store import Store

    store = Store(db)
    try:
        summary = store.corpus_summary()
    finally:
        store.close()
    details = json.loads((summary["last_run"] or {}).get("details") or "{}")
    return summary["articles"], summary["sentences"], details.get("timings") or {}


if __name__ == "__main__":
    main()
