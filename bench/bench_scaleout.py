"""Scale-out on one machine: the prefect.yaml deployment, a process work pool, N workers, one PostgreSQL store.

Starts a throwaway PostgreSQL server (scripts/pg_scratch.sh), the project's Prefect server
(flows.server.start_server), a process work pool, and deploys `rhetoric-hourly` from
prefect.yaml (pull step pointed at this checkout, no schedule). Two sources of
--articles/2 synthetic articles each, a share of the second being near-duplicate wire
copies of the first, are run as two flow runs at once: once with two workers, once with
one, each on an empty store. Prints, per configuration: articles stored against
expected, duplicate content hashes, sentences stored and unscored, wall time from submitting
both runs to both ending, and throughput (input articles per second) against one worker.

    python bench/bench_scaleout.py [--articles 20000] [--copies 0.2] [--keep DIR]

Needs PostgreSQL's server binaries (Debian's `postgresql`) and the `postgres` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_pipeline import write_corpus  # noqa: E402

POOL = "rhetoric-bench"
DEPLOYMENT = "rhetoric-run/rhetoric-hourly"


def make_sources(work: Path, articles: int, copies: float) -> tuple[Path, Path, int]:
    """Two folders of articles/2 each; `copies` of the second are re-bylined copies of the first.

    Returns both folders and the number of distinct stories (what the store should hold).
    """
    half = articles // 2
    first, second = work / "wire-a", work / "wire-b"
    write_corpus(first, half)
    write_corpus(second, half, offset=half, seed=11)
    rng = random.Random(3)
    copied = rng.sample(range(half), int(half * copies))
    for k, i in enumerate(copied):
        original = (first / f"a{i:06d}.txt").read_text(encoding="utf-8")
        title, _, body = original.partition("\n\n")
        target = second / f"a{half + k:06d}.txt"  # replaces an article of the second source
        target.write_text(f"{title} (wire copy)\n\nMOSCOW (Wire B) -\n\n{body}", encoding="utf-8")
    return first, second, 2 * half - len(copied)


def start_postgres(work: Path) -> str:
    out = subprocess.run(["bash", str(ROOT / "scripts" / "pg_scratch.sh"), "start", str(work / "pg")],
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench: could not start PostgreSQL: {out.stderr.strip()}")
    return re.search(r"=(\S+)", out.stdout).group(1)


def reset_store(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def deploy(work: Path, env: dict) -> None:
    text = (ROOT / "prefect.yaml").read_text(encoding="utf-8")
    text = text.replace("directory: /srv/rhetoric", f"directory: {ROOT}").replace("name: rhetoric\n      work_queue",
                                                                                  f"name: {POOL}\n      work_queue")
    text = re.sub(r"\n    schedules:\n(      .*\n)+", "\n", text)
    spec = work / "prefect.yaml"
    spec.write_text(text, encoding="utf-8")
    prefect = [sys.executable, "-m", "prefect", "--no-prompt"]
    for command in (["work-pool", "create", POOL, "--type", "process", "--overwrite"],
                    ["deploy", "--prefect-file", str(spec), "--name", "rhetoric-hourly"]):
        out = subprocess.run(prefect + command, cwd=ROOT, env=env, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"bench: prefect {' '.join(command)} failed:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")


def run_config(workers: int, sources: list[Path], project: Path, db: str, env: dict, work: Path) -> dict:
    """Start the workers, submit one flow run per source at once, wait for both; return figures."""
    reset_store(db)
    logs = [open(work / f"worker-{workers}-{i}.log", "wb") for i in range(workers)]
    procs = [subprocess.Popen([sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--limit", "1",
                               "--name", f"bench-{workers}-{i}"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True) for i, log in enumerate(logs)]
    try:
        time.sleep(5)  # let the workers register before the runs are due
        began = time.perf_counter()
        ids = [_submit(env, {"sources": [str(s)], "db": db, "root": str(project),
                             "out": str(project / "outputs")}) for s in sources]
        states = _wait(env, ids)
        wall = time.perf_counter() - began
    finally:
        for proc in procs:
            os.killpg(proc.pid, 15)
        for proc in procs:
            proc.wait(timeout=30)
        for log in logs:
            log.close()
    return {"workers": workers, "wall": wall, "states": states, **_count(db)}


def _submit(env: dict, parameters: dict) -> str:
    code = ("import json, sys\nfrom prefect.deployments import run_deployment\n"
            f"run = run_deployment({DEPLOYMENT!r}, parameters=json.loads(sys.argv[1]), timeout=0)\n"
            "print(run.id)\n")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(parameters)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench: could not submit the run:\n{out.stderr[-2000:]}")
    return out.stdout.strip().splitlines()[-1]


def _wait(env: dict, ids: list[str], timeout: float = 3600) -> list[str]:
    code = ("import sys, time\nfrom prefect import get_client\n"
            "with get_client(sync_client=True) as client:\n"
            "    while True:\n"
            "        states = [client.read_flow_run(i).state for i in sys.argv[1:]]\n"
            "        if all(s and s.is_final() for s in states):\n"
            "            print(' '.join(s.name for s in states)); break\n"
            "        time.sleep(1)\n")
    out = subprocess.run([sys.executable, "-c", code, *ids], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=timeout)
    return out.stdout.split()


def _count(db: str) -> dict:
    from sqlalchemy import create_engine, text

    engine = create_engine(db)
    with engine.connect() as conn:
        one = lambda q: conn.execute(text(q)).scalar()  # noqa: E731
        figures = {
            "articles": one("SELECT count(*) FROM articles"),
            "sources": one("SELECT count(*) FROM article_sources"),
            "sentences": one("SELECT count(*) FROM sentences"),
            "unscored": one("SELECT count(*) FROM sentences s WHERE NOT EXISTS "
                            "(SELECT 1 FROM scores p WHERE p.sentence_id = s.id)"),
            "duplicate_hashes": one("SELECT count(*) - count(DISTINCT content_hash) FROM articles"),
            "runs": one("SELECT string_agg(status, ',' ORDER BY started) FROM runs"),
        }
    engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000, help="articles over both sources (default 20000)")
    parser.add_argument("--copies", type=float, default=0.2, help="share of source B copied from A (default 0.2)")
    parser.add_argument("--keep", type=Path, help="keep the work folder here")
    args = parser.parse_args()

    from flows.server import start_server, stop_server

    work = Path(tempfile.mkdtemp(prefix="rhetoric-scaleout-")) if not args.keep else args.keep
    work.mkdir(parents=True, exist_ok=True)
    work.chmod(0o755)  # the scratch PostgreSQL runs as the postgres user when we are root
    project = work / "project"
    subprocess.run([sys.executable, "-m", "rhetoric.cli", "init", str(project)], check=True, capture_output=True)
    (project / "rhetoric.toml").write_text("[settings]\nlock_wait = 3600\n", encoding="utf-8")
    sources = make_sources(work, args.articles, args.copies)
    expected = sources[2]
    db = start_postgres(work)
    state = project / ".rhetoric"
    try:
        record, _ = start_server(state)
        env = {**os.environ, "PREFECT_API_URL": record.api_url, "PREFECT_HOME": str(work / "prefect-home"),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1",
               "PREFECT_WORKER_QUERY_SECONDS": "1"}  # a worker polls every 10 s by default
        deploy(work, env)
        print(f"{args.articles:,} articles in two sources, {expected:,} distinct stories "
              f"({args.articles - expected:,} near-duplicate copies); store: PostgreSQL; Prefect: {record.ui_url}")
        results = [run_config(n, list(sources[:2]), project, db, env, work) for n in (2, 1)]
        for r in results:
            r["input"] = args.articles
    finally:
        stop_server(state)
        subprocess.run(["bash", str(ROOT / "scripts" / "pg_scratch.sh"), "stop", str(work / "pg")],
                       capture_output=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    one = next(r for r in results if r["workers"] == 1)
    print(f"{'workers':>7} {'wall s':>7} {'articles/s':>10} {'vs 1':>5} {'stored':>14} {'duplicates':>10} "
          f"{'sentences':>9} {'unscored':>8}  runs")
    for r in results:
        print(f"{r['workers']:>7} {r['wall']:>7.1f} {r['input'] / r['wall']:>10.0f} "
              f"{one['wall'] / r['wall']:>5.2f} {r['articles']:>6,}/{expected:<7,} {r['duplicate_hashes']:>10} "
              f"{r['sentences']:>9,} {r['unscored']:>8}  {' '.join(r['states'])} ({r['runs']})")


if __name__ == "__main__":
    main()
