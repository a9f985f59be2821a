"""Fixtures shared by the unit tests: a store on each database, a small labelled corpus
(tests/model_fixtures.py), a model trained on it, and that model saved in a registry."""

import pytest

from rhetoric.labels import load_eval_labels, load_frames, load_labels
from rhetoric.model import train
from rhetoric.registry import Registry, describe
from rhetoric.store import Store
from tests.conftest import scratch_postgres_url
from tests.model_fixtures import make_labels_dir


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    """The same tests on SQLite and, when RHETORIC_TEST_POSTGRES_URL names a scratch database, PostgreSQL."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'store.db'}")
    else:
        s = Store(scratch_postgres_url())
        s.drop_all()
    s.create_schema()
    yield s
    s.close()


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """(labels folder, frames, training table, held-out table) of the templated corpus."""
    folder = make_labels_dir(tmp_path_factory.mktemp("corpus"))
    frames = load_frames(folder)
    return folder, frames, load_labels(folder, frames), load_eval_labels(folder, frames)


@pytest.fixture(scope="module")
def trained(labelled):
    """The default pipeline trained on the templated corpus."""
    _, frames, table, held = labelled
    return train(table, frames)


@pytest.fixture
def saved(tmp_path, labelled, trained):
    """A registry under tmp_path/models holding one promoted version; (registry, version, models folder)."""
    _, frames, table, held = labelled
    registry = Registry(tmp_path / "models")
    version = registry.save(trained, describe(trained, frames, table, held))
    registry.promote(version, 0.9)
    return registry, version, tmp_path / "models"
