"""Profile one `rhetoric run`'s stages on N synthetic articles, without Prefect.

Calls the package functions in the order flows/pipeline.py does (pipeline.ingest's read,
dedupe, prepare and store per chunk, then classify, rates, dashboard) on a temporary SQLite store: once plainly, for the
seconds, sentences per second and share of each stage, and the run's cost on top of
classifying against classify alone (the champion's predict on the same sentences); then
again on a fresh store under cProfile, for each stage's functions with the most own time
(cProfile inflates code that makes many small calls: read its shares and call counts, not
its seconds). Wall times on a shared machine are noisy. Asserts nothing.

    PYTHONPATH=. python bench/profile_pipeline.py [--articles 10000] [--corpus DIR] [--top 8]
        [--stage prepare] [--dump DIR] [--no-profile] [--rerun] [--batch-size N]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_pipeline import write_corpus  # noqa: E402


class Stages:
    """Runs each stage, under its own profiler when profiling, and keeps its time."""

    def __init__(self, profiled: bool) -> None:
        self.profiled = profiled
        self.seconds: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.profiles: dict[str, cProfile.Profile] = {}

    def run(self, name: str, call, *args):
        began, began_cpu = time.perf_counter(), time.process_time()
        if self.profiled:
            result = self.profiles.setdefault(name, cProfile.Profile()).runcall(call, *args)
        else:
            result = call(*args)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - began
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - began_cpu
        return result


def one_run(stages: Stages, settings, store, run_id: str = "profile-run") -> tuple[int, object]:
    """The body of flows.pipeline._ingest_and_classify for folder sources; returns (new sentences, model).

    Reading, preparing, checking for repeats and storing go through pipeline.ingest, a chunk of
    settings.batch_size articles at a time, as in the flow; its own timings split them into
    stages (under the profiler they share one profile, "ingest").
    """
    from rhetoric import pipeline
    from rhetoric.dashboard import write_dashboard
    from rhetoric.ingest import IngestBatch
    from rhetoric.prepare import score_share
    from rhetoric.registry import Registry, ensure_champion
    from rhetoric.summary import RunSummary

    summary = RunSummary(run_id=run_id)
    lock = store.run_lock()
    model = stages.run("load model", ensure_champion, settings.models_dir, settings.labels_dir)
    began, began_cpu = time.perf_counter(), time.process_time()
    stages.run("ingest", pipeline.ingest, store, settings, summary, IngestBatch(), lock, None, pipeline.store_articles,
               lambda prepared, added: pipeline.classify_chunk(store, model, prepared, added, settings.batch_size),
               score_share(model))
    lock.release()
    wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    del stages.seconds["ingest"], stages.cpu["ingest"]
    inner = {k: v for k, v in summary.timings.items() if k != "lock wait"}
    for name, seconds in inner.items():  # CPU shared out in proportion to each stage's wall time
        stages.seconds[name] = seconds
        stages.cpu[name] = cpu * seconds / max(sum(inner.values()), 1e-9)
    stages.seconds["read"] = stages.seconds.get("read", 0.0) + wall - sum(summary.timings.values())
    stages.run("classify", pipeline.classify_stale, store, model, settings.batch_size)
    stages.run("rates", store.unreadable_articles, pipeline.model_languages(model))
    stages.run("rates", pipeline.frame_shares, store, run_id)
    evidence = stages.run("rates", pipeline.correction_evidence, store, settings, model)
    history = Registry(settings.models_dir).history()
    stages.run("dashboard", write_dashboard, store, settings, model.metadata, history, evidence, run_id)
    return summary.sentences_new, model


def top_functions(profile: cProfile.Profile, n: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(n)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return "\n".join("    " + line.replace(str(ROOT) + "/", "") for line in lines[start:] if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--corpus", type=Path, help="an existing corpus folder (default: write one)")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--top", type=int, default=8, help="functions shown per stage")
    parser.add_argument("--stage", action="append", help="show the top functions of these stages only")
    parser.add_argument("--dump", type=Path, help="write each stage's profile to DIR/STAGE.prof")
    parser.add_argument("--no-profile", action="store_true", help="time the stages only")
    parser.add_argument("--batch-size", type=int, help="articles a chunk (default: the setting's default)")
    parser.add_argument("--rerun", action="store_true",
                        help="time and profile a second run on the same store, which finds nothing new")
    args = parser.parse_args()

    began = time.perf_counter()
    import rhetoric.pipeline  # noqa: F401  what `import flows.pipeline` brings of the package
    imported = time.perf_counter() - began
    began = time.perf_counter()
    import rhetoric.charts.page  # noqa: F401  what the run imports later, where it is used
    import rhetoric.model  # noqa: F401
    import rhetoric.trends  # noqa: F401
    import scipy.stats  # noqa: F401
    later = time.perf_counter() - began
    print(f"imports: rhetoric.pipeline {imported:.2f} s, then the model, charts and trends {later:.2f} s "
          "(before the stages, so that their figures are work)")
    work = Path(tempfile.mkdtemp(prefix="rhetoric-profile-"))
    try:
        corpus = args.corpus
        if corpus is None:
            corpus = work / "corpus"
            write_corpus(corpus, args.articles)
        shutil.copytree(ROOT / "labels", work / "labels")
        timed, sentences, texts, predict = measured_run(work, corpus, args.models, "timed", False, args.rerun,
                                                        args.batch_size)
        report(timed, sentences, len(texts), predict, args.rerun)
        if not args.no_profile:
            profiled, *_ = measured_run(work, corpus, args.models, "profiled", True, args.rerun, args.batch_size)
            show_profiles(profiled, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measured_run(work: Path, corpus: Path, models: Path, name: str, profiled: bool, rerun: bool = False,
                 batch_size: int | None = None):
    """One run on a fresh store (and with rerun, a second one that finds nothing new, whose stages are
    returned); returns its stages, the sentences stored, their texts and predict's seconds."""
    from rhetoric import pipeline
    from rhetoric.config import SourceSpec, load_settings

    settings = replace(load_settings(work), sources=(SourceSpec("folder", str(corpus)),),
                       db_url=f"sqlite:///{work / f'{name}.db'}", models_dir=models, out_dir=work / name)
    if batch_size:
        settings = replace(settings, batch_size=batch_size)
    store = pipeline.open_store(settings)
    stages = Stages(profiled)
    store.start_run("profile-run")
    sentences, model = one_run(stages, settings, store)
    store.finish_run("profile-run", "completed", {})
    if rerun:  # the same sources again: nothing new to store or classify
        stages = Stages(profiled)
        store.start_run("profile-rerun")
        one_run(stages, settings, store, "profile-rerun")
        store.finish_run("profile-rerun", "completed", {})
    texts = store.sentence_texts()["text"].tolist()
    store.close()
    began = time.perf_counter()
    model.predict(texts)
    return stages, sentences, texts, time.perf_counter() - began


def report(stages: Stages, sentences: int, n_texts: int, predict: float, rerun: bool) -> None:
    total = sum(stages.seconds.values())
    cpu = sum(stages.cpu.values())
    if rerun:
        print(f"rerun with nothing new on a store of {n_texts:,} sentences: {total:.2f} s ({cpu:.2f} s of CPU)")
        for name, seconds in stages.seconds.items():
            print(f"{name:<12}{seconds:>9.3f}{seconds / total:>8.0%}")
        return
    print(f"sentences stored: {sentences:,}   run without Prefect: {total:.1f} s ({cpu:.1f} s of CPU)")
    print(f"{'stage':<12}{'seconds':>9}{'CPU s':>8}{'sentences/s':>14}{'share':>8}")
    for name, seconds in stages.seconds.items():
        print(f"{name:<12}{seconds:>9.2f}{stages.cpu[name]:>8.2f}{sentences / seconds:>14,.0f}{seconds / total:>8.0%}")
    on_top = total - stages.seconds["classify"] - stages.seconds["load model"]
    print(f"classify alone (the champion's predict on the {n_texts:,} stored sentences): {predict:.2f} s")
    print(f"the run on top of classifying: {on_top:.2f} s = {on_top / predict:.2f}x classify; "
          f"the whole run but loading the model: {(total - stages.seconds['load model']) / predict:.2f}x")


def show_profiles(stages: Stages, args) -> None:
    for name, profile in stages.profiles.items():
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            profile.dump_stats(args.dump / f"{name.replace(' ', '_')}.prof")
        if args.stage and name not in args.stage:
            continue
        print(f"\n== {name}: {pstats.Stats(profile).total_tt:.2f} s under cProfile; functions by own time")
        print(top_functions(profile, args.top))


if __name__ == "__main__":
    main()
