"""The champion saved with skops.io beside joblib: file size, load time, the types skops will not load
untrusted, and whether the scores match. The evidence behind README's "Model files and trust".

skops is not a dependency; install it into a scratch folder to run this:
    .venv/bin/pip install --target /tmp/skops-lib skops
    PYTHONPATH=.:/tmp/skops-lib .venv/bin/python bench/bench_skops.py
Prints figures only; asserts nothing.
"""

from __future__ import annotations

import sys
import tempfile
import time
import zipfile
from pathlib import Path

import joblib
import numpy as np

from rhetoric.labels import load_eval_labels, load_frames
from rhetoric.registry import ARTIFACT, Registry

ROOT = Path(__file__).resolve().parents[1]


def best_of(load, rounds: int = 5) -> tuple[object, float]:
    best, value = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        value = load()
        best = min(best, time.perf_counter() - start)
    return value, best


def main() -> None:
    try:
        import skops.io as sio
    except ImportError:
        print("skops is not installed; see this script's docstring")
        return
    champion = Registry(ROOT / "models").champion()
    if champion is None:
        print("no champion in models/; run `rhetoric train` first")
        return
    path = ROOT / "models" / champion.version / ARTIFACT
    model, joblib_load = best_of(lambda: joblib.load(path))
    texts = list(load_eval_labels(ROOT / "labels", load_frames(ROOT / "labels"))["text"])
    expected = model.predict(texts)[1]
    print(f"champion {champion.version} ({champion.metadata.get('candidate')}), {len(texts)} evaluation sentences")
    print(f"joblib (compress=3)      {path.stat().st_size / 1e6:6.1f} MB   load {joblib_load * 1000:6.0f} ms")
    with tempfile.TemporaryDirectory() as folder:
        for label, options in (("skops (stored)", {}),
                               ("skops (deflated)", {"compression": zipfile.ZIP_DEFLATED, "compresslevel": 6})):
            out = Path(folder) / "model.skops"
            start = time.perf_counter()
            sio.dump(model, out, **options)
            dumped = time.perf_counter() - start
            untrusted = sio.get_untrusted_types(file=out)
            loaded, load = best_of(lambda: sio.load(out, trusted=untrusted))
            same = np.array_equal(loaded.predict(texts)[1], expected)
            print(f"{label:<24} {out.stat().st_size / 1e6:6.1f} MB   load {load * 1000:6.0f} ms   "
                  f"dump {dumped * 1000:5.0f} ms   same scores: {same}")
        print("untrusted types (must be trusted by name to load): " + ", ".join(untrusted))
        features = model.pipeline.named_steps["features"]
        print(f"vocabulary entries stored one JSON node each: {len(features.words_) + len(features.chars_):,}")


if __name__ == "__main__":
    sys.exit(main())
