"""Which Prefect API a command talks to, and the servers rhetoric starts for it.

In order of preference:

1. ``PREFECT_API_URL``, when set: a server someone else runs.
2. The project's lasting server, started by ``rhetoric server start``: Prefect's own
   ``prefect server start`` in the background, its database and log under
   ``.rhetoric/prefect/``, recorded in ``.rhetoric/prefect/server.json``. Hand runs and
   ``serve`` share it, and a run skips the server's start-up entirely.
3. A temporary server for this one command, stopped when the command ends. It is started
   with a parent-death signal, so it ends with the command even when the command is
   killed with SIGKILL (Prefect's own temporary server outlived its parent for minutes).

Nothing here imports Prefect at module level: ``rhetoric server status`` stays instant.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Iterator

from rhetoric.errors import RhetoricError
from rhetoric.parallel import die_with_parent

DEFAULT_PORT = 4200
START_TIMEOUT = 90.0  # PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS overrides it


class ServerError(RhetoricError):
    """A Prefect server could not be started, reached or stopped."""


@dataclass(frozen=True)
class ServerRecord:
    """What `rhetoric server start` wrote down about the server it started."""

    pid: int
    port: int
    api_url: str
    home: str
    log: str
    started: float

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


def prefect_home(state_dir: Path) -> Path:
    """The project's Prefect home: its server's database, log and record."""
    return Path(state_dir) / "prefect"


def _record_path(state_dir: Path) -> Path:
    return prefect_home(state_dir) / "server.json"


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    """True when a Prefect API answers its health check at api_url."""
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{api_url.rstrip('/')}/health", timeout=timeout) as answer:
            return answer.status == 200
    except (OSError, ValueError):
        return False


def project_server(state_dir: Path) -> ServerRecord | None:
    """The project's lasting server when it is running and answers; a stale record is removed."""
    path = _record_path(state_dir)
    try:
        record = ServerRecord(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if _alive(record.pid) and healthy(record.api_url):
        return record
    if not _alive(record.pid):
        path.unlink(missing_ok=True)
    return None


def start_server(state_dir: Path, port: int | None = None, timeout: float | None = None) -> tuple[ServerRecord, bool]:
    """Start the project's lasting server in the background, or return the one already running.

    Returns the record and whether this call started it.
    """
    running = project_server(state_dir)
    if running:
        return running, False
    home = prefect_home(state_dir)
    home.mkdir(parents=True, exist_ok=True)
    port = port or (DEFAULT_PORT if _port_free(DEFAULT_PORT) else _free_port())
    if not _port_free(port):
        raise ServerError(f"port {port} on 127.0.0.1 is taken; choose another with `rhetoric server start --port N`")
    log_path = home / "server.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=_server_env(home), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
    api_url = f"http://127.0.0.1:{port}/api"
    _wait_healthy(process, api_url, log_path, _start_timeout(timeout))
    record = ServerRecord(pid=process.pid, port=port, api_url=api_url, home=str(home), log=str(log_path),
                          started=time.time())
    _record_path(state_dir).write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    return record, True


def stop_server(state_dir: Path, grace: float = 10.0) -> ServerRecord | None:
    """Stop the project's lasting server; None when none was running."""
    path = _record_path(state_dir)
    try:
        record = ServerRecord(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    if _alive(record.pid):
        _stop_group(record.pid, grace)
    path.unlink(missing_ok=True)
    return record


@contextmanager
def prefect_api(state_dir: Path, temporary: str = "ephemeral") -> Iterator[tuple[str, str, float]]:
    """Point Prefect at an API for the duration of the block.

    Yields (api_url, where, start-up seconds), where is "PREFECT_API_URL", "project server"
    or "temporary server". temporary chooses what to start when no server is reachable:
    "ephemeral" (the API alone, as Prefect's own temporary server, for a single run) or
    "full" (`prefect server start` with its UI and scheduler, for `serve`), with its
    database under the project's .rhetoric/prefect/.
    """
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        if not healthy(configured, timeout=5.0):
            raise ServerError(f"PREFECT_API_URL={configured}: no Prefect server answers there; start it, "
                              "or unset PREFECT_API_URL to use the project's server or a temporary one")
        yield configured, "PREFECT_API_URL", 0.0
        return
    record = project_server(state_dir)
    if record:
        with _using(record.api_url):
            yield record.api_url, "project server", 0.0
        return
    began = time.monotonic()
    process, api_url, log_path = _start_temporary(state_dir, temporary)
    try:
        elapsed = time.monotonic() - began
        with _using(api_url):
            try:
                yield api_url, "temporary server", elapsed
            finally:
                _send_pending()
    finally:
        _stop_group(process.pid, 5.0, process)


def _send_pending(timeout: float = 5.0) -> None:
    """Hand the logs and events Prefect still holds to the server before it stops."""
    if "prefect" not in sys.modules:
        return
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=timeout)
        EventsWorker.drain_all(timeout=timeout)
    except Exception:  # best effort: a lost log line must not fail a finished run
        pass


def _start_temporary(state_dir: Path, kind: str) -> tuple[subprocess.Popen, str, Path]:
    """A server that ends with this process (parent-death signal), tried twice on a slow start."""
    home = prefect_home(state_dir) if kind == "full" else None
    for attempt in (1, 2):
        port = _free_port()
        api_url = f"http://127.0.0.1:{port}/api"
        env = _server_env(home) if home else {**os.environ, **_ANALYTICS_OFF, "PREFECT_UI_ENABLED": "0",
                                                "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        env.pop("PREFECT_API_URL", None)
        log_dir = home or Path(state_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / ("server.log" if home else "prefect-temporary-server.log")
        command = ([sys.executable, "-m", "prefect", "server", "start"] if home else
                   [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
                    "--log-level", "error", "--lifespan", "on"])
        with open(log_path, "ab") as log:
            process = subprocess.Popen(command + ["--host", "127.0.0.1", "--port", str(port)],
                                       env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, preexec_fn=partial(die_with_parent, os.getpid()))
        try:
            _wait_healthy(process, api_url, log_path, _start_timeout(None))
            return process, api_url, log_path
        except ServerError:
            _stop_group(process.pid, 5.0, process)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


_ANALYTICS_OFF = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def _server_env(home: Path) -> dict[str, str]:
    env = {**os.environ, **_ANALYTICS_OFF, "PREFECT_HOME": str(home)}
    env.pop("PREFECT_API_URL", None)
    return env


@contextmanager
def _using(api_url: str) -> Iterator[None]:
    """PREFECT_API_URL for this process (and the flow-run processes it starts) during the block."""
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = api_url
    try:
        if "prefect" in sys.modules:  # Prefect read its settings at import; tell it too
            from prefect.settings import PREFECT_API_URL, temporary_settings

            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                yield
        else:
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


def _start_timeout(timeout: float | None) -> float:
    if timeout:
        return timeout
    try:
        return float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", START_TIMEOUT))
    except ValueError:
        return START_TIMEOUT


def _wait_healthy(process: subprocess.Popen, api_url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"the Prefect server exited with code {process.returncode} while starting; "
                              f"see {log_path}")
        if healthy(api_url, timeout=1.0):
            return
        time.sleep(0.1)
    raise ServerError(f"the Prefect server did not answer {api_url}/health within {timeout:.0f} s; see {log_path}. "
                      "Raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start one that lasts "
                      "with `rhetoric server start`")


def _stop_group(pid: int, grace: float, process: subprocess.Popen | None = None) -> None:
    """SIGTERM the server's process group, then SIGKILL what is left after the grace period."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return
        if process is None and not _alive(pid):
            return
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if process is not None:
        process.wait(timeout=grace)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as dead
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
