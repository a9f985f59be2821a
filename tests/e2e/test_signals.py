"""`rhetoric run` stopped by a signal while a server trickles its feed: it ends at once, in one line."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.http_fixtures import NewsSite, rss_feed
from tests.project_fixtures import ROOT, make_project

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_a_run_held_by_a_trickling_feed(tmp_path, signum):
    project = make_project(tmp_path)
    with NewsSite() as site:
        feed = rss_feed("Drip Wire", [{"title": f"Story {n}", "link": site.url(f"/{n}")} for n in range(20)])
        site.add("/feed.xml", feed, content_type="application/rss+xml", trickle=0.5)  # minutes to send
        (project / "rhetoric.toml").write_text(
            f'[settings]\nhttp_timeout = 300\nallow_private = ["{site.netloc}"]\n\n'
            f'[[source]]\nkind = "feed"\nurl = "{site.url("/feed.xml")}"\n', encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_HOME": str(tmp_path / "prefect-home")}
        env.pop("PREFECT_API_URL", None)
        run = subprocess.Popen([sys.executable, "-m", "rhetoric.cli", "run"], cwd=project, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 240  # Prefect's temporary server starts first
            while site.hits("/feed.xml") == 0 and run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert site.hits("/feed.xml") == 1, run.communicate(timeout=5)
            time.sleep(1.0)
            run.send_signal(signum)
            out, err = run.communicate(timeout=30)  # measured: about 2.5 s; before, the feed held it for minutes
        finally:
            if run.poll() is None:
                run.kill()
                run.communicate()
    assert run.returncode == 128 + signum, err[-3000:]
    assert "Traceback" not in err
    ours = [line for line in err.splitlines() if line.startswith("rhetoric:")]
    assert ours == [f"rhetoric: interrupted ({signal.Signals(signum).name})"], err[-3000:]
    with sqlite3.connect(project / ".rhetoric" / "rhetoric.db") as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
