"""`rhetoric run` sends Prefect no flow-run heartbeats unless the environment asks for them: joining the
heartbeat thread cost every run up to a second at its end."""

import pytest
from prefect.settings import get_current_settings

from rhetoric.cli import HEARTBEAT_VARIABLES, _without_heartbeats


@pytest.fixture
def no_heartbeat_variables(monkeypatch):
    for name in HEARTBEAT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_a_hand_run_sends_no_heartbeats(no_heartbeat_variables):
    before = get_current_settings().flows.heartbeat_frequency
    assert before is not None  # Prefect's default sends them
    with _without_heartbeats():
        assert get_current_settings().flows.heartbeat_frequency is None
    assert get_current_settings().flows.heartbeat_frequency == before


@pytest.mark.parametrize("name", HEARTBEAT_VARIABLES)
def test_heartbeats_asked_for_in_the_environment_are_kept(no_heartbeat_variables, monkeypatch, name):
    monkeypatch.setenv(name, "60")
    before = get_current_settings().flows.heartbeat_frequency
    with _without_heartbeats():
        assert get_current_settings().flows.heartbeat_frequency == before
