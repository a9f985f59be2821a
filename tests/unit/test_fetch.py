"""Fetching over HTTP from a server the test starts on 127.0.0.1, feed parsing and HTML extraction."""

import socket
from datetime import date

import pytest

from rhetoric.config import SourceSpec
from rhetoric.fetch import (
    FetchFailed, FetchRefused, HttpOptions, PageProgress, PageRef, fetch, fetch_article, fetch_pages,
    parse_feed, read_feed, unseen,
)
from rhetoric.ingest import read_folder
from tests.http_fixtures import NewsSite, article_page, rss_feed, story

OPTIONS = HttpOptions(timeout=1.0, max_bytes=200_000, user_agent="rhetoric-test/1 (+https://example.test)")


@pytest.fixture
def site():
    with NewsSite() as running:
        yield running


def test_fetch_sends_the_user_agent_and_returns_the_body(site):
    url = site.add("/a", "<html>hello</html>")
    answer = fetch(url, OPTIONS)
    assert answer.body == b"<html>hello</html>" and answer.content_type == "text/html"
    assert site.user_agents == [OPTIONS.user_agent]


@pytest.mark.parametrize("route, error, reason", [
    ({"body": "gone", "status": 404}, FetchRefused, "HTTP 404"),
    ({"body": "no", "status": 403}, FetchRefused, "HTTP 403"),
    ({"body": "boom", "status": 503}, FetchFailed, "HTTP 503"),
    ({"body": "late", "delay": 2.5}, FetchFailed, "timeout"),
    ({"body": "x" * 300_000}, FetchRefused, "200,000-byte cap"),
])
def test_fetch_sorts_failures_into_transient_and_permanent(site, route, error, reason):
    url = site.add("/p", **route)
    with pytest.raises(error, match=reason):
        fetch(url, OPTIONS)


def test_a_closed_port_is_a_transient_failure():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchFailed, match="cannot connect|connection"):
        fetch(f"http://127.0.0.1:{port}/feed", OPTIONS)


def test_article_takes_page_metadata_and_falls_back_to_the_feed(site):
    dated = site.add("/dated", article_page("Talks resume", story("dated"), published="2024-03-05",
                                            author="Jane Roe", canonical="https://news.test/talks/"))
    undated = site.add("/undated", article_page("Quiet day", story("undated")))
    ref = PageRef(dated, outlet="Wire", title="Feed title", published=date(2024, 3, 9), author="Desk")
    article = fetch_article(ref, OPTIONS)
    assert (article.title, article.published, article.author) == ("Talks resume", date(2024, 3, 5), "Jane Roe")
    assert article.canonical_url == "https://news.test/talks" and article.outlet == "Wire"
    assert "Geneva" in article.text or len(article.text.split()) > 100
    assert "All rights reserved" not in article.text and "Home" not in article.text.split("\n")[0]
    fallback = fetch_article(PageRef(undated, published=date(2024, 3, 9), author="Desk"), OPTIONS)
    assert (fallback.published, fallback.author) == (date(2024, 3, 9), "Desk")
    bare = fetch_article(PageRef(undated), OPTIONS)
    assert bare.published is None and bare.canonical_url == undated


@pytest.mark.parametrize("body, content_type", [
    (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "text/html"),
])
def test_a_pdf_or_image_where_html_was_expected_is_refused(site, body, content_type):
    url = site.add("/file", body, content_type=content_type)
    with pytest.raises(FetchRefused, match="expected an HTML page"):
        fetch_article(PageRef(url), OPTIONS)


def test_feed_items_become_page_references_with_the_feed_dates(site):
    spec = SourceSpec(kind="feed", location=site.url("/feed.xml"))
    site.add("/feed.xml", rss_feed("Test Wire", [
        {"title": "One", "link": site.url("/1"), "published": "2024-05-01"},
        {"title": "Two", "link": site.url("/2")},
        {"title": "No link", "link": "mailto:desk@example.test"},
    ]), content_type="application/rss+xml")
    listing = read_feed(spec, OPTIONS)
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
def test_a_feed_that_is_garbage_is_refused_with_the_reason(site, body, content_type, reason):
    site.add("/feed", body, content_type=content_type)
    listing = read_feed(SourceSpec(kind="feed", location=site.url("/feed")), OPTIONS)
    assert listing.pages == [] and reason in listing.failure


def test_a_feed_that_errors_is_a_transient_failure(site):
    site.add("/feed", "boom", status=502)
    with pytest.raises(FetchFailed, match="502"):
        read_feed(SourceSpec(kind="feed", location=site.url("/feed")), OPTIONS)


def test_parse_feed_reads_atom():
    atom = ('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom Desk</title>'
            '<entry><title>A</title><link href="https://a.test/1"/><updated>2024-02-03T10:00:00Z</updated>'
            '</entry></feed>')
    pages, warnings = parse_feed(atom.encode(), SourceSpec(kind="feed", location="https://a.test/f"), "x")
    assert [(p.url, p.published, p.outlet) for p in pages] == [("https://a.test/1", date(2024, 2, 3), "Atom Desk")]
    assert warnings == []


def test_a_retry_fetches_only_the_pages_that_failed(site):
    refs = [PageRef(site.add(f"/{n}", article_page(f"Story {n}", story(str(n))))) for n in range(3)]
    site.routes["/1"].fail_first = 1
    site.add("/pdf", b"%PDF-1.4", content_type="application/pdf")
    refs.append(PageRef(site.url("/pdf")))
    progress = PageProgress()
    with pytest.raises(FetchFailed, match="1 of 4 page"):
        fetch_pages(refs, OPTIONS, progress)
    batch = fetch_pages(refs, OPTIONS, progress)
    assert [site.hits(p) for p in ("/0", "/1", "/2", "/pdf")] == [1, 2, 1, 1]
    assert sorted(a.source for a in batch.articles) == sorted(r.url for r in refs[:3])
    assert [(r.source, "expected an HTML page" in r.reason) for r in batch.refusals] == [(site.url("/pdf"), True)]
    assert len(batch.warnings) == 3 and all("no publication date" in w for w in batch.warnings)


def test_pages_still_failing_are_refused_after_the_last_attempt(site):
    refs = [PageRef(site.add("/down", "x", fail_first=99))]
    progress = PageProgress()
    with pytest.raises(FetchFailed):
        fetch_pages(refs, OPTIONS, progress)
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
