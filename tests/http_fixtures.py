"""A small news site the tests serve on 127.0.0.1 (never another address): feeds, pages, failures on demand."""

from __future__ import annotations

import html
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from email.utils import format_datetime
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOST = "127.0.0.1"
MAX_DELAY = 10.0  # a handler never sleeps longer, whatever a test asks


@dataclass
class Route:
    """What one path answers: a body, its type, a status, a delay, and how many 500s to send first.

    location makes it a redirect (status 302 unless given); trickle sends the body two bytes
    at a time, that many seconds apart (a hostile server holding the client).
    """

    body: bytes | str
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    delay: float = 0.0
    fail_first: int = 0
    hits: int = 0
    location: str | None = None
    trickle: float = 0.0


@dataclass
class NewsSite:
    """A threaded HTTP server on 127.0.0.1, port chosen by the OS; routes may change while it runs.

    gate, when given, is called with each request's path before it is answered, outside the
    site's lock: a test that must hold requests back (until others arrive, or until it lets
    them go) waits there.
    """

    routes: dict[str, Route] = field(default_factory=dict)
    user_agents: list[str] = field(default_factory=list)
    gate: Callable[[str], None] | None = None

    def __post_init__(self):
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the stdlib's name)
                site._answer(self)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer((HOST, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._lock = threading.Lock()

    def __enter__(self) -> "NewsSite":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    @property
    def netloc(self) -> str:
        """host:port, as settings.allow_private lists the one internal address a test may fetch from."""
        return f"{HOST}:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str, **options) -> str:
        self.routes[path] = Route(body=body, **options)
        return self.url(path)

    def hits(self, path: str) -> int:
        return self.routes[path].hits

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        path = urlsplit(request.path).path  # like a real site, ignore tracking parameters
        if self.gate is not None:
            self.gate(path)
        with self._lock:
            route = self.routes.get(path)
            self.user_agents.append(request.headers.get("User-Agent", ""))
            if route is not None:
                route.hits += 1
                failing = route.hits <= route.fail_first
        try:
            if route is None:
                self._send(request, 404, "text/plain", b"not found")
                return
            time.sleep(min(route.delay, MAX_DELAY))
            if failing:
                self._send(request, 500, "text/plain", b"internal error")
                return
            body = route.body.encode("utf-8") if isinstance(route.body, str) else route.body
            if route.location:
                self._send(request, route.status if route.status != 200 else 302, route.content_type, body,
                           location=route.location)
                return
            self._send(request, route.status, route.content_type, body, trickle=route.trickle)
        except ConnectionError:
            pass  # the client gave up (a timeout test) or was killed: nothing to do

    @staticmethod
    def _send(request, status: int, content_type: str, body: bytes, location: str | None = None,
              trickle: float = 0.0) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        if location:
            request.send_header("Location", location)
        request.end_headers()
        if not trickle:
            request.wfile.write(body)
            return
        started = time.monotonic()
        for start in range(0, len(body), 2):
            if time.monotonic() - started > 60:  # never outlive a test by much, whatever it asks
                return
            request.wfile.write(body[start:start + 2])
            time.sleep(trickle)


def article_page(title: str, paragraphs: list[str], published: str | None = None,
                 author: str | None = None, canonical: str | None = None) -> str:
    """A news page with navigation and footer boilerplate around the article."""
    head = [f"<title>{html.escape(title)} | Test Outlet</title>"]
    if published:
        head.append(f'<meta property="article:published_time" content="{published}T08:00:00Z">')
    if author:
        head.append(f'<meta name="author" content="{html.escape(author)}">')
    if canonical:
        head.append(f'<link rel="canonical" href="{html.escape(canonical)}">')
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{''.join(head)}</head><body>"
            "<nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
            f"<article><h1>{html.escape(title)}</h1>{body}</article>"
            "<footer>Copyright Test Outlet. All rights reserved.</footer></body></html>")


def rss_feed(title: str, items: list[dict]) -> str:
    """An RSS 2.0 document; each item dict has title, link and optionally published (YYYY-MM-DD)."""
    entries = []
    for item in items:
        date = ""
        if item.get("published"):
            stamp = datetime.fromisoformat(item["published"]).replace(hour=6, tzinfo=timezone.utc)
            date = f"<pubDate>{format_datetime(stamp)}</pubDate>"
        entries.append(f"<item><title>{html.escape(item['title'])}</title>"
                       f"<link>{html.escape(item['link'])}</link>{date}</item>")
    return ('<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>{html.escape(title)}</title><link>http://{HOST}/</link>"
            f"<description>test feed</description>{''.join(entries)}</channel></rss>")


_ADJ = ("senior", "regional", "foreign", "national", "caretaker", "coastal", "northern", "southern",
        "eastern", "western", "military", "civilian", "provincial", "federal", "rural", "urban")
_NOUN = ("ministers", "envoys", "negotiators", "officials", "traders", "farmers", "generals", "lawmakers",
         "mediators", "delegates", "bankers", "monitors", "engineers", "governors", "observers", "unions")
_VERB = ("discussed", "rejected", "welcomed", "questioned", "reviewed", "praised", "delayed", "signed",
         "criticised", "postponed", "drafted", "endorsed", "examined", "resumed", "opposed", "announced")
_THING = ("tariffs", "pipelines", "grain exports", "border checks", "water rights", "fishing quotas",
          "rail links", "port fees", "power lines", "customs rules", "visa terms", "debt relief",
          "airspace access", "mining permits", "currency swaps", "satellite data")
_PLACE = ("Geneva", "Ankara", "Doha", "Vienna", "Nairobi", "Jakarta", "Brasilia", "Astana",
          "Hanoi", "Lima", "Oslo", "Riyadh", "Tbilisi", "Dakar", "Minsk", "Manila")
_DAY = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def story(topic: str, sentences: int = 14) -> list[str]:
    """Paragraphs of a distinct wire-style story (about 20 words a sentence), the same for the same topic.

    Words are drawn per story from small vocabularies, so two stories share almost no
    5-word sequences while each reads as ordinary sentences to the splitter.
    """
    rng = random.Random(topic)
    lines = []
    for _ in range(sentences):
        pick = rng.choice
        lines.append(f"The {pick(_ADJ)} {pick(_NOUN)} in {pick(_PLACE)} {pick(_VERB)} new {pick(_THING)} "
                     f"on {pick(_DAY)}, while {pick(_ADJ)} {pick(_NOUN)} from {pick(_PLACE)} "
                     f"{pick(_VERB)} the {pick(_THING)} plan.")
    return [" ".join(lines[i:i + 3]) for i in range(0, len(lines), 3)]
