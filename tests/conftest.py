"""Test-wide setup: an isolated Prefect home with analytics off, and shared fixtures."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# Before anything imports Prefect: never touch the user's ~/.prefect, never phone home.
_PREFECT_HOME = tempfile.mkdtemp(prefix="rhetoric-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
# the temporary server may take longer than Prefect's default 20 s on a busy 2-core machine
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.pop("PREFECT_API_URL", None)
os.environ.pop("RHETORIC_DB", None)

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
LABELS = ROOT / "labels"
MODELS = ROOT / "models"


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for every flow test of the session (it takes seconds to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def seed_copy(tmp_path: Path) -> Path:
    """A writable copy of the seed corpus."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


def scratch_postgres_url() -> str:
    """RHETORIC_TEST_POSTGRES_URL (a scratch database: tests drop its tables), or skip the test.

    With RHETORIC_REQUIRE_POSTGRES=1 (CI) a missing URL fails the test instead: a skip would
    hide that the PostgreSQL half of the suite never ran. scripts/pg_scratch.sh starts one.
    """
    url = os.environ.get("RHETORIC_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("RHETORIC_REQUIRE_POSTGRES") == "1":
        pytest.fail("RHETORIC_REQUIRE_POSTGRES=1 but RHETORIC_TEST_POSTGRES_URL is not set; start a scratch server "
                    "with `eval \"$(scripts/pg_scratch.sh start DIR)\"`")
    pytest.skip("set RHETORIC_TEST_POSTGRES_URL to a scratch PostgreSQL database (scripts/pg_scratch.sh starts one)")


@pytest.fixture(scope="session", autouse=True)
def shared_prefect_server():
    """One Prefect API for every `rhetoric` subprocess of the session (PREFECT_API_URL), as a user with
    `rhetoric server start` has; tests of the temporary server remove the variable for their own commands.
    In-process flow tests use prefect_harness. The server ends with this process (flows.server)."""
    from flows.server import prefect_api

    with prefect_api(Path(_PREFECT_HOME)) as (api_url, _, _):
        os.environ["PREFECT_API_URL"] = api_url  # prefect_api restores the environment on exit
        yield api_url


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)
