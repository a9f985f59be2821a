"""Benchmark `rhetoric run` and `rhetoric classify` on N synthetic articles, as a user runs them.

Each round works in a fresh project (`rhetoric init`) on the same corpus:

1. one empty-folder run, discarded: it creates Prefect's database;
2. the floor: the median of --floor-runs more empty-folder runs (the fixed cost of any run);
3. the first run on the corpus, and a rerun that finds nothing new;
4. `rhetoric classify` on the stored sentences, and on one sentence (its own floor).

It prints the median over --repeat rounds with the spread (min-max), each run above its
own floor, the pipeline's cost per sentence against classify's, the first run's peak
memory (max RSS of the command) and its per-stage breakdown as the flow recorded it in
the runs table. With --server (the default) the project's Prefect server is started first
(`rhetoric server start`), as a user who runs by hand would; --no-server measures runs
that start Prefect's temporary server each time. Asserts nothing.

    python bench/bench_pipeline.py [--articles 10000] [--repeat 3] [--floor-runs 3] [--no-server] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import sqlite3
import statistics
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTLETS = ["Xinhua", "TASS", "Reuters", "Global Times", "DW", "Al Jazeera", "RT", "The Hindu"]
PEOPLE = ["Wang Yi", "Sergey Lavrov", "Mao Ning", "Maria Zakharova", "Dmitry Peskov", "Lin Jian"]
PLACES = ["Beijing", "Moscow", "Astana", "Kazan", "New Delhi", "Geneva", "St. Petersburg"]
TEMPLATES = [
    "{p} said on {d} that the world is moving towards a multipolar order.",
    "The U.S. imposed new sanctions on {n} companies, the Treasury said on {d}.",
    "{p} called the sanctions \"illegal and counterproductive\" at a briefing in {c}.",
    "Trade between the two countries rose {x}% to ${n}.{m} billion in the first quarter.",
    "{p} met his counterpart in {c} on {d} for talks on bilateral cooperation.",
    "Both sides support a political settlement of the Ukraine crisis through negotiations.",
    "Officials in {c} warned against a Cold War mentality and bloc confrontation.",
    "Mr. {p} arrived in {c} at 9 a.m. local time, Gen. Ivanov told reporters.",
    "The ministers discussed energy, transport and the situation in Afghanistan.",
    "\"We oppose hegemony in all its forms,\" {p} said.",
    "Analysts said the visit was largely symbolic... but it mattered to {c}.",
    "The summit in {c} drew delegations from {n} countries, according to organisers.",
]


def synthetic_article(rng: random.Random, i: int) -> tuple[str, str]:
    fill = lambda t: t.format(p=rng.choice(PEOPLE), c=rng.choice(PLACES), n=rng.randint(2, 400),
                              m=rng.randint(0, 9), x=rng.randint(1, 60), d=f"Feb. {rng.randint(1, 28)}")
    title = f"{rng.choice(PEOPLE)} visits {rng.choice(PLACES)} ({i})"
    paragraphs = [" ".join(fill(rng.choice(TEMPLATES)) for _ in range(rng.randint(1, 3)))
                  for _ in range(rng.randint(6, 12))]
    return title, title + "\n\n" + "\n\n".join(paragraphs) + f"\n\nReference {i}.\n"


def write_corpus(folder: Path, n: int, offset: int = 0, seed: int = 7) -> None:
    """N articles a{offset}..a{offset+n-1}.txt with a manifest; the same seed writes the same corpus."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    start = date(2019, 1, 1)
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "published", "outlet", "title", "url"])
        for i in range(offset, offset + n):
            title, text = synthetic_article(rng, i)
            name = f"a{i:06d}.txt"
            (folder / name).write_text(text, encoding="utf-8")
            writer.writerow([name, (start + timedelta(days=rng.randint(0, 2800))).isoformat(),
                             rng.choice(OUTLETS), title, f"https://example.org/{i}"])


def timed(cmd: list[str], cwd: Path, stdin: str | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MiB and stdout of one command (run under a wrapper that reports its max RSS)."""
    wrapper = ("import resource, subprocess, sys\n"
               "r = subprocess.run(sys.argv[1:], stdin=sys.stdin)\n"
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
               "sys.exit(r.returncode)\n")
    began = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", wrapper, *cmd], cwd=cwd, input=stdin, capture_output=True,
                            text=True)
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
    peak_kib = int(result.stderr.strip().splitlines()[-1])
    return elapsed, peak_kib / 1024, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds (default 3); figures are medians")
    parser.add_argument("--floor-runs", type=int, default=3, help="empty-folder runs per round for the floor")
    parser.add_argument("--server", action=argparse.BooleanOptionalAction, default=True,
                        help="start the project's Prefect server first (default), or use a temporary one per run")
    parser.add_argument("--keep", type=Path, help="keep the corpus and projects in this folder")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="rhetoric-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus"
    if not corpus.exists():
        write_corpus(corpus, args.articles)
    (work / "empty").mkdir(exist_ok=True)
    rounds = [one_round(work, corpus, i, args.floor_runs, args.server) for i in range(args.repeat)]
    report(rounds, args)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def one_round(work: Path, corpus: Path, i: int, floor_runs: int, server: bool) -> dict:
    """The figures of one round, in a fresh project."""
    project = work / f"project{i}"
    shutil.rmtree(project, ignore_errors=True)
    base = [sys.executable, "-m", "rhetoric.cli", "--project", str(project)]
    subprocess.run([sys.executable, "-m", "rhetoric.cli", "init", str(project)], check=True, capture_output=True)
    if server:
        subprocess.run(base + ["server", "start"], check=True, capture_output=True)
    try:
        empty = base + ["run", "--source", str(work / "empty"), "--db", f"sqlite:///{project / 'empty.db'}",
                        "--out", str(project / "empty-out")]
        timed(empty, work)  # Prefect's database is created here; not counted
        floor = statistics.median(timed(empty, work)[0] for _ in range(floor_runs))
        run = base + ["run", "--source", str(corpus)]
        first, peak, _ = timed(run, work)
        rerun, _, _ = timed(run, work)
        db = project / ".rhetoric" / "rhetoric.db"
        timed(base + ["export", "sentences", "--raw", "--out", str(project / "sentences.csv")], work)
        with (project / "sentences.csv").open(encoding="utf-8") as fh:
            texts = [row["text"] for row in csv.DictReader(fh)]
        classify_floor = statistics.median(
            timed(base + ["classify", "--format", "jsonl"], work, stdin=texts[0] + "\n")[0] for _ in range(3))
        classify, _, _ = timed(base + ["classify", "--format", "jsonl"], work, stdin="\n".join(texts) + "\n")
    finally:
        if server:
            subprocess.run(base + ["server", "stop"], capture_output=True)
    return {"floor": floor, "first": first - floor, "rerun": rerun - floor, "classify": classify - classify_floor,
            "classify_floor": classify_floor, "peak": peak, "sentences": len(texts), "stages": stages(db)}


def stages(db: Path) -> dict[str, float]:
    """The per-stage seconds the flow recorded for its first completed run on the corpus."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT details FROM runs WHERE status = 'completed' ORDER BY started").fetchall()
    return json.loads(rows[0][0]).get("timings", {}) if rows else {}


def report(rounds: list[dict], args) -> None:
    def fig(key: str) -> str:
        values = [r[key] for r in rounds]
        return f"{statistics.median(values):7.2f} s  [{min(values):.2f}-{max(values):.2f}]"

    n = rounds[0]["sentences"]
    first = statistics.median(r["first"] for r in rounds)
    classify = statistics.median(r["classify"] for r in rounds)
    mode = "project server running" if args.server else "temporary Prefect server per run"
    print(f"articles: {args.articles:,}   sentences: {n:,}   {mode}   median [min-max] of {len(rounds)} round(s)")
    print(f"floor: rhetoric run on an empty folder     {fig('floor')}   (median of {args.floor_runs} per round)")
    print(f"first run, above the floor                 {fig('first')}   {n / first:,.0f} sentences/s   "
          f"peak memory {statistics.median(r['peak'] for r in rounds):,.0f} MiB")
    print(f"rerun with nothing new, above the floor    {fig('rerun')}")
    print(f"rhetoric classify, above its own start-up  {fig('classify')}   {n / classify:,.0f} sentences/s   "
          f"(start-up {statistics.median(r['classify_floor'] for r in rounds):.2f} s)")
    print(f"pipeline cost per sentence / classify's    {first / classify:7.2f}x")
    names = list(dict.fromkeys(k for r in rounds for k in r["stages"]))
    print("first run by stage, as the flow recorded it (median s): " + ", ".join(
        f"{k} {statistics.median(r['stages'].get(k, 0.0) for r in rounds):.2f}" for k in names))


if __name__ == "__main__":
    main()
