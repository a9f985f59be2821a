"""Benchmark `rhetoric run` and `rhetoric classify` on N synthetic articles.

Prints: wall time, sentences per second and peak memory of a first run, the time of a
second run with nothing new, classify's time on the same sentences, and the pipeline's
cost per sentence (first run minus the re-run) against classify's. Asserts nothing.

    python bench/bench_pipeline.py [--articles 10000] [--models models/] [--repeat 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import csv
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


def write_corpus(folder: Path, n: int) -> None:
    rng = random.Random(7)
    folder.mkdir(parents=True)
    start = date(2019, 1, 1)
    with (folder / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "published", "outlet", "title", "url"])
        for i in range(n):
            title, text = synthetic_article(rng, i)
            name = f"a{i:06d}.txt"
            (folder / name).write_text(text, encoding="utf-8")
            writer.writerow([name, (start + timedelta(days=rng.randint(0, 2800))).isoformat(),
                             rng.choice(OUTLETS), title, f"https://example.org/{i}"])


def timed(cmd: list[str], cwd: Path, stdin: str | None = None) -> tuple[float, subprocess.CompletedProcess]:
    began = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
    return elapsed, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--repeat", type=int, default=2,
                        help="rounds; each figure is the fastest round (wall times on a shared machine are noisy)")
    parser.add_argument("--keep", type=Path, help="keep the corpus and store in this folder")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="rhetoric-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "labels", work / "labels", dirs_exist_ok=True)
    corpus = work / "corpus"
    if not corpus.exists():
        write_corpus(corpus, args.articles)
    base = [sys.executable, "-m", "rhetoric.cli"]
    models = ["--models", str(args.models)]
    (work / "empty").mkdir(exist_ok=True)
    rounds = [one_round(base, models, work, corpus, i) for i in range(args.repeat)]
    warm_up, first, second, classify = (min(r[k] for r in rounds) for k in range(4))
    texts, summary, peak_mb = rounds[0][4], rounds[0][5], rounds[0][6]  # round 0: no classify yet

    n = len(texts)
    per_pipeline = (first - second) / n * 1e6
    per_classify = classify / n * 1e6
    print(f"articles: {args.articles:,}   sentences: {n:,}   fastest of {args.repeat} round(s)")
    print(f"rhetoric run (empty folder):  {warm_up:8.1f} s   (start-up and Prefect's temporary server)")
    print(f"rhetoric run (first):        {first:8.1f} s   {n / first:10,.0f} sentences/s   "
          f"peak memory {peak_mb:,.0f} MiB")
    print(f"rhetoric run (nothing new):  {second:8.1f} s   ({second / first:.0%} of the first run)")
    print(f"  above the empty-folder run: first {first - warm_up:.1f} s, nothing new {second - warm_up:.1f} s")
    print(f"rhetoric classify (jsonl):   {classify:8.1f} s   {n / classify:10,.0f} sentences/s")
    print(f"cost per sentence: pipeline {per_pipeline:,.0f} us (first - re-run), classify "
          f"{per_classify:,.0f} us, ratio {per_pipeline / per_classify:.2f}x")
    print("last lines of the first run:\n  " + "\n  ".join(summary.strip().splitlines()[-4:]))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def one_round(base: list[str], models: list[str], work: Path, corpus: Path, i: int):
    """Times of an empty-folder run, a first run, a re-run and classify, in a fresh store."""
    # The empty-folder run also creates Prefect's database on a new PREFECT_HOME (once per
    # installation), which keeps that out of the first run's figure.
    empty, _ = timed(base + ["run", "--source", str(work / "empty"), "--db", f"sqlite:///{work / f'empty{i}.db'}",
                             "--out", str(work / "empty-out"), *models], work)
    db = f"sqlite:///{work / f'bench{i}.db'}"
    run = base + ["run", "--source", str(corpus), "--db", db, "--out", str(work / "out"), *models]
    first, result = timed(run, work)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # largest child so far
    second, _ = timed(run, work)
    timed(base + ["export", "sentences", "--db", db, "--out", str(work / "sentences.csv"), *models], work)
    with (work / "sentences.csv").open(encoding="utf-8") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    classify, _ = timed(base + ["classify", "--format", "jsonl", *models], work, stdin="\n".join(texts) + "\n")
    return empty, first, second, classify, texts, result.stdout, peak_mb


if __name__ == "__main__":
    main()
