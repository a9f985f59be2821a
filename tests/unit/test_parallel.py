"""Preparing a chunk on several processes gives what one process gives, in the same order."""

import os
import signal

import pytest

from rhetoric import parallel
from rhetoric.ingest import RawArticle
from rhetoric.pipeline import prepare_articles, prepare_chunk
from tests.http_fixtures import story

TOPICS = ["talks", "trade", "summit", "energy", "visit"]


def raw_articles(n: int) -> list[RawArticle]:
    """n articles; every seventh is blank (refused), so refusals come from every slice."""
    out = []
    for i in range(n):
        text = (" " if i % 7 == 3 else
                f"Headline {i}\n\n" + "\n\n".join(story(TOPICS[i % len(TOPICS)])) + f"\n\nItem number {i} ends here.")
        out.append(RawArticle(source=f"a{i:04d}.txt", text=text))
    return out


@pytest.fixture(autouse=True)
def small_slices(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PER_PROCESS", 5)
    yield
    parallel.shutdown()


def test_processes_for_a_chunk():
    assert parallel.processes_for(3, 0) == 1  # too small to share
    assert parallel.processes_for(100, 1) == 1
    assert parallel.processes_for(100, 3) == 3
    assert parallel.processes_for(12, 3) == 2  # 5 articles at least for each
    assert parallel.processes_for(100, 0) == min(parallel.cores(), 20)


def test_three_processes_prepare_what_one_does_in_the_same_order():
    raw = raw_articles(40)
    alone = prepare_articles(raw)
    shared = prepare_chunk(raw, workers=3)
    assert parallel._pool is not None and parallel._pool_size == 2  # the helpers really ran
    assert [a.source for a in shared[0]] == [a.source for a in alone[0]]
    assert shared == alone
    assert len(alone[1]) == 6 and len(alone[0]) == 34


def test_a_helper_that_dies_costs_no_articles():
    raw = raw_articles(30)
    prepare_chunk(raw, workers=2)
    pool = parallel._pool
    for pid in list(pool._processes):
        os.kill(pid, signal.SIGKILL)
    assert prepare_chunk(raw, workers=2) == prepare_articles(raw)
    assert prepare_chunk(raw, workers=2) == prepare_articles(raw)  # new helpers for the next chunk
    assert parallel._pool is not pool
