"""`rhetoric serve`: run the pipeline on a schedule as a Prefect deployment served from this process.

With PREFECT_API_URL set, the deployment registers with that server; else with the
project's server (`rhetoric server start`) when it runs. Without either, a local Prefect
server is started on 127.0.0.1 (its database under .rhetoric/prefect/), its UI address
printed, and it is stopped on exit, or with this process if it is killed. SIGINT and
SIGTERM stop the runner and the server this process started.

Overlap: the deployment allows one run at a time (collision strategy CANCEL_NEW: a run
due while the previous one is still going is cancelled with a message, and the next
one picks up what is new); the run lock in rhetoric.pipeline guards the store against
runs started by hand.
"""

from __future__ import annotations

import signal
from pathlib import Path

from flows.server import prefect_api
from rhetoric.config import Settings
from rhetoric.errors import RhetoricError

DEPLOYMENT_NAME = "rhetoric-scheduled"


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
    started_here = False
    try:
        with prefect_api(settings.state_dir, temporary="full") as (api_url, where, _):
            started_here = where == "temporary server"
            if started_here:
                print(f"Prefect UI: {api_url.removesuffix('/api')}  (local server, stopped when serve ends; "
                      f"log: {settings.state_dir / 'prefect' / 'server.log'})", flush=True)
            else:
                print(f"Prefect API: {api_url} ({where})", flush=True)
            _serve_deployment(settings, sources, interval, cron)
    finally:
        if started_here:
            print("Prefect server stopped.", flush=True)
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


def _stop_on_sigterm():
    """Until Prefect's runner installs its own handler, SIGTERM unwinds like Ctrl-C so cleanup runs."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, handler)
