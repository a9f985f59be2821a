"""Prefect servers: the project's lasting one (`rhetoric server`) and the temporary one that ends with its command."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from flows.server import _free_port
from tests.project_fixtures import ROOT, make_project

pytestmark = pytest.mark.slow


def _env(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PYTHONPATH=str(ROOT), PREFECT_HOME=str(tmp_path / "prefect-home"))
    return env


def rhetoric(project, env, *args):
    return subprocess.run([sys.executable, "-m", "rhetoric.cli", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)


def _up(api_url: str) -> bool:
    from flows.server import healthy

    return healthy(api_url, timeout=1.0)


def test_the_temporary_server_ends_when_its_command_is_killed(tmp_path):
    """Prefect's own temporary server outlived a SIGKILLed parent for minutes; ours ends with it."""
    holder = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from flows.server import prefect_api\n"
        "with prefect_api(Path(sys.argv[1])) as (api, where, _):\n"
        "    print(api, where, flush=True)\n"
        "    time.sleep(600)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", holder, str(tmp_path / "state")], env=_env(tmp_path),
                               stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        api_url, where = process.stdout.readline().split(maxsplit=1)
        assert where.strip() == "temporary server"
        assert _up(api_url)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    deadline = time.monotonic() + 20
    while _up(api_url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _up(api_url), "the temporary Prefect server outlived its killed parent"


def _flow_runs(api_url: str) -> list[dict]:
    request = urllib.request.Request(f"{api_url}/flow_runs/filter", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def test_server_start_status_stop_and_runs_use_it(tmp_path):
    project = make_project(tmp_path)
    env = _env(tmp_path)
    assert rhetoric(project, env, "server", "status").returncode == 3
    started = rhetoric(project, env, "server", "start", "--port", str(_free_port()))
    assert started.returncode == 0, started.stderr
    try:
        record = json.loads((project / ".rhetoric" / "prefect" / "server.json").read_text())
        status = rhetoric(project, env, "server", "status")
        assert status.returncode == 0 and record["api_url"].removesuffix("/api") in status.stdout
        again = rhetoric(project, env, "server", "start")
        assert "already running" in again.stdout and json.loads(
            (project / ".rhetoric" / "prefect" / "server.json").read_text())["pid"] == record["pid"]

        run = rhetoric(project, env, "run")
        assert run.returncode == 0, run.stderr
        assert "articles: 5 new" in run.stdout
        assert "rhetoric server start" not in run.stderr  # no hint: a server was there
        assert [r["name"] for r in _flow_runs(record["api_url"])], "the run did not use the project's server"
        assert (project / ".rhetoric" / "prefect" / "prefect.db").is_file()
    finally:
        stopped = rhetoric(project, env, "server", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not _up(record["api_url"])
    assert rhetoric(project, env, "server", "status").returncode == 3


def test_a_run_without_a_server_says_once_how_to_skip_the_start_up(tmp_path):
    project = make_project(tmp_path)
    env = _env(tmp_path)
    first = rhetoric(project, env, "run")
    assert first.returncode == 0, first.stderr
    assert "`rhetoric server start`" in first.stderr
    second = rhetoric(project, env, "run")
    assert second.returncode == 0, second.stderr
    assert "rhetoric server start" not in second.stderr
    assert "Error logging to API" not in first.stderr + second.stderr  # logs reached the server before it stopped


