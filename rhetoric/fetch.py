"""Live sources: fetch feeds and article pages over HTTP, and turn them into raw articles.

Plain functions; flows/pipeline.py runs them as Prefect tasks with retries. The split
that drives retries: FetchFailed (connection error, timeout, HTTP 5xx) is transient
and worth retrying; FetchRefused (HTTP 4xx, not HTML where HTML was expected, over
the size cap, not a feed, an internal address) is not, and becomes a Refusal with its
reason. FetchStopped (a signal) ends the fetching. What may be connected to, and the
deadline of a fetch, are rhetoric.network's.
"""

from __future__ import annotations

import calendar
import http.client
import ssl
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

from rhetoric.config import Settings, SourceSpec
from rhetoric.dedupe import canonical_url, choose_canonical
from rhetoric.errors import InputError
from rhetoric.ingest import NO_TEXT_IN_HTML, IngestBatch, RawArticle, Refusal, extract_html
from rhetoric.network import (  # the three Fetch* errors are raised here too, and the flows name them as fetch.*
    Deadline, FetchFailed, FetchRefused, FetchStopped, check_stop, open_url,
)

HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
_BINARY_MAGIC = (b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"PK\x03\x04", b"RIFF")
_CHUNK = 16384  # read at most this much at a time, checking the deadline and size cap in between


@dataclass(frozen=True)
class HttpOptions:
    """How to talk to servers: time budget of a whole fetch, size cap, User-Agent, internal addresses allowed."""

    timeout: float = 20.0
    max_bytes: int = 5_000_000
    user_agent: str = "rhetoric"
    allow_private: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> "HttpOptions":
        return cls(settings.http_timeout, settings.max_bytes, settings.user_agent, tuple(settings.allow_private))


@dataclass(frozen=True)
class Response:
    url: str
    content_type: str
    charset: str | None
    body: bytes


def fetch(url: str, options: HttpOptions, accept: str = HTML_ACCEPT) -> Response:
    """GET a URL, redirects and all, within one deadline (options.timeout) and the size cap.

    Raises:
        FetchFailed: connection error, timeout, HTTP 5xx (retry).
        FetchRefused: HTTP 4xx, a body over the cap, an address that cannot or may not be fetched.
        FetchStopped: a signal asked the run to stop.
    """
    deadline = Deadline(options.timeout)
    try:
        request = Request(url, headers={"User-Agent": options.user_agent, "Accept": accept})
        with open_url(request, options.allow_private, deadline) as answer:
            declared = answer.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > options.max_bytes:
                raise FetchRefused(_too_big(int(declared), options))
            body = _read_capped(answer, options, deadline)
            return Response(answer.geturl(), answer.headers.get_content_type(),
                            answer.headers.get_content_charset(), body)
    except InputError:
        raise
    except HTTPError as exc:
        exc.close()
        if exc.code >= 500:
            raise FetchFailed(f"HTTP {exc.code} {exc.reason} (server error)") from None
        raise FetchRefused(f"HTTP {exc.code} {exc.reason}") from None
    except (URLError, http.client.HTTPException, OSError, ValueError) as exc:
        deadline.check()  # when the watchdog cut the connection, that is the reason, not the error it caused
        raise _failure(exc, options) from None
    finally:
        deadline.close()


def _failure(exc: Exception, options: HttpOptions) -> InputError:
    """The FetchFailed or FetchRefused that says what went wrong with a connection."""
    reason = exc.reason if isinstance(exc, URLError) else exc
    if isinstance(reason, ssl.SSLCertVerificationError):
        return FetchRefused(f"TLS certificate not valid: {reason}")
    if isinstance(reason, TimeoutError):
        return FetchFailed(f"no answer within {options.timeout:g} s (timeout)")
    if isinstance(exc, URLError):
        return FetchFailed(f"cannot connect: {reason}")
    if isinstance(exc, ValueError):
        return FetchRefused(f"not a fetchable address: {exc}")
    return FetchFailed(f"connection failed: {exc!r}" if not str(exc) else f"connection failed: {exc}")


def _read_capped(answer, options: HttpOptions, deadline: Deadline) -> bytes:
    chunks, size = [], 0
    while True:
        deadline.check()
        chunk = answer.read1(_CHUNK)  # what has arrived, not a full buffer: a trickle cannot hold a read
        if not chunk:
            deadline.check()  # a connection cut by the watchdog reads as an end
            if answer.length:  # the server promised more (Content-Length) than it sent
                raise FetchFailed(f"the connection closed {answer.length:,} bytes before the end of the body")
            return b"".join(chunks)
        size += len(chunk)
        if size > options.max_bytes:
            raise FetchRefused(_too_big(size, options, at_least=True))
        chunks.append(chunk)


def _too_big(size: int, options: HttpOptions, at_least: bool = False) -> str:
    return (f"{'over ' if at_least else ''}{size:,} bytes, above the {options.max_bytes:,}-byte cap "
            "(raise max_bytes in rhetoric.toml if real articles are this large)")


def _looks_binary(body: bytes) -> bool:
    return body.startswith(_BINARY_MAGIC) or b"\x00" in body[:4096]


# --- feeds ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PageRef:
    """An article page to fetch, with what the feed (or config) already says about it."""

    url: str
    outlet: str | None = None
    title: str | None = None
    published: date | None = None
    author: str | None = None
    via: str = ""


@dataclass
class FeedListing:
    """What one feed lists, or why it could not be read."""

    source: str
    pages: list[PageRef] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None


def read_feed(spec: SourceSpec, options: HttpOptions) -> FeedListing:
    """Fetch and parse an RSS or Atom feed into page references.

    Raises FetchFailed for transient trouble; anything permanent comes back as listing.failure.
    """
    listing = FeedListing(source=spec.location)
    try:
        answer = fetch(spec.location, options, accept=FEED_ACCEPT)
        if answer.content_type.startswith(("image/", "audio/", "video/")) or _looks_binary(answer.body):
            raise FetchRefused(f"expected an RSS or Atom feed, got {answer.content_type} (binary data)")
        listing.pages, listing.warnings = parse_feed(answer.body, spec, answer.url)
    except FetchRefused as exc:
        listing.failure = str(exc)
    return listing


def parse_feed(body: bytes, spec: SourceSpec, feed_url: str) -> tuple[list[PageRef], list[str]]:
    """Page references of a feed's items; FetchRefused when the document is not a feed at all."""
    import feedparser  # imported on use: a large module most commands never need

    parsed = feedparser.parse(body)
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not parsed.entries and not parsed.get("version"):
        raise FetchRefused(f"not an RSS or Atom feed ({problem or 'no channel or feed element found'})")
    outlet = spec.outlet or (parsed.feed.get("title") or "").strip() or urlsplit(feed_url).hostname
    warnings = [f"{spec.location}: the feed has XML errors ({problem}); "
                f"{len(parsed.entries)} item(s) read anyway"] if problem is not None else []
    pages: list[PageRef] = []
    for position, entry in enumerate(parsed.entries, start=1):
        link = (entry.get("link") or "").strip()
        if not link.startswith(("http://", "https://")):
            warnings.append(f"{spec.location}: item {position} has no http(s) link; skipped")
            continue
        pages.append(PageRef(url=link, outlet=outlet, title=(entry.get("title") or "").strip() or None,
                             published=_entry_date(entry), author=entry.get("author") or None,
                             via=spec.location))
    if problem is not None and not pages:
        raise FetchRefused(f"not a valid RSS or Atom feed: {problem}")
    return pages, warnings


def _entry_date(entry) -> date | None:
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    if not stamp:
        return None
    return datetime.fromtimestamp(calendar.timegm(stamp), tz=timezone.utc).date()


def url_pages(spec: SourceSpec) -> list[PageRef]:
    """Page references of a `urls` source."""
    return [PageRef(url=u, outlet=spec.outlet, via=spec.label) for u in spec.urls]


# --- pages ------------------------------------------------------------------------------

def fetch_article(ref: PageRef, options: HttpOptions) -> RawArticle:
    """Fetch one page and extract its article; the feed's metadata fills what the page lacks."""
    answer = fetch(ref.url, options)
    if answer.content_type not in HTML_TYPES or _looks_binary(answer.body):
        raise FetchRefused(f"expected an HTML page, got {answer.content_type}")
    html = answer.body.decode(answer.charset or "utf-8", errors="replace") if answer.charset else answer.body
    extracted = extract_html(html, answer.url)
    if extracted is None:
        raise FetchRefused(NO_TEXT_IN_HTML)
    return RawArticle(
        source=ref.url, text=extracted.text, title=extracted.title or ref.title,
        published=extracted.published or ref.published, outlet=ref.outlet or extracted.sitename,
        url=answer.url, author=extracted.author or ref.author, is_html=True,
        canonical_url=choose_canonical(extracted.canonical_url, answer.url),
    )


@dataclass
class PageProgress:
    """Pages of one batch fetched so far; kept across retries so a retry fetches only what failed."""

    done: dict[str, RawArticle | Refusal] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def batch(self, attempts: int | None = None) -> IngestBatch:
        """The articles and refusals so far; pages still failing are refused after `attempts` tries."""
        out = IngestBatch()
        for url, outcome in self.done.items():
            if isinstance(outcome, Refusal):
                out.refusals.append(outcome)
            else:
                out.articles.append(outcome)
                if outcome.published is None:
                    out.warnings.append(f"{url}: no publication date in the page or the feed; "
                                        "stored and flagged as undated")
        if attempts is not None:
            out.refusals += [Refusal(url, f"gave up after {attempts} attempt(s): {reason}")
                             for url, reason in self.failed.items()]
        return out


def fetch_pages(refs: list[PageRef], options: HttpOptions, progress: PageProgress) -> IngestBatch:
    """Fetch every page not fetched yet; FetchFailed after the pass if any failed transiently."""
    for ref in refs:
        if ref.url in progress.done:
            continue
        check_stop()
        try:
            progress.done[ref.url] = fetch_article(ref, options)
            progress.failed.pop(ref.url, None)
        except FetchRefused as exc:
            progress.done[ref.url] = Refusal(ref.url, str(exc))
            progress.failed.pop(ref.url, None)
        except FetchFailed as exc:
            progress.failed[ref.url] = str(exc)
    if progress.failed:
        first_url, first_reason = next(iter(progress.failed.items()))
        raise FetchFailed(f"{len(progress.failed)} of {len(refs)} page(s) failed, e.g. {first_url}: "
                          f"{first_reason}")
    return progress.batch()


def unseen(refs: list[PageRef], known: set[str]) -> list[PageRef]:
    """The references whose address (as listed, or its canonical form) is neither in `known` nor earlier in the list."""
    seen = set(known)
    fresh: list[PageRef] = []
    for ref in refs:
        key = canonical_url(ref.url)
        if key in seen or ref.url in seen:
            continue
        seen.add(key)
        fresh.append(ref)
    return fresh
