"""Preparing a chunk on several processes gives what one process gives, in the same order."""

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rhetoric import parallel
from rhetoric.ingest import RawArticle, scored_rows
from rhetoric.prepare import prepare_articles, prepare_chunk
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
    assert len(parallel._helpers) == 2 and all(h.alive() for h in parallel._helpers)  # the helpers really ran
    assert [a.source for a in shared[0]] == [a.source for a in alone[0]]
    assert shared == alone
    assert len(alone[1]) == 6 and len(alone[0]) == 34


def test_a_helper_that_dies_costs_no_articles():
    raw = raw_articles(30)
    prepare_chunk(raw, workers=2)
    helper, = parallel._helpers
    os.kill(helper.process.pid, signal.SIGKILL)
    helper.process.wait()
    assert prepare_chunk(raw, workers=2) == prepare_articles(raw)  # a new helper for the next chunk
    assert parallel._helpers[0] is not helper and parallel._helpers[0].alive()


def test_a_helper_failing_on_a_slice_leaves_it_to_the_run(monkeypatch):
    monkeypatch.setenv("RHETORIC_IN_HELPER", "1")  # the helper inherits it; this process drops it below
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # where the helper finds _fails_in_helpers
    parallel.shutdown()
    helpers = parallel._running(1)
    monkeypatch.delenv("RHETORIC_IN_HELPER")
    results = parallel.map_slices(_fails_in_helpers, list(range(20)), 2)
    assert [pid for pids, _ in results for pid in pids] == [os.getpid()] * 20 and helpers[0].alive()


def _fails_in_helpers(items):  # importable by name, as a helper needs
    if os.environ.get("RHETORIC_IN_HELPER"):
        raise RuntimeError("helper")
    return [os.getpid()] * len(items), []


def test_helpers_end_with_their_run():
    prepare_chunk(raw_articles(20), workers=2)
    helper, = parallel._helpers
    parallel.shutdown()
    assert helper.process.wait(timeout=10) == 0 and parallel._helpers == []



def test_in_the_background_the_helpers_do_every_slice_and_this_process_keeps_its_core(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # where a helper finds _pids
    results = parallel.map_slices(_pids, list(range(30)), 3, local=False)
    pids = [pid for part, _ in results for pid in part]
    assert len(pids) == 30 and os.getpid() not in pids
    assert len(set(pids)) == 2  # one helper fewer than the three processes asked for: this one is busy
    alone = prepare_articles(raw_articles(30))
    assert prepare_chunk(raw_articles(30), workers=2, local=False) == alone  # one helper, the whole chunk


def test_a_small_chunk_in_the_background_is_prepared_in_its_thread():
    assert parallel.map_slices(_pids, list(range(3)), 2, local=False) == [([os.getpid()] * 3, [])]
    assert parallel._helpers == []


def test_stop_ends_the_helpers_at_once_and_nothing_is_done_here_instead(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    outcome = {}

    def background():
        try:
            outcome["result"] = parallel.map_slices(_slow, list(range(20)), 3, local=False)
        except parallel.Stopped as exc:
            outcome["stopped"] = exc

    thread = threading.Thread(target=background)
    thread.start()
    deadline = time.monotonic() + 30
    while len(parallel._helpers) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    began = time.monotonic()
    parallel.stop()
    thread.join(timeout=20)
    assert not thread.is_alive() and time.monotonic() - began < 5
    assert "stopped" in outcome and "result" not in outcome  # _slow was never run here in their place


def _pids(items):  # importable by name, as a helper needs
    return [os.getpid()] * len(items), []


def _slow(items):
    time.sleep(60)
    return items, []


def test_helpers_started_early_warm_up_and_take_the_first_slices(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # where a helper finds _mark and _pids
    monkeypatch.setenv("RHETORIC_TEST_WARM_MARK", str(tmp_path / "warm"))
    parallel.start(1, warm="test_parallel:_mark")
    helper, = parallel._helpers
    deadline = time.monotonic() + 30
    while not (tmp_path / "warm").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "warm").read_text() == str(helper.process.pid)  # warmed in the helper, before any slice
    results = parallel.map_slices(_pids, list(range(20)), 2)
    assert parallel._helpers == [helper] and {pid for part, _ in results for pid in part} == {os.getpid(),
                                                                                          helper.process.pid}
    parallel.start(1, warm="no_such_module:nothing")  # one live already: nothing started
    assert parallel._helpers == [helper]


def test_a_helper_whose_warm_up_fails_still_prepares(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    parallel.start(1, warm="no_such_module:nothing")
    results = parallel.map_slices(_pids, list(range(20)), 2, local=False)
    assert [pid for part, _ in results for pid in part] == [parallel._helpers[0].process.pid] * 20


def _mark():  # a warm-up target, importable by name
    Path(os.environ["RHETORIC_TEST_WARM_MARK"]).write_text(str(os.getpid()))


def test_a_run_starts_its_helper_early_only_when_its_first_chunk_looks_new(tmp_path, monkeypatch):
    from rhetoric.config import Settings, SourceSpec
    from rhetoric.pipeline import open_store, start_helpers
    from rhetoric.store import NewArticle

    started = []
    monkeypatch.setattr(parallel, "start", lambda count, warm=None: started.append((count, warm)))
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    big, small = tmp_path / "big", tmp_path / "small"
    big.mkdir(), small.mkdir()
    for i in range(16):  # MIN_PER_PROCESS is 5 here: 10 new files share a first chunk between two processes
        (big / f"a{i:02d}.txt").write_text("text")
    for name in ("a.txt", "b.md", "notes.csv", "c.jpg", "d.json", "readme.md", "f.docx", "g.png", "h.zip", "i.tar"):
        (small / name).write_text("text")  # two article files among ten

    def settings(*folders, workers=0, batch_size=2500):
        return Settings(root=tmp_path, sources=tuple(SourceSpec("folder", str(f)) for f in folders), workers=workers,
                        batch_size=batch_size)

    open_store(settings()).close()
    assert not start_helpers(settings(small)) and not start_helpers(settings(tmp_path / "missing"))
    assert not start_helpers(settings(big, workers=1)) and not start_helpers(settings(big, batch_size=9))
    assert started == []
    assert start_helpers(settings(small, big)) and started == [(1, "rhetoric.prepare:warm")]

    store = open_store(settings())  # a later run: five of the files stored already, eleven new
    store.add_articles([NewArticle(content_hash=f"{i:064d}", sentences=["One sentence."], source=f"a{i:02d}.txt")
                        for i in range(5)], "run-1")
    store.close()
    assert not start_helpers(settings(big, batch_size=12))  # 7 new among the first 12: not enough
    assert start_helpers(settings(big)) and len(started) == 2  # 11 new among all 16


def test_a_message_larger_than_the_socket_holds_crosses_whole(tmp_path):
    import socket

    mine, theirs = socket.socketpair()
    message = ["sentence %d " % i * 20 for i in range(50_000)]  # about 10 MB: many times the socket's buffer
    sender = threading.Thread(target=parallel.send_message, args=(theirs, message))
    sender.start()
    assert parallel.receive_message(mine) == message
    sender.join()
    theirs.sendall(parallel._HEADER.pack(1000) + b"cut short")
    theirs.close()
    with pytest.raises(EOFError):
        parallel.receive_message(mine)
    mine.close()


def _steps(result):  # spare work of 5 s, importable by name: a step every 10 ms (500 steps: not asked for)
    for _ in range(500):
        time.sleep(0.01)
        result[0].append("step")
        yield


def _listed(items):
    return [list(items)]


def _counted(result):  # spare work of 5 s that says what each step added: the step's number
    for step in range(500):
        time.sleep(0.01)
        result[0].append(step)
        yield [step]


def test_a_helper_works_on_its_result_until_it_is_asked_for_it(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # where a helper finds _steps and _listed
    timer = threading.Timer(0.5, parallel.hurry)  # the run, ready for the chunk half a second later
    timer.start()
    began = time.monotonic()
    (items,), = parallel.map_slices(_listed, list(range(10)), 2, local=False, spare=_steps)
    timer.join()
    assert items[:10] == list(range(10)) and len(items) > 11  # it worked meanwhile, and stopped when asked
    assert time.monotonic() - began < 30
    # with this process waiting for it (local), it is asked at once: it stops after the first step
    results = parallel.map_slices(_listed, list(range(20)), 2, local=True, spare=_steps)
    assert results[0] == [list(range(10))] and results[1][0][:10] == list(range(10, 20))
    assert len(results[1][0]) < 10 + 50
    parallel.hurry()  # nothing out: says nothing, and the helper takes its next slice as usual
    (items,), = parallel.map_slices(_listed, list(range(10)), 2, local=False)
    assert items == list(range(10))


def test_helpers_score_what_they_prepared_as_the_run_would():
    from rhetoric.prepare import score_share
    from rhetoric.registry import Registry
    from tests.conftest import MODELS

    model = Registry(MODELS).champion()
    raw = raw_articles(40)
    timer = threading.Timer(1.0, parallel.hurry)
    timer.start()
    prepared, refused = prepare_chunk(raw, workers=3, local=False, scoring=score_share(model))
    timer.join()
    alone = prepare_articles(raw)
    assert [a.content_hash for a in prepared] == [a.content_hash for a in alone[0]] and refused == alone[1]
    scored = [a for a in prepared if a.scored is not None]
    assert scored  # the helpers had a second to score
    for article in scored:
        version, labels, scores = scored_rows(article.scored)
        expected_labels, expected_scores = model.predict(article.sentences)
        assert version == model.version and (labels == expected_labels).all()
        assert np.allclose(scores, expected_scores, rtol=0, atol=1e-12)


def test_asked_for_before_its_slice_went_out_a_helper_sends_it_at_once(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    parallel.map_slices(_listed, list(range(10)), 2, local=False)  # a live helper, with nothing out
    parallel.hurry()  # the run turns to a chunk whose slices are still being handed over
    (items,), = parallel.map_slices(_listed, list(range(10)), 2, local=False, spare=_steps)  # 5 s unasked
    assert items[:10] == list(range(10)) and len(items) < 10 + 50
    timer = threading.Timer(0.3, parallel.hurry)  # that ask was used once: the next slice works until asked
    timer.start()
    (items,), = parallel.map_slices(_listed, list(range(10)), 2, local=False, spare=_steps)
    timer.join()
    assert len(items) > 11


def test_a_helper_asked_before_its_spare_work_is_done_goes_on_until_its_next_slice(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))
    assert parallel.late_spare() == []  # no helper yet
    timer = threading.Timer(0.3, parallel.hurry)
    timer.start()
    (items,), = parallel.map_slices(_listed, list(range(10)), 2, local=False, spare=_counted)
    timer.join()
    before = items[10:]
    assert before == list(range(len(before)))  # the steps it took before it was asked
    time.sleep(0.3)
    late = parallel.late_spare()  # the steps it took since, none missing, none twice
    assert len(late) > 5 and late == list(range(len(before), len(before) + len(late)))
    assert parallel.late_spare() == []  # taken once
    # its next slice ends that work: what it did not hand over by then is dropped, and the next result is whole
    timer = threading.Timer(0.2, parallel.hurry)
    timer.start()
    parallel.map_slices(_listed, list(range(10)), 2, local=False, spare=_counted)
    timer.join()
    (items,), = parallel.map_slices(_listed, list(range(10, 20)), 2, local=False)
    assert items == list(range(10, 20)) and parallel.late_spare() == []


def test_work_a_helper_did_after_handing_over_its_chunk_is_scored_as_the_run_would():
    from rhetoric.prepare import score_share, with_late_scores
    from rhetoric.registry import Registry
    from tests.conftest import MODELS

    model = Registry(MODELS).champion()
    raw = raw_articles(400)
    parallel.hurry()  # asked for at once: the helper sends its slice before it has scored much of it
    prepared, _ = prepare_chunk(raw, workers=2, local=False, scoring=score_share(model))
    early = sum(a.scored is not None for a in prepared)
    time.sleep(2)
    prepared = with_late_scores(prepared)
    scored = [a for a in prepared if a.scored is not None]
    assert len(scored) > early
    for article in scored:
        version, labels, scores = scored_rows(article.scored)
        expected_labels, expected_scores = model.predict(article.sentences)
        assert version == model.version and (labels == expected_labels).all()
        assert np.allclose(scores, expected_scores, rtol=0, atol=1e-12)


def _pid_and(argument):  # importable by name: where it ran, and what it was given
    return os.getpid(), argument


def test_work_set_aside_runs_on_an_idle_helper_or_here(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # where a helper finds _pid_and
    assert parallel.aside(_pid_and, "x").result() == (os.getpid(), "x")  # no helper: done here when asked
    parallel.start(1)
    helper, = parallel._helpers
    assert parallel.aside(_pid_and, "y").result() == (helper.process.pid, "y")
    os.kill(helper.process.pid, signal.SIGKILL)  # a helper that dies: done here instead
    helper.process.wait()
    assert parallel.aside(_pid_and, "z").result() == (os.getpid(), "z")
    # a helper busy with a chunk's slices is left to it
    with parallel._guard:
        assert parallel.aside(_pid_and, "w").result() == (os.getpid(), "w")
    assert parallel.map_slices(_listed, list(range(10)), 2, local=False) == [[list(range(10))]]  # no message mixed in
