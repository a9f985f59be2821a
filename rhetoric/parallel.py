"""Preparing a run's articles on several cores.

Cleaning, splitting, language detection and signing are pure Python work on each article
alone, a third of a run's time on one core. A chunk is cut into contiguous slices: the
run's own process does the first while helper processes do the others, and the results
are put back together in input order, so what is stored does not depend on how many
processes did the work.

A helper is `python -m rhetoric.parallel`, started once per process and kept for later
chunks; it reads pickled (function, slice) pairs from a socket on its stdin and writes its
results back on the same socket. Each message is its pickle's length, then the pickle, read
in one call that waits for all of it (MSG_WAITALL): the thread of this process that waits
for a result then needs the GIL once, not once for every 64 KB a pipe holds. Over a pipe,
with this process's main thread busy, a prepared chunk of 2,500 articles (6.1 MB pickled)
took 0.79 s to come back, the helper blocked on its write all along; over the socket, 0.06 s
(bench/bench_transport.py).
It is its own program on purpose: multiprocessing's spawn and forkserver re-run the
parent's main script in each child (a script without a __main__ guard would start a
second run; one piped on stdin cannot be found), and fork copies a process that holds
Prefect's threads and database connections. A helper ignores Ctrl-C, which the terminal
sends to the whole process group (the run stops and says so in one line), and it is
sent SIGTERM when its parent dies, even by SIGKILL. A helper that fails or dies costs
nothing: its slice is done here instead.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

# below this many articles for each process, starting and feeding a helper costs more than it saves
MIN_PER_PROCESS = 250

_PR_SET_PDEATHSIG = 1
_helpers: list["_Helper"] = []
_guard = threading.Lock()


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def processes_for(items: int, workers: int) -> int:
    """How many processes share `items` items: settings.workers (0: one per core), fewer when each would get
    under MIN_PER_PROCESS."""
    wanted = workers or cores()
    return max(1, min(wanted, items // MIN_PER_PROCESS))


_FAILED = object()  # what a helper that failed on its slice, or died, hands back


def map_slices(function: Callable[[list], Any], items: Sequence, workers: int, local: bool = True,
               spare: Callable[[Any], Iterator] | None = None) -> list:
    """function over contiguous slices of items, side by side; its results, one per slice, in input order.

    With local, this process does the first slice while helpers do the others (it has
    nothing else to do meanwhile). Without it, the slices go to one helper fewer, and none
    is done here: the caller is a background thread of a process busy with other work, which
    keeps its core, and a slice done here would slow that work down (the GIL). Either way, a slice whose
    helper fails is done here. function must be importable by name (a helper unpickles it).

    spare, when given, is work a helper does on its result while it waits to be asked for it:
    a generator function that improves the result in place a step at a time, each step
    yielding what it added. The helper stops at the first step after hurry() (or, with
    local, as soon as this process has done its own slice) and sends the result as it
    stands; a slice done here gets no spare work. A helper that was asked before its spare
    work was done goes on with it until it is handed its next slice, and late_spare() takes
    what those steps added.

    Raises:
        Stopped: stop() was called while the slices were out (the run is ending).
    """
    parts = processes_for(len(items), workers)
    if parts == 1:
        return [function(list(items))]
    if not local:  # one process fewer: this one keeps a core for its own work (with a helper on every core,
        parts -= 1  # a two-core machine ran three processes, and the run's own work slowed as much as it gained)
    bounds = [len(items) * k // parts for k in range(parts + 1)]
    slices = [list(items[bounds[k]:bounds[k + 1]]) for k in range(parts)]
    mine = slices[:1] if local else []
    theirs = slices[len(mine):]
    with _guard:  # one chunk at a time uses the helpers
        _stopping.clear()
        helpers = _running(len(theirs))
        # fed from threads: a helper reads its slice only once it has imported the function's module, and
        # writing the socket would hold up this process's own slice until then
        feeding = [_Feed(helper, function, part, spare) for helper, part in zip(helpers, theirs)]
        results = [function(part) for part in mine]
        for feed in feeding:
            feed.sent()
        if local or _hurry_next.is_set():  # this process waits for them now (or asked before they went out)
            _hurry_next.clear()
            for feed in feeding:
                feed.helper.hurry()
        for feed, part in zip(feeding, theirs):
            result = feed.helper.receive() if feed.sent() else _FAILED
            if result is _FAILED and _stopping.is_set():
                raise Stopped("preparing stopped: the run is ending")
            results.append(function(part) if result is _FAILED else result)
    return results


class Stopped(Exception):
    """map_slices was stopped from another thread (stop())."""


_stopping = threading.Event()


def hurry() -> None:
    """Ask every helper working on a slice for its result now: it ends its spare work (map_slices' spare) at the
    next step. From any thread: the run calls it when it turns to a chunk it has not got yet. With no slice out
    (the chunk's slices are still being handed over), the slices handed over next are asked for at once."""
    asked = [helper.hurry() for helper in list(_helpers)]
    if not any(asked):
        _hurry_next.set()


_hurry_next = threading.Event()  # hurry() came before the slices it meant went out


def aside(function: Callable[[Any], Any], argument: Any) -> "Aside":
    """function(argument) on a live helper with nothing else to do, while this process goes on with other
    work; Aside.result() waits for it. With no such helper (none started, or a chunk's slices out), or one
    that fails or dies, result() computes it here instead: the same result either way, so callers use it
    for work they could do themselves but need not wait for (the dashboard's bootstrap bands, drawn at
    the end of a run while its helper is idle). function must be importable by name (a helper unpickles it).
    """
    if not _guard.acquire(blocking=False):  # a chunk is being prepared: its helpers are busy
        return Aside(function, argument)
    helper, sent = next((h for h in _helpers if h.alive()), None), False
    try:
        sent = helper is not None and helper.send(function, argument)
    finally:
        if not sent:  # else the Aside's thread lets go of _guard once the answer is read
            _guard.release()
    return Aside(function, argument, helper if sent else None)


class Aside:
    """One call handed to a helper (aside()), or left to be made here when its result is asked for."""

    def __init__(self, function: Callable[[Any], Any], argument: Any, helper: "_Helper | None" = None) -> None:
        self.function, self.argument, self.value = function, argument, _FAILED
        self.thread = None
        if helper is not None:  # the helper holds _guard's place until its answer is read
            self.thread = threading.Thread(target=self._receive, args=(helper,), daemon=True)
            self.thread.start()

    def _receive(self, helper: "_Helper") -> None:
        try:
            self.value = helper.receive()
        finally:
            _guard.release()

    def result(self) -> Any:
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.value is _FAILED:
            self.value = self.function(self.argument)
        return self.value


def late_spare() -> list:
    """What the helpers' spare work added after they sent their results (map_slices' spare): what its steps
    yielded since, joined in one list, from every helper still at it or done with it; [] when the next chunk's
    slices are being handed out, or were (the helpers dropped that work to take them).

    For the run's last chunk, whose helpers have nothing else to do while the run checks and
    stores it: asked for just before the run scores that chunk, it brings the scores of what
    the helpers scored meanwhile. A helper asked in the middle of a step answers at its end.
    """
    if not _guard.acquire(blocking=False):  # a chunk is being handed out: its helpers are busy with it
        return []
    try:
        return [item for helper in _helpers for item in helper.late_work()]
    finally:
        _guard.release()


def stop() -> None:
    """End the helpers now, from any thread: a map_slices waiting on them raises Stopped instead of doing
    their slices itself. For a run that is ending (interrupted, failed or skipped) with a chunk still out."""
    _stopping.set()
    for helper in list(_helpers):
        helper.process.kill()


class _Feed:
    """One slice being written to one helper, from its own thread."""

    def __init__(self, helper: "_Helper", function: Callable, part: list, spare: Callable | None = None) -> None:
        self.helper, self.ok = helper, False
        self.thread = threading.Thread(target=self._send, args=(function, part, spare), daemon=True)
        self.thread.start()

    def _send(self, function: Callable, part: list, spare: Callable | None) -> None:
        self.ok = self.helper.send(function, part, spare)

    def sent(self) -> bool:
        """Wait for the slice to be written; whether the helper took it."""
        self.thread.join()
        return self.ok


class _Helper:
    """One helper process and the socket it talks on."""

    def __init__(self, warm: str | None = None) -> None:
        package_root = str(Path(__file__).resolve().parents[1])  # found even when rhetoric is not installed
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH"))
                                                          if p)}
        warming = ["--warm", warm] if warm else []
        self.socket, theirs = socket.socketpair()
        self.writing = threading.Lock()  # one writer at a time on the socket: a slice, or hurry()'s signal
        self.working = self.hurried = False  # a slice is out, its result not yet read; hurry() was said for it
        self.late = False  # its result came back before its spare work was done, which it goes on with
        try:  # the helper's stdin is its end of the socket; its stdout goes nowhere, so nothing printed mixes in
            self.process = subprocess.Popen([sys.executable, "-m", "rhetoric.parallel", *warming], stdin=theirs,
                                            stdout=subprocess.DEVNULL, env=env,
                                            preexec_fn=partial(_arm_helper, os.getpid()))
        except BaseException:
            self.socket.close()
            raise
        finally:
            theirs.close()  # the helper's copy only: closing ours then ends it (end of input)

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, function: Callable, part: list, spare: Callable | None = None) -> bool:
        """Hand the helper a slice (and its spare work); False when it cannot take it (dead)."""
        try:
            with self.writing:
                send_message(self.socket, (function, part, spare))
                self.working, self.hurried, self.late = True, False, False
            return True
        except (OSError, ValueError):
            self.stop()
            return False

    def hurry(self) -> bool:
        """Ask for the slice's result now (an empty message): the helper ends its spare work at the next step.
        Said once per slice, and only while one is out (whether one is); a signal that comes after the result
        is skipped."""
        with self.writing:
            if not self.working:
                return False
            if not self.hurried:
                self.hurried = True
                try:
                    self.socket.sendall(_HEADER.pack(0))
                except OSError:  # a dead helper: receive() finds out
                    pass
            return True

    def receive(self):
        """The helper's result; _FAILED when it failed on the slice or died (the caller does the slice itself)."""
        unfinished = False
        try:
            ok, result, unfinished = receive_message(self.socket)
        except (EOFError, OSError, ValueError, TypeError, pickle.UnpicklingError):
            self.stop()
            return _FAILED
        finally:
            with self.writing:
                self.working, self.late = False, unfinished
        return result if ok else _FAILED

    def late_work(self) -> list:
        """What the helper's spare work added since it sent its result (late_spare); called holding _guard."""
        with self.writing:
            if not self.late:
                return []
            self.late = False
            try:
                send_message(self.socket, _LATE)
            except OSError:
                return []
        try:
            ok, items, _ = receive_message(self.socket)
        except (EOFError, OSError, ValueError, TypeError, pickle.UnpicklingError):
            self.stop()
            return []
        return list(items) if ok else []

    def stop(self) -> None:
        try:
            self.socket.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_HEADER = struct.Struct("<Q")  # a message's length, before its pickle
_LATE = "late"  # late_spare()'s question to a helper
_WAITALL = getattr(socket, "MSG_WAITALL", 0)


def send_message(sock: socket.socket, message: Any) -> None:
    """Pickle the message and write it, its length first."""
    blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_HEADER.pack(len(blob)))
    sock.sendall(blob)


def receive_message(sock: socket.socket) -> Any:
    """The next message on the socket, skipping empty ones (hurry()'s signals that came too late to matter).

    Raises:
        EOFError: the other end closed the socket, before or during the message.
    """
    while (message := _read_message(sock)) is _EMPTY:
        pass
    return message


_EMPTY = object()  # what _read_message gives for an empty message


def _read_message(sock: socket.socket) -> Any:
    """One message off the socket: its pickle loaded, or _EMPTY for an empty one (hurry()'s signal)."""
    size, = _HEADER.unpack(_read_exactly(sock, _HEADER.size))
    return pickle.loads(_read_exactly(sock, size)) if size else _EMPTY


def _hurried(sock: socket.socket) -> bool:
    """Whether something came in on the socket while a helper works: hurry()'s signal (nothing else is sent
    before the helper's result is read), which it takes off the socket."""
    if not select.select([sock], [], [], 0)[0]:
        return False
    _read_exactly(sock, _HEADER.size)  # an empty message; at the end of input, EOFError ends the helper
    return True


def _message_if_any(sock: socket.socket) -> Any:
    """The next message if one has come in, skipping empty ones (hurry()'s signals); None when none has."""
    while select.select([sock], [], [], 0)[0]:
        if (message := _read_message(sock)) is not _EMPTY:
            return message
    return None


def _read_exactly(sock: socket.socket, size: int) -> bytearray:
    """size bytes, waited for in the kernel (one call, unless a signal or the end of input cuts it short)."""
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        count = sock.recv_into(view[got:], size - got, _WAITALL)
        if not count:
            raise EOFError("the other end closed the socket")
        got += count
    return buffer


def _running(count: int, warm: str | None = None) -> list[_Helper]:
    """`count` live helpers (dead ones replaced, new ones started, warming with `warm`); called holding _guard."""
    _helpers[:] = [h for h in _helpers if h.alive() or h.stop()]
    while len(_helpers) < count:
        _helpers.append(_Helper(warm))
    return _helpers[:count]


def start(count: int, warm: str | None = None) -> None:
    """Start helpers now, up to `count` live ones, so that they are ready when the first slices come.

    warm is "module:function": each helper started here imports the module and calls the
    function (no arguments) in a background thread as soon as it starts, to load what its
    slices will need while the caller is still busy with other things. A helper that fails
    to warm up is no worse off: it loads the same things on its first slice.
    """
    with _guard:
        _running(count, warm)


def shutdown() -> None:
    """Stop the helpers (closing their input ends them; they also end with this process)."""
    with _guard:
        for helper in _helpers:
            helper.stop()
        _helpers.clear()


def die_with_parent(parent: int) -> None:
    """In a child process, on Linux: be sent SIGTERM when the parent dies, even by SIGKILL (a preexec_fn)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def _arm_helper(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # kept across exec: Ctrl-C is the run's to answer
    die_with_parent(parent)


def _serve(argv: Sequence[str] = ()) -> None:
    """The helper's loop: (function, slice, spare) in, (ok, result, whether spare work is left) out, on the
    socket that is its stdin, until the socket closes. With `--warm module:function` in argv, that function
    runs first, in a background thread (start())."""
    channel = socket.socket(fileno=os.dup(0))
    sys.stdout = sys.stderr  # anything printed goes to stderr
    if len(argv) == 2 and argv[0] == "--warm":
        threading.Thread(target=_warm_up, args=(argv[1],), name="rhetoric-helper-warm-up", daemon=True).start()
    message = None  # one that came in while the helper went on with spare work after its result
    try:
        while True:
            if message is None:
                message = receive_message(channel)
            if message == _LATE:  # no spare work went on after the result: nothing came of it
                send_message(channel, (True, [], False))
                message = None
                continue
            function, part, spare = message
            message = None
            try:
                reply = (True, function(part))
            except Exception as exc:  # the parent prepares the slice itself and meets the error there
                reply = (False, repr(exc))
            steps = iter(spare(reply[1])) if spare is not None and reply[0] else iter(())
            unfinished = _spare_until_hurried(steps, channel)
            send_message(channel, (*reply, unfinished))
            if unfinished:
                late, message = _spare_until_next(steps, channel)
                if message == _LATE:
                    send_message(channel, (True, late, False))
                    message = None
    except Exception:  # input closed (the run ended), or a function this process cannot import: end quietly,
        return         # and the parent prepares the slice itself


def _spare_until_hurried(steps: Iterator, channel: socket.socket) -> bool:
    """Take spare work's steps until hurry()'s signal comes: whether it came before the work was done. Spare
    work that fails ends there (it is a bonus: the result goes back as the last step left it)."""
    while True:
        try:
            next(steps)
        except Exception:  # StopIteration: done
            return False
        if _hurried(channel):
            return True


def _spare_until_next(steps: Iterator, channel: socket.socket) -> tuple[list, Any]:
    """Spare work left after the result went, a step at a time until a message comes in: what the steps
    yielded, joined, and that message (late_spare()'s question, or the next slice, which ends the work)."""
    late: list = []
    while True:
        try:
            late.extend(next(steps) or ())
        except Exception:  # StopIteration: done; the helper waits for the next message
            return late, receive_message(channel)
        message = _message_if_any(channel)
        if message is not None:
            return late, message


def _warm_up(target: str) -> None:
    """Call "module:function"; any failure is left for the first slice to meet."""
    import importlib

    try:
        module, name = target.split(":")
        getattr(importlib.import_module(module), name)()
    except Exception:
        pass


if __name__ == "__main__":
    _serve(sys.argv[1:])
