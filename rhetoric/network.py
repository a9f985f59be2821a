"""The HTTP client under rhetoric.fetch: http(s) only, no internal addresses, one deadline a fetch, a stop switch.

A feed is someone else's input, and so is every address it names: item links, redirects,
host names. Every connection is checked where it is made. The host is resolved, each
address it resolves to is checked (loopback, private, link-local, multicast, reserved and
unspecified addresses, IPv4-mapped IPv6 forms included, are refused unless
settings.allow_private lists the host), and the socket connects to the address that was
checked, then checks the peer it reached: a name that resolves one way for a check and
another way for the connection (DNS rebinding) gains nothing. Redirects are followed to
http and https only, and each hop connects anew through the same check. No proxy is used:
a proxy would connect on our behalf, past the check.

A fetch has one deadline for all of it (connect, headers, body, every redirect). Socket
timeouts apply to one read at a time, so a server sending two bytes a second never trips
them; a watchdog thread shuts the connection down when the deadline passes, or as soon as
STOP is set (SIGINT or SIGTERM under stop_on_signals), and the fetch fails at once.
"""

from __future__ import annotations

import functools
import http.client
import ipaddress
import signal
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Sequence
from urllib.parse import urljoin, urlsplit
from urllib.request import (
    HTTPDefaultErrorHandler, HTTPErrorProcessor, HTTPHandler, HTTPRedirectHandler, HTTPSHandler, OpenerDirector,
    Request, UnknownHandler,
)

from rhetoric.config import allow_entry
from rhetoric.errors import InputError

SCHEMES = ("http", "https")
# Set by SIGINT/SIGTERM under stop_on_signals: every fetch stops within WATCH_EVERY seconds.
STOP = threading.Event()
WATCH_EVERY = 0.1
_KINDS = (("is_unspecified", "an unspecified address"), ("is_loopback", "a loopback address"),
          ("is_link_local", "a link-local address"), ("is_multicast", "a multicast address"),
          ("is_reserved", "a reserved address"), ("is_private", "a private address"))


class FetchFailed(InputError):
    """A transient failure (connection, timeout, HTTP 5xx): the same request may work on a retry."""


class FetchRefused(InputError):
    """A permanent answer (HTTP 4xx, wrong content type, too big, not a feed, a forbidden address): retrying
    will not help."""


class FetchStopped(InputError):
    """SIGINT or SIGTERM arrived: the fetch was cut short and the run is ending."""


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread under stop_on_signals."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# --- stopping ---------------------------------------------------------------------------

def check_stop() -> None:
    """FetchStopped when a signal asked the run to stop."""
    if STOP.is_set():
        raise FetchStopped("stopped: the run was interrupted (SIGINT or SIGTERM)")


@contextmanager
def stop_on_signals(chain: bool = False) -> Iterator[None]:
    """While active, SIGINT and SIGTERM set STOP, so every fetch in every thread ends at once.

    Then the handler installed before runs when chain is true (inside a flow run that is
    Prefect's, which ends the run; for SIGINT, Python's KeyboardInterrupt), else Stopped is
    raised. Outside the main thread (where signals cannot be handled) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    STOP.clear()
    previous = {}

    def handler(signum, frame):
        STOP.set()
        before = previous.get(signum)
        if chain and callable(before):
            before(signum, frame)
            return
        raise Stopped(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, before in previous.items():
            signal.signal(signum, before)


# --- the deadline -----------------------------------------------------------------------

class Deadline:
    """One fetch's time budget, shared by its connections and redirects; a watchdog cuts them when it is spent."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.ends = time.monotonic() + seconds
        self.cut: str | None = None  # "timeout" or "stopped" once the watchdog shut the connections down
        self._twins: list[socket.socket] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        threading.Thread(target=self._watch, name="rhetoric-fetch-deadline", daemon=True).start()

    def check(self) -> None:
        """FetchStopped after a signal, FetchFailed once the time is spent; nothing while time is left."""
        check_stop()
        if self.cut == "stopped":
            raise FetchStopped("stopped: the run was interrupted (SIGINT or SIGTERM)")
        if self.cut or time.monotonic() >= self.ends:
            raise FetchFailed(f"no complete answer within {self.seconds:g} s (timeout)")

    def remaining(self) -> float:
        """Seconds left (checked first)."""
        self.check()
        return max(self.ends - time.monotonic(), 0.001)

    def track(self, sock: socket.socket) -> None:
        """Cut this socket with the others; a duplicate descriptor is kept, because TLS wrapping detaches `sock`."""
        twin = sock.dup()
        with self._lock:
            self._twins.append(twin)
            if self.cut:
                _shut(twin)

    def close(self) -> None:
        """The fetch is over: stop watching and let go of the duplicates."""
        self._done.set()
        with self._lock:
            for twin in self._twins:
                twin.close()
            self._twins.clear()

    def _watch(self) -> None:
        while not self._done.wait(min(WATCH_EVERY, max(self.ends - time.monotonic(), 0.0))):
            if STOP.is_set() or time.monotonic() >= self.ends:
                with self._lock:
                    self.cut = "stopped" if STOP.is_set() else "timeout"
                    for twin in self._twins:
                        _shut(twin)
                return


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected yet, or already closed: the next read or connect fails either way


# --- which addresses --------------------------------------------------------------------

def internal_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """'a loopback address' and the like for an address that is not on the public internet; None for a public one."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    for test, kind in _KINDS:
        if getattr(address, test):
            return kind
    return None if address.is_global else "not a public address"


class AddressPolicy:
    """Public addresses, and internal ones whose host settings.allow_private lists ("host" for any port, or
    "host:port"). The host is matched as the URL writes it: allowing "127.0.0.1:8080" allows no name that
    happens to resolve there."""

    def __init__(self, allow: Sequence[str] = ()):
        self._allow = {allow_entry(entry) for entry in allow}

    def refusal(self, host: str, port: int, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """Why connecting to `address` (resolved from `host`) is refused; None when it is allowed."""
        kind = internal_kind(address)
        if kind is None:
            return None
        name = _host_key(host)
        if (name, None) in self._allow or (name, port) in self._allow:
            return None
        shown = f"{address} is" if name == str(address) else f"{host} resolves to {address},"
        entry = f"[{name}]:{port}" if ":" in name else f"{name}:{port}"
        return f'{shown} {kind}; list "{entry}" in settings.allow_private to fetch it'


def _host_key(host: str) -> str:
    """A host as allow_entry writes it: lower case, IP addresses in their short form."""
    name = host.lower().rstrip(".").strip("[]")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


class _Blocked(Exception):
    """A connection the policy refuses; the handler turns it into FetchRefused naming the URL."""


class _Guard:
    """What one fetch's connections share: the address policy and the deadline."""

    def __init__(self, policy: AddressPolicy, deadline: Deadline):
        self.policy = policy
        self.deadline = deadline

    def connect(self, address: tuple[str, int], timeout=None, source_address=None) -> socket.socket:
        """socket.create_connection, but only to checked addresses, and within the deadline."""
        host, port = address
        self.deadline.check()
        candidates = []
        for family, kind, proto, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
            checked = ipaddress.ip_address(sockaddr[0].split("%")[0])
            why = self.policy.refusal(host, port, checked)
            if why:  # one internal address among public ones is refused too: which one we reach is not ours to pick
                raise _Blocked(why)
            candidates.append((family, kind, proto, sockaddr))
        error: OSError = OSError(f"{host} has no address")
        for family, kind, proto, sockaddr in candidates:
            sock = socket.socket(family, kind, proto)
            try:
                self.deadline.track(sock)
                sock.settimeout(self.deadline.remaining())
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                why = self.policy.refusal(host, port, ipaddress.ip_address(sock.getpeername()[0].split("%")[0]))
                if why:
                    raise _Blocked(why)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
            except BaseException:
                sock.close()
                raise
        raise error


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, guard: _Guard, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = guard.connect  # HTTPConnection.connect's one hook for making the socket


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, guard: _Guard, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = guard.connect  # TLS wraps the checked socket afterwards


def _opened(req: Request, open_hop):
    try:
        return open_hop()
    except _Blocked as exc:
        raise FetchRefused(f"{req.full_url}: refused: {exc}") from None


class _HTTPHandler(HTTPHandler):
    def __init__(self, guard: _Guard):
        super().__init__()
        self._guard = guard

    def http_open(self, req):
        connection = functools.partial(_GuardedHTTPConnection, guard=self._guard)
        return _opened(req, lambda: self.do_open(connection, req))


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """The system's trusted certificates, loaded once (not on import: importing has no side effects)."""
    return ssl.create_default_context()


class _HTTPSHandler(HTTPSHandler):
    def __init__(self, guard: _Guard):
        super().__init__(context=_tls_context())
        self._guard = guard

    def https_open(self, req):
        connection = functools.partial(_GuardedHTTPSConnection, guard=self._guard)
        return _opened(req, lambda: self.do_open(connection, req, context=self._context))


class _RedirectHandler(HTTPRedirectHandler):
    """Redirects to http and https only; the next hop connects through the same address check."""

    def http_error_302(self, req, fp, code, msg, headers):
        target = headers.get("location") or headers.get("uri")
        if target:
            scheme = urlsplit(urljoin(req.full_url, target.strip())).scheme.lower()
            if scheme not in SCHEMES:
                fp.close()
                raise FetchRefused(f"{target.strip()}: refused: {req.full_url} redirects to a {scheme}: address; "
                                   "only http and https are fetched")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def open_url(request: Request, allow_private: Sequence[str], deadline: Deadline):
    """Open an http(s) request under the address policy and the deadline; the response, or urllib's errors.

    Raises:
        FetchRefused: not http(s), or an address the policy refuses (on any hop).
        FetchFailed, FetchStopped: the deadline passed, or a signal asked to stop, while connecting.
    """
    scheme = urlsplit(request.full_url).scheme.lower()
    if scheme not in SCHEMES:
        raise FetchRefused(f"{request.full_url}: refused: a {scheme or 'schemeless'} address; "
                           "only http and https are fetched")
    guard = _Guard(AddressPolicy(allow_private), deadline)
    opener = OpenerDirector()
    for handler in (_HTTPHandler(guard), _HTTPSHandler(guard), _RedirectHandler(), HTTPDefaultErrorHandler(),
                    HTTPErrorProcessor(), UnknownHandler()):
        opener.add_handler(handler)
    return opener.open(request, timeout=deadline.remaining())
