"""The first score of a process: the champion's scorer.npz against unpickling its model.joblib.

Each round starts a fresh interpreter per way, alternating, which verifies the champion
(`Registry.champion(lazy=True)`), loads it and scores one sentence, as a run or
`rhetoric classify` does. Prints the median [min-max] seconds of loading plus the first
score, which heavy packages the process then holds, and whether the two ways gave the same
scores on the reviewed real sentences of labels/real_reviewed.csv. Asserts nothing.

Run: PYTHONPATH=. .venv/bin/python bench/bench_model_load.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WAYS = {"scorer.npz": "champion.predict", "model.joblib": "champion.model.predict"}
CHILD = """
import json, sys, time
from pathlib import Path
from rhetoric.registry import Registry
champion = Registry(Path(sys.argv[1])).champion(lazy=True)
start = time.perf_counter()
{call}(["Russia and China oppose unilateral sanctions and call for a multipolar world."])
seconds = time.perf_counter() - start
held = sorted({{m.split(".")[0] for m in sys.modules}} & {{"sklearn", "joblib"}})
print(json.dumps({{"seconds": seconds, "held": held + (["scipy.stats"] if "scipy.stats" in sys.modules else [])}}))
"""


def first_score(way: str) -> dict:
    code = CHILD.format(call=WAYS[way])
    done = subprocess.run([sys.executable, "-c", code, str(ROOT / "models")], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    return json.loads(done.stdout.splitlines()[-1])


def same_scores() -> str:
    import numpy as np
    import pandas as pd

    from rhetoric.registry import Registry

    champion = Registry(ROOT / "models").champion()
    if champion.scorer_path is None:
        return "the champion has no scorer.npz: it scores from model.joblib"
    texts = pd.read_csv(ROOT / "labels" / "real_reviewed.csv")["text"].astype(str).tolist()
    same = np.array_equal(champion.predict(texts)[1], champion.model.predict(texts)[1])
    return f"same scores on {len(texts):,} reviewed real sentences: {'yes, bit for bit' if same else 'NO'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {way: [] for way in WAYS}
    for _ in range(args.rounds):
        for way in WAYS:
            results[way].append(first_score(way))
    print(f"loading the champion and scoring one sentence in a fresh process, {args.rounds} rounds, alternating:")
    for way, rounds in results.items():
        seconds = [r["seconds"] for r in rounds]
        print(f"  {way:<13} {statistics.median(seconds):.2f} s [{min(seconds):.2f}-{max(seconds):.2f}]   "
              f"holds: {', '.join(rounds[-1]['held']) or 'no scikit-learn, joblib or scipy.stats'}")
    print(same_scores())


if __name__ == "__main__":
    main()
