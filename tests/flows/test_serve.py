"""`rhetoric serve` end to end: a local Prefect server, scheduled runs, a new feed item between runs, SIGTERM."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.http_fixtures import NewsSite, article_page, rss_feed, story
from tests.project_fixtures import ROOT, make_project


def test_serve_needs_exactly_one_schedule(tmp_path):
    from flows.serve import ServeError, serve
    from rhetoric.config import load_settings

    settings = load_settings(tmp_path)
    with pytest.raises(ServeError, match="exactly one of --interval"):
        serve(settings, [], interval=None, cron=None)
    with pytest.raises(ServeError, match="positive number of seconds"):
        serve(settings, [], interval=-5)


def stored_urls(db: Path) -> set[str]:
    from sqlalchemy.exc import SQLAlchemyError

    from rhetoric.store import Store

    if not db.exists():
        return set()
    store = Store(f"sqlite:///{db}")
    try:
        with store.engine.connect() as conn:
            return {u for (u,) in conn.exec_driver_sql("SELECT url FROM article_sources").all()}
    except SQLAlchemyError:
        return set()  # the first run has not created the schema yet
    finally:
        store.close()


def wait_for(condition, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1.0)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; serve output:\n{log.read_text()[-3000:]}")


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_serve_picks_up_an_item_published_between_two_scheduled_runs(tmp_path):
    project = make_project(tmp_path)
    with NewsSite() as site:
        first, second = site.url("/news/first"), site.url("/news/second")
        site.add("/news/first", article_page("Ministers sign grain deal", story("serve-1"), published="2024-06-01"))
        site.add("/news/second", article_page("Envoys meet in Doha", story("serve-2"), published="2024-06-02"))
        items = [{"title": "First", "link": first, "published": "2024-06-01"}]
        site.add("/feed.xml", rss_feed("Serve Wire", items), content_type="application/rss+xml")
        (project / "rhetoric.toml").write_text(
            f'[settings]\nhttp_timeout = 5.0\nallow_private = ["{site.netloc}"]\n\n'
            f'[[source]]\nkind = "feed"\nurl = "{site.url("/feed.xml")}"\n',
            encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update(PYTHONPATH=str(ROOT), PREFECT_HOME=str(tmp_path / "prefect-home"),
                   PREFECT_RUNNER_POLL_FREQUENCY="2")
        log = tmp_path / "serve.log"
        with open(log, "wb") as out:
            serve = subprocess.Popen([sys.executable, "-m", "rhetoric.cli", "serve", "--interval", "5"],
                                     cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            db = project / ".rhetoric" / "rhetoric.db"
            wait_for(lambda: first in stored_urls(db), 240, "the first scheduled run", log)
            assert second not in stored_urls(db)
            site.routes["/feed.xml"].body = rss_feed("Serve Wire", items + [
                {"title": "Second", "link": second, "published": "2024-06-02"}])
            wait_for(lambda: second in stored_urls(db), 120, "the item published between runs", log)
            ui = re.search(r"Prefect UI: http://127\.0\.0\.1:(\d+)", log.read_text())
            assert ui, log.read_text()
            port = int(ui.group(1))
            assert port_open(port)
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                code = serve.wait(timeout=15)  # measured: about 5 s (pausing the schedule, stopping the server)
            except subprocess.TimeoutExpired:
                serve.kill()
                raise
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert "Prefect server stopped." in output
    assert not port_open(port)
    assert site.hits("/news/first") == 1  # later runs saw it in the store and did not fetch it again
