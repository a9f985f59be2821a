"""Fetching over HTTP from a server the test starts on 127.0.0.1, feed parsing and HTML extraction."""

import socket
import threading
import time
from dataclasses import replace
from datetime import date

import pytest

from rhetoric.config import SourceSpec
from rhetoric.fetch import (
    FetchFailed, FetchRefused, HttpOptions, PageProgress, PageRef, fetch, fetch_article, fetch_pages,
    parse_feed, read_feed, unseen,
)
from rhetoric.ingest import read_folder
from tests.http_fixtures import NewsSite, article_page, rss_feed, story

BASE = HttpOptions(timeout=1.0, max_bytes=200_000, user_agent="rhetoric-test/1 (+https://example.test)")


@pytest.fixture
def site():
    with NewsSite() as running:
        yield running


@pytest.fixture
def options(site):
    """The options of these tests: the test's own server, host and port, is the one internal address allowed."""
    return replace(BASE, allow_private=(site.netloc,))


def test_fetch_sends_the_user_agent_and_returns_the_body(site, options):
    url = site.add("/a", "<html>hello</html>")
    answer = fetch(url, options)
    assert answer.body == b"<html>hello</html>" and answer.content_type == "text/html"
    assert site.user_agents == [options.user_agent]


@pytest.mark.parametrize("route, error, reason", [
    ({"body": "gone", "status": 404}, FetchRefused, "HTTP 404"),
    ({"body": "no", "status": 403}, FetchRefused, "HTTP 403"),
    ({"body": "boom", "status": 503}, FetchFailed, "HTTP 503"),
    ({"body": "late", "delay": 2.5}, FetchFailed, "timeout"),
    ({"body": "x" * 300_000}, FetchRefused, "200,000-byte cap"),
])
def test_fetch_sorts_failures_into_transient_and_permanent(site, options, route, error, reason):
    url = site.add("/p", **route)
    with pytest.raises(error, match=reason):
        fetch(url, options)


def test_a_closed_port_is_a_transient_failure():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchFailed, match="cannot connect|connection"):
        fetch(f"http://127.0.0.1:{port}/feed", replace(BASE, allow_private=(f"127.0.0.1:{port}",)))


def test_article_takes_page_metadata_and_falls_back_to_the_feed(site, options):
    dated = site.add("/dated", article_page("Talks resume", story("dated"), published="2024-03-05",
                                            author="Jane Roe", canonical=site.url("/talks/")))
    undated = site.add("/undated", article_page("Quiet day", story("undated")))
    ref = PageRef(dated, outlet="Wire", title="Feed title", published=date(2024, 3, 9), author="Desk")
    article = fetch_article(ref, options)
    assert (article.title, article.published, article.author) == ("Talks resume", date(2024, 3, 5), "Jane Roe")
    assert article.canonical_url == site.url("/talks") and article.outlet == "Wire"
    assert "Geneva" in article.text or len(article.text.split()) > 100
    assert "All rights reserved" not in article.text and "Home" not in article.text.split("\n")[0]
    fallback = fetch_article(PageRef(undated, published=date(2024, 3, 9), author="Desk"), options)
    assert (fallback.published, fallback.author) == (date(2024, 3, 9), "Desk")
    bare = fetch_article(PageRef(undated), options)
    assert bare.published is None and bare.canonical_url == undated


@pytest.mark.parametrize("body, content_type", [
    (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "text/html"),
])
def test_a_pdf_or_image_where_html_was_expected_is_refused(site, options, body, content_type):
    url = site.add("/file", body, content_type=content_type)
    with pytest.raises(FetchRefused, match="expected an HTML page"):
        fetch_article(PageRef(url), options)


def test_feed_items_become_page_references_with_the_feed_dates(site, options):
    spec = SourceSpec(kind="feed", location=site.url("/feed.xml"))
    site.add("/feed.xml", rss_feed("Test Wire", [
        {"title": "One", "link": site.url("/1"), "published": "2024-05-01"},
        {"title": "Two", "link": site.url("/2")},
        {"title": "No link", "link": "mailto:desk@example.test"},
    ]), content_type="application/rss+xml")
    listing = read_feed(spec, options)
    assert listing.failure is None
    assert [(p.url, p.title, p.published, p.outlet) for p in listing.pages] == [
        (site.url("/1"), "One", date(2024, 5, 1), "Test Wire"), (site.url("/2"), "Two", None, "Test Wire")]
    assert any("item 3 has no http(s) link" in w for w in listing.warnings)


@pytest.mark.parametrize("body, content_type, reason", [
    ("<rss><channel><title>Broken</title><item><<<<", "application/rss+xml", "not a valid RSS or Atom feed"),
    ("just some words, no markup", "text/plain", "not"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png", "expected an RSS or Atom feed"),
    ("nothing here", "text/html", "not"),
])
def test_a_feed_that_is_garbage_is_refused_with_the_reason(site, options, body, content_type, reason):
    site.add("/feed", body, content_type=content_type)
    listing = read_feed(SourceSpec(kind="feed", location=site.url("/feed")), options)
    assert listing.pages == [] and reason in listing.failure


def test_a_feed_that_errors_is_a_transient_failure(site, options):
    site.add("/feed", "boom", status=502)
    with pytest.raises(FetchFailed, match="502"):
        read_feed(SourceSpec(kind="feed", location=site.url("/feed")), options)


def test_parse_feed_reads_atom():
    atom = ('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom Desk</title>'
            '<entry><title>A</title><link href="https://a.test/1"/><updated>2024-02-03T10:00:00Z</updated>'
            '</entry></feed>')
    pages, warnings = parse_feed(atom.encode(), SourceSpec(kind="feed", location="https://a.test/f"), "x")
    assert [(p.url, p.published, p.outlet) for p in pages] == [("https://a.test/1", date(2024, 2, 3), "Atom Desk")]
    assert warnings == []


def test_a_retry_fetches_only_the_pages_that_failed(site, options):
    refs = [PageRef(site.add(f"/{n}", article_page(f"Story {n}", story(str(n))))) for n in range(3)]
    site.routes["/1"].fail_first = 1
    site.add("/pdf", b"%PDF-1.4", content_type="application/pdf")
    refs.append(PageRef(site.url("/pdf")))
    progress = PageProgress()
    with pytest.raises(FetchFailed, match="1 of 4 page"):
        fetch_pages(refs, options, progress)
    batch = fetch_pages(refs, options, progress)
    assert [site.hits(p) for p in ("/0", "/1", "/2", "/pdf")] == [1, 2, 1, 1]
    assert sorted(a.source for a in batch.articles) == sorted(r.url for r in refs[:3])
    assert [(r.source, "expected an HTML page" in r.reason) for r in batch.refusals] == [(site.url("/pdf"), True)]
    assert len(batch.warnings) == 3 and all("no publication date" in w for w in batch.warnings)


def test_pages_still_failing_are_refused_after_the_last_attempt(site, options):
    refs = [PageRef(site.add("/down", "x", fail_first=99))]
    progress = PageProgress()
    with pytest.raises(FetchFailed):
        fetch_pages(refs, options, progress)
    (refusal,) = progress.batch(attempts=3).refusals
    assert refusal.source == site.url("/down") and refusal.reason.startswith("gave up after 3 attempt(s): HTTP 500")


def test_unseen_drops_known_and_repeated_canonical_urls():
    refs = [PageRef("https://a.test/1?utm_source=rss"), PageRef("https://a.test/2"),
            PageRef("https://A.test/2/"), PageRef("https://a.test/3")]
    assert [r.url for r in unseen(refs, {"https://a.test/1"})] == ["https://a.test/2", "https://a.test/3"]


def test_html_files_in_folders_go_through_the_same_extraction(tmp_path):
    (tmp_path / "page.html").write_text(article_page("Folder story", story("folder"), published="2023-07-01",
                                                     author="Ann Lee"), encoding="utf-8")
    (tmp_path / "empty.htm").write_text("<html><body><nav>Home</nav></body></html>", encoding="utf-8")
    batch = read_folder(SourceSpec(kind="folder", location=str(tmp_path), outlet="Local"), max_bytes=100_000)
    (article,) = batch.articles
    assert (article.title, article.published, article.author, article.outlet) == (
        "Folder story", date(2023, 7, 1), "Ann Lee", "Local")
    assert "<p>" not in article.text and "All rights reserved" not in article.text
    assert [(r.source, "no article text" in r.reason) for r in batch.refusals] == [("empty.htm", True)]


# --- hostile sources: internal addresses, redirects, trickling servers, signals ---------

@pytest.fixture
def other_site():
    """A second local server: another port on 127.0.0.1, which the tests' options do not allow."""
    with NewsSite() as running:
        yield running


def test_a_link_to_another_local_port_is_refused_with_its_reason(site, other_site, options):
    url = other_site.add("/admin", "<html>secret</html>")
    with pytest.raises(FetchRefused, match=rf"^{url}: refused: 127\.0\.0\.1 is a loopback address; "
                                           rf'list "{other_site.netloc}" in settings\.allow_private'):
        fetch(url, options)
    assert other_site.hits("/admin") == 0


def test_a_redirect_to_another_local_port_is_refused_before_connecting(site, other_site, options):
    target = other_site.add("/admin", "<html>secret</html>")
    site.add("/moved", "", location=target)
    with pytest.raises(FetchRefused, match=rf"^{target}: refused: 127\.0\.0\.1 is a loopback address"):
        fetch(site.url("/moved"), options)
    assert other_site.hits("/admin") == 0


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/pub/file.txt", "file:///etc/passwd"])
def test_a_redirect_to_anything_but_http_is_refused(site, options, target):
    site.add("/moved", "", location=target, status=301)
    with pytest.raises(FetchRefused, match=rf"{site.url('/moved')} redirects to a (ftp|file): address; "
                                           "only http and https are fetched"):
        fetch(site.url("/moved"), options)


def test_a_redirect_within_the_allowed_site_is_followed(site, options):
    site.add("/new", "<html>moved here</html>")
    site.add("/old", "", location="/new")
    answer = fetch(site.url("/old"), options)
    assert answer.body == b"<html>moved here</html>" and answer.url == site.url("/new")


def test_only_http_and_https_addresses_are_fetched(options):
    with pytest.raises(FetchRefused, match="only http and https are fetched"):
        fetch("file:///etc/passwd", options)


def test_an_entry_with_a_host_only_allows_every_port_of_it(site, other_site):
    options = replace(BASE, allow_private=("127.0.0.1",))
    assert fetch(site.add("/a", "one"), options).body == b"one"
    assert fetch(other_site.add("/b", "two"), options).body == b"two"


def test_localhost_is_refused_as_the_loopback_address_it_resolves_to(site):
    url = site.add("/a", "hello").replace("127.0.0.1", "localhost")
    with pytest.raises(FetchRefused, match="localhost resolves to (127.0.0.1|::1), a loopback address"):
        fetch(url, BASE)
    assert fetch(url, replace(BASE, allow_private=("localhost",))).body == b"hello"


def test_a_public_name_that_resolves_to_an_internal_address_is_refused(site, options, monkeypatch):
    """The check is on the address connected to, not the name: a name pointed at 127.0.0.1 (DNS rebinding)."""
    real = socket.getaddrinfo
    port = int(site.netloc.split(":")[1])

    def rebound(host, *args, **kwargs):
        return real("127.0.0.1" if host == "news.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    site.add("/story", "<html>internal</html>")
    with pytest.raises(FetchRefused, match="news.example resolves to 127.0.0.1, a loopback address"):
        fetch(f"http://news.example:{port}/story", options)
    assert site.hits("/story") == 0


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "a loopback address"), ("::1", "a loopback address"),
    ("::ffff:127.0.0.1", "a loopback address"), ("::ffff:10.0.0.5", "a private address"),
    ("10.1.2.3", "a private address"), ("192.168.1.1", "a private address"), ("fc00::1", "a private address"),
    ("169.254.169.254", "a link-local address"), ("fe80::1", "a link-local address"),
    ("224.0.0.1", "a multicast address"), ("0.0.0.0", "an unspecified address"), ("::", "an unspecified address"),
    ("240.0.0.1", "a reserved address"), ("100.64.0.1", "not a public address"),
    ("93.184.216.34", None), ("2606:4700:4700::1111", None),
])
def test_internal_addresses_are_named_by_kind(address, kind):
    import ipaddress

    from rhetoric.network import internal_kind

    assert internal_kind(ipaddress.ip_address(address)) == kind


def test_a_trickling_server_is_given_up_on_at_the_deadline(site, options):
    """Two bytes a second: no single read times out, so only a deadline across reads ends it (200 s otherwise)."""
    url = site.add("/drip", "x" * 400, trickle=1.0)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match=r"no complete answer within 2 s \(timeout\)"):
        fetch(url, replace(options, timeout=2.0))
    assert time.monotonic() - started < 6


def test_one_deadline_covers_every_redirect(site, options):
    """Each hop answers within the time, the two together do not."""
    site.add("/end", "<html>end</html>", delay=0.7)
    site.add("/start", "", location="/end", delay=0.7)
    with pytest.raises(FetchFailed, match="timeout"):
        fetch(site.url("/start"), options)


def test_the_stop_switch_ends_a_fetch_at_once_and_the_pages_after_it(site, options):
    from rhetoric.network import STOP, FetchStopped

    url = site.add("/drip", "x" * 400, trickle=1.0)
    timer = threading.Timer(0.3, STOP.set)
    timer.start()
    try:
        started = time.monotonic()
        with pytest.raises(FetchStopped, match="interrupted"):
            fetch(url, replace(options, timeout=30.0))
        assert time.monotonic() - started < 5
        with pytest.raises(FetchStopped):
            fetch_pages([PageRef(site.add("/a", article_page("A", story("a"))))], options, PageProgress())
        assert site.hits("/a") == 0
    finally:
        timer.cancel()
        STOP.clear()
