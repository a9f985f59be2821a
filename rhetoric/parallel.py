"""Preparing a run's articles on several cores.

Cleaning, splitting, language detection and signing are pure Python work on each article
alone, a third of a run's time on one core. A chunk is cut into contiguous slices: the
run's own process prepares the first while helper processes prepare the others, and the
results are put back together in input order, so what is stored does not depend on how
many processes prepared it.

The helpers are started once per process (spawned, not forked: the run holds Prefect's
threads and database connections) and kept for later chunks. They ignore Ctrl-C, which
the terminal sends to the whole process group: the run itself stops and says so in one
line, and the helpers end with it. A helper that dies (killed, out of memory) costs no
articles: its slice is prepared here instead.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence

# below this many articles for each process, starting and feeding a helper costs more than it saves
MIN_PER_PROCESS = 250

_PR_SET_PDEATHSIG = 1
_pool: ProcessPoolExecutor | None = None
_pool_size = 0
_pool_guard = threading.Lock()


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def processes_for(items: int, workers: int) -> int:
    """How many processes prepare `items` articles: settings.workers (0: one per core), fewer for a small chunk."""
    wanted = workers or cores()
    return max(1, min(wanted, items // MIN_PER_PROCESS))


def map_slices(function: Callable[[list], tuple[list, list]], items: Sequence, workers: int) -> tuple[list, list]:
    """function over contiguous slices of items, side by side; the two lists it returns, joined in input order.

    function must be importable by name (a helper process unpickles it).
    """
    parts = processes_for(len(items), workers)
    if parts == 1:
        return function(list(items))
    bounds = [len(items) * k // parts for k in range(parts + 1)]
    slices = [list(items[bounds[k]:bounds[k + 1]]) for k in range(parts)]
    pool = _helpers(parts - 1)
    pending = []
    try:
        pending = [pool.submit(function, part) for part in slices[1:]]
    except (BrokenProcessPool, RuntimeError):
        _discard(pool)
    results = [function(slices[0])]
    for k, future in enumerate(pending, start=1):
        try:
            results.append(future.result())
        except BrokenProcessPool:  # a helper died: its slice is prepared here, and the next chunk gets new helpers
            _discard(pool)
            results.append(function(slices[k]))
    for part in slices[1 + len(pending):]:
        results.append(function(part))
    first, second = [], []
    for a, b in results:
        first.extend(a)
        second.extend(b)
    return first, second


def _helpers(count: int) -> ProcessPoolExecutor:
    """The process's helper pool, with at least `count` processes (started on first use, then kept)."""
    global _pool, _pool_size
    with _pool_guard:
        if _pool is None or _pool_size < count:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            _pool = ProcessPoolExecutor(max_workers=count, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_start_helper, initargs=(os.getpid(),))
            _pool_size = count
        return _pool


def _discard(pool: ProcessPoolExecutor) -> None:
    global _pool, _pool_size
    with _pool_guard:
        if _pool is pool:
            _pool, _pool_size = None, 0
    pool.shutdown(wait=False, cancel_futures=True)


def shutdown() -> None:
    """Stop the helpers (they also stop when the process exits)."""
    global _pool, _pool_size
    with _pool_guard:
        pool, _pool, _pool_size = _pool, None, 0
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def die_with_parent(parent: int) -> None:
    """In a child process, on Linux: be sent SIGTERM when the parent dies, even by SIGKILL (a preexec_fn or a
    pool initializer)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _start_helper(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the run answers for it
    die_with_parent(parent)
