"""Two workers on one store, a run killed by SIGKILL, Ctrl-C during classify: the store converges and stays clean.

Each test runs the real `rhetoric run` in subprocesses (its own Prefect home each), on SQLite and,
with RHETORIC_TEST_POSTGRES_URL, on PostgreSQL.
"""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path

import pytest

from rhetoric.config import Settings
from rhetoric.store import Store
from tests.conftest import scratch_postgres_url
from tests.http_fixtures import NewsSite, article_page, rss_feed, story
from tests.project_fixtures import ROOT, make_project

pytestmark = pytest.mark.slow

WORDS = ("sanctions ministers talks envoy trade grain port deal council summit partners security energy market "
         "currency alliance treaty border ceasefire delegation economy export pipeline bank reserve dollar yuan "
         "order world leaders officials spokesman harbour freight tariff quota shipment convoy").split()


def random_story(seed: int, sentences: int = 30) -> list[str]:
    """Distinct sentences (no near-duplicate of another seed's story)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(14)).capitalize() + "." for _ in range(sentences)]


def write_article(folder: Path, name: str, title: str, sentences: list[str]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(f"{title}\n\n" + " ".join(sentences) + "\n", encoding="utf-8")


class Site:
    """127.0.0.1 (tests.http_fixtures.NewsSite): feeds that answer only once every feed was asked for (or
    `patience` s passed), so two runs that do not exclude each other are sure to overlap; pages at once;
    /hang answers when released."""

    def __init__(self, feeds: dict[str, str], pages: dict[str, str], patience: float = 10.0):
        self.feeds, self.patience = set(feeds), patience
        self.asked: set[str] = set()
        self.arrived = threading.Condition()
        self.release = threading.Event()
        self.web = NewsSite(gate=self._hold).__enter__()
        for path, body in feeds.items():
            self.add_feed(path, body)
        for path, body in pages.items():
            self.add_page(path, body)

    @property
    def netloc(self) -> str:
        return self.web.netloc

    def url(self, path: str) -> str:
        return self.web.url(path)

    def add_feed(self, path: str, body: str) -> None:
        self.feeds.add(path)
        self.web.add(path, body, content_type="application/rss+xml")

    def add_page(self, path: str, body: str) -> None:
        self.web.add(path, body)

    def _hold(self, path: str) -> None:
        with self.arrived:
            self.asked.add(path)
            self.arrived.notify_all()
            if path in self.feeds:
                self.arrived.wait_for(lambda: self.asked >= self.feeds, timeout=self.patience)
        if path == "/hang":
            self.release.wait(timeout=120)

    def close(self) -> None:
        self.release.set()
        self.web.__exit__(None, None, None)


def configure(project: Path, db: str, feeds: list[str], site: Site, extra: str = "") -> None:
    """rhetoric.toml: the store, a folder source, feeds on the test site, a generous lock_wait."""
    private = (f'allow_private = ["{site.netloc}"]\n'
               if any(f.name == "allow_private" for f in fields(Settings)) else "")
    sources = ['[[source]]\nkind = "folder"\npath = "wire"\n']
    sources += [f'[[source]]\nkind = "feed"\nurl = "{site.url(feed)}"\n' for feed in feeds]
    (project / "rhetoric.toml").write_text(
        f'[settings]\ndb = "{db}"\nlock_wait = 300\nhttp_timeout = 120\nfetch_retries = 0\n{private}{extra}\n'
        + "\n".join(sources), encoding="utf-8")


def start(project: Path, *args: str) -> subprocess.Popen:
    """`rhetoric ARGS` in the project, in a session of its own (a signal reaches it and its Prefect server)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(project / ".prefect-home")}
    env.pop("PREFECT_API_URL", None)
    return subprocess.Popen([sys.executable, "-m", "rhetoric.cli", *args], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def finish(run: subprocess.Popen, timeout: float = 600) -> tuple[str, str]:
    try:
        return run.communicate(timeout=timeout)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_db(request, tmp_path) -> tuple[str, str]:
    """One store under two addresses: for SQLite a symlinked folder with a detour; PostgreSQL's one URL."""
    if request.param == "postgresql":
        url = scratch_postgres_url()
        store = Store(url)
        store.drop_all()
        store.close()
        return url, url
    shared = tmp_path / "shared"
    shared.mkdir()
    (tmp_path / "elsewhere").symlink_to(shared, target_is_directory=True)
    return f"sqlite:///{shared / 'store.db'}", f"sqlite:///{tmp_path / 'elsewhere' / '..' / 'shared' / 'store.db'}"


def test_two_projects_on_one_store_store_each_story_once(tmp_path, shared_db):
    wire = random_story(1)
    copy = list(wire)
    copy[3] = "Officials declined to comment on the delegation before the summit, a spokesman said."
    exact = random_story(2)
    site = Site(feeds={"/a.xml": "", "/b.xml": ""},
                pages={"/a2": article_page("Port fees rise", story("port fees"), published="2024-06-01"),
                       "/b2": article_page("Grain convoy leaves", story("grain convoy"), published="2024-06-02")})
    site.add_feed("/a.xml", rss_feed("Wire A", [{"title": "Port fees", "link": site.url("/a2")}]))
    site.add_feed("/b.xml", rss_feed("Wire B", [{"title": "Grain convoy", "link": site.url("/b2")}]))
    projects = []
    for name, db, own, copy_of_wire in (("a", shared_db[0], 3, wire), ("b", shared_db[1], 4, copy)):
        (tmp_path / name).mkdir()
        project = make_project(tmp_path / name)
        write_article(project / "wire", f"{name}-wire.txt", "Ministers meet on trade", copy_of_wire)
        write_article(project / "wire", f"{name}-exact.txt", "Envoys agree a ceasefire", exact)
        write_article(project / "wire", f"{name}-own.txt", f"Story of {name}", random_story(own))
        configure(project, db, [f"/{name}.xml"], site)
        projects.append(project)
    try:
        runs = [start(project, "run") for project in projects]
        outputs = [finish(run) for run in runs]
    finally:
        site.close()
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0, err[-3000:]
        assert "Traceback" not in err and "refused" in out and "0 refused" in out, out
    store = Store(shared_db[0])
    try:
        table = store.export_sentences(["multipolarity", "anti_sanctions", "peace_talks", "anti_hegemony"])
        summary = store.corpus_summary()
        statuses = store.export_runs()["status"].tolist()
    finally:
        store.close()
    # wire story, exact copy, a's own, b's own, and each feed's page: six stories, each stored once
    assert summary["articles"] == 6, sorted(set(table["source"]))
    assert not table.duplicated(["text"]).any()
    assert table[[c for c in table if c.startswith("score_")]].notna().all().all(), "a sentence was left unscored"
    assert statuses == ["completed", "completed"]


def sqlite_rows(db: Path, query: str) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(query).fetchall()


def test_a_run_killed_mid_run_is_marked_interrupted_by_the_next(tmp_path):
    site = Site(feeds={}, pages={"/hang": article_page("Held", story("held"), published="2024-06-03")})
    project = make_project(tmp_path)
    db = project / "store.db"
    write_article(project / "wire", "first.txt", "A first story", random_story(5))
    site.add_page("/feed.xml", rss_feed("Hanging Wire", [{"title": "Held", "link": site.url("/hang")}]))
    configure(project, f"sqlite:///{db}", ["/feed.xml"], site)
    partial = project / "outputs" / "index.html.tmp"
    try:
        killed = start(project, "run")
        deadline = time.monotonic() + 300  # Prefect's temporary server starts first
        while "/hang" not in site.asked and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "/hang" in site.asked, finish(killed, 5)
        partial.parent.mkdir(exist_ok=True)
        partial.write_text("<html>half a dashb", encoding="utf-8")  # as a kill during the write leaves it
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        assert sqlite_rows(db, "SELECT status FROM runs") == [("running",)]
        (dead_run,), = sqlite_rows(db, "SELECT run_id FROM runs")
        named_partial = partial.with_name(f"index.html.{dead_run}.tmp")  # what a kill during its write leaves
        named_partial.write_text("<html>half a dashb", encoding="utf-8")

        charts = start(project, "charts")
        out, err = finish(charts, 300)
        assert charts.returncode == 0, err[-3000:]
        page = (project / "outputs" / "index.html").read_text(encoding="utf-8")
        assert "(interrupted)</dd>" in page and "this page&#x27;s run" not in page
        status = start(project, "status")
        out, err = finish(status, 300)
        assert status.returncode == 0, err[-3000:]
        assert " interrupted: " in out and " running: " not in out, out

        site.release.set()
        again = start(project, "run")
        out, err = finish(again)
    finally:
        site.close()
    assert again.returncode == 0, err[-3000:]
    assert "1 earlier run(s) ended without recording it" in out
    assert not partial.exists() and not named_partial.exists()
    assert sqlite_rows(db, "SELECT status FROM runs ORDER BY started") == [("interrupted",), ("completed",)]
    assert "this page&#x27;s run" in (project / "outputs" / "index.html").read_text(encoding="utf-8")


def test_ctrl_c_during_classify_stops_at_once_and_the_next_run_completes(tmp_path):
    project = make_project(tmp_path)
    db = project / "store.db"
    for n in range(120):
        write_article(project / "wire", f"{n:03d}.txt", f"Story number {n}", random_story(100 + n, 50))
    # two sentences a batch: classify commits often and lasts seconds, long enough to be interrupted
    (project / "rhetoric.toml").write_text(f'[settings]\ndb = "sqlite:///{db}"\nbatch_size = 2\n\n'
                                           '[[source]]\nkind = "folder"\npath = "wire"\n', encoding="utf-8")
    run = start(project, "run")
    try:
        deadline = time.monotonic() + 300
        scored = 0
        while not scored and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                scored = sqlite_rows(db, "SELECT COUNT(*) FROM predictions")[0][0]
            except sqlite3.Error:  # not created yet
                pass
        assert scored, finish(run, 5)
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole foreground group
        stopped = time.monotonic()
        out, err = finish(run, 60)
        took = time.monotonic() - stopped
    finally:
        if run.poll() is None:
            finish(run, 0.1)
    assert run.returncode == 130, err[-3000:]
    assert took < 20, f"took {took:.1f} s to stop"  # measured: about 2 s
    assert "Traceback" not in err and "database is locked" not in err, err[-3000:]
    ours = [line for line in err.splitlines() if line.startswith("rhetoric:")]
    assert len(ours) == 1 and "interrupted" in ours[0], err[-3000:]
    assert sqlite_rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert sqlite_rows(db, "SELECT status FROM runs") == [("interrupted",)]

    (project / "rhetoric.toml").write_text(f'[settings]\ndb = "sqlite:///{db}"\n\n'
                                           '[[source]]\nkind = "folder"\npath = "wire"\n', encoding="utf-8")
    again = start(project, "run")
    out, err = finish(again)
    assert again.returncode == 0, err[-3000:]
    store = Store(f"sqlite:///{db}")
    try:
        table = store.export_sentences(["multipolarity", "anti_sanctions", "peace_talks", "anti_hegemony"])
        assert len(table) == store.corpus_summary()["sentences"] == 120 * 51  # each headline is a sentence too
        assert table[[c for c in table if c.startswith("score_")]].notna().all().all()
        assert store.export_runs()["status"].tolist() == ["interrupted", "completed"]
    finally:
        store.close()
