"""`rhetoric serve`: run the pipeline on a schedule as a Prefect deployment served from this process.

With PREFECT_API_URL set, the deployment registers with that server. Without it, a
local Prefect server is started on 127.0.0.1 (its database under .rhetoric/prefect/),
its UI address printed, and it is stopped on exit. SIGINT and SIGTERM stop the runner
and the server this process started.

Overlap: the deployment allows one run at a time (collision strategy CANCEL_NEW: a run
due while the previous one is still going is cancelled with a message, and the next
one picks up what is new); the run lock in rhetoric.pipeline guards the store against
runs started by hand.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from rhetoric.config import Settings
from rhetoric.errors import RhetoricError

DEPLOYMENT_NAME = "rhetoric-scheduled"
SERVER_START_TIMEOUT = 180.0


class ServeError(RhetoricError):
    """The scheduler could not be started."""


def serve(settings: Settings, sources: list[str], interval: float | None = None,
          cron: str | None = None) -> None:
    """Serve the rhetoric-run flow on an interval (seconds) or a cron schedule until stopped."""
    if (interval is None) == (cron is None):
        raise ServeError("serve: give exactly one of --interval SECONDS or --cron EXPR")
    if interval is not None and interval <= 0:
        raise ServeError(f"serve: --interval must be a positive number of seconds, found {interval}")
    previous = _stop_on_sigterm()
    try:
        with prefect_api(settings.state_dir) as api_url:
            print(f"Prefect API: {api_url}", flush=True)
            _serve_deployment(settings, sources, interval, cron)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _serve_deployment(settings: Settings, sources: list[str], interval: float | None, cron: str | None) -> None:
    from prefect import serve as prefect_serve
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.types.entrypoint import EntrypointType

    from flows.pipeline import run_pipeline

    parameters = {"sources": sources or None, "db": settings.db_url or None, "out": str(settings.out_dir),
                  "models": str(settings.models_dir), "root": str(Path(settings.root).resolve())}
    deployment = run_pipeline.to_deployment(
        name=DEPLOYMENT_NAME, interval=interval, cron=cron, parameters=parameters,
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        entrypoint_type=EntrypointType.MODULE_PATH,
        description="Scheduled rhetoric runs: fetch what is new, classify it, refresh the charts.",
    )
    prefect_serve(deployment, limit=1)


@contextmanager
def prefect_api(state_dir: Path) -> Iterator[str]:
    """The Prefect API to use: PREFECT_API_URL when set, else a local server started here and stopped on exit."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        yield configured
        return
    port = _free_port()
    home = state_dir / "prefect"
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "server.log"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    with open(log_path, "ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(server, api_url, log_path)
        print(f"Prefect UI: http://127.0.0.1:{port}  (local server; log: {log_path})", flush=True)
        with _api_url(api_url):
            yield api_url
    finally:
        _stop(server)
        print("Prefect server stopped.", flush=True)


@contextmanager
def _api_url(api_url: str) -> Iterator[None]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    os.environ["PREFECT_API_URL"] = api_url  # for the flow-run processes the runner starts
    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}):
            yield
    finally:
        os.environ.pop("PREFECT_API_URL", None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(server: subprocess.Popen, api_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise ServeError(f"the local Prefect server exited with code {server.returncode} while starting; "
                             f"see {log_path}")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise ServeError(f"the local Prefect server did not answer {api_url}/health within "
                     f"{SERVER_START_TIMEOUT:.0f} s; see {log_path}, or set PREFECT_API_URL to a running server")


def _stop(process: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after the grace period."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)
    except ProcessLookupError:
        pass


def _stop_on_sigterm():
    """Until Prefect's runner installs its own handler, SIGTERM unwinds like Ctrl-C so cleanup runs."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, handler)
