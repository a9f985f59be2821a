"""The pipeline flow against feeds and pages served on 127.0.0.1: good items stored, bad ones reported."""

import socket

import pytest

from rhetoric.store import Store
from tests.http_fixtures import NewsSite, article_page, rss_feed, story
from tests.project_fixtures import make_project

pytestmark = pytest.mark.slow


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def site():
    with NewsSite() as running:
        yield running


@pytest.fixture(scope="module")
def elsewhere():
    """Another service on this machine (another port of 127.0.0.1), which the project does not allow."""
    with NewsSite() as running:
        running.add("/internal/status", article_page("Internal status", story("internal")))
        yield running


@pytest.fixture(scope="module")
def project(tmp_path_factory, site, elsewhere):
    project = make_project(tmp_path_factory.mktemp("live"))
    pages = {
        "/world/1": article_page("Ministers sign grain deal", story("one"), published="2024-06-01"),
        "/world/2": article_page("Envoys meet in Doha", story("two")),
        "/world/3": article_page("Unions oppose port fees", story("three")),
        "/world/flaky": article_page("Talks resume after delay", story("flaky"), published="2024-06-03"),
        "/world/slow": article_page("Slow story", story("slow"), published="2024-06-04"),
    }
    for path, html in pages.items():
        site.add(path, html)
    site.routes["/world/flaky"].fail_first = 1
    site.routes["/world/slow"].delay = 3.0
    site.add("/world/report.pdf", b"%PDF-1.5\n%binary", content_type="application/pdf")
    items = [{"title": "Grain deal", "link": site.url("/world/1?utm_source=rss"), "published": "2024-06-02"},
             {"title": "Envoys", "link": site.url("/world/2"), "published": "2024-06-02"},
             {"title": "Port fees", "link": site.url("/world/3")},
             {"title": "Flaky", "link": site.url("/world/flaky"), "published": "2024-06-03"},
             {"title": "Slow", "link": site.url("/world/slow")},
             {"title": "Report", "link": site.url("/world/report.pdf")},
             {"title": "Gone", "link": site.url("/world/gone")},
             {"title": "Internal", "link": elsewhere.url("/internal/status")}]
    site.add("/feed.xml", rss_feed("Test Wire", items), content_type="application/rss+xml")
    site.add("/broken.xml", "<rss><channel><title>Broken</title><item><<<", content_type="application/rss+xml")
    copy = story("one")
    copy[1] = copy[1].replace("The ", "A ", 1)
    site.add("/other/reprint", article_page("Grain deal signed, ministers say", copy, published="2024-06-02"))
    down_port = closed_port()
    down = f"http://127.0.0.1:{down_port}/feed.xml"
    (project / "rhetoric.toml").write_text(f"""
[settings]
http_timeout = 1.0
fetch_retries = 1
retry_backoff = 0.2
lock_wait = 0.5
allow_private = ["{site.netloc}", "127.0.0.1:{down_port}"]

[[source]]
kind = "feed"
url = "{site.url('/feed.xml')}"

[[source]]
kind = "feed"
url = "{site.url('/broken.xml')}"
outlet = "Broken Times"

[[source]]
kind = "feed"
url = "{down}"

[[source]]
kind = "urls"
urls = ["{site.url('/other/reprint')}"]
outlet = "Reprint Daily"
""", encoding="utf-8")
    return project


@pytest.fixture(scope="module")
def first(project, prefect_harness):
    from flows.pipeline import run_pipeline

    db = f"sqlite:///{project / 'live.db'}"
    return db, run_pipeline(db=db, root=str(project))


def test_good_items_are_stored_once_and_bad_ones_reported_with_the_reason(site, elsewhere, first):
    db, summary = first
    assert summary.articles_new == 4, summary.render()
    assert summary.articles_already == 1, (summary.refusals, summary.repeats)  # the reprint
    reasons = {r.source: r.reason for r in summary.refusals}
    internal = elsewhere.url("/internal/status")
    assert set(reasons) == {site.url(p) for p in ("/world/slow", "/world/report.pdf", "/world/gone")} | {internal}
    assert reasons[internal] == (f"{internal}: refused: 127.0.0.1 is a loopback address; "
                                 f'list "{elsewhere.netloc}" in settings.allow_private to fetch it')
    assert elsewhere.hits("/internal/status") == 0 and f"refused {internal}: {internal}: refused" in summary.render()
    assert "gave up after 2 attempt(s)" in reasons[site.url("/world/slow")]
    assert "timeout" in reasons[site.url("/world/slow")]
    assert "expected an HTML page, got application/pdf" in reasons[site.url("/world/report.pdf")]
    assert "HTTP 404" in reasons[site.url("/world/gone")]
    failed = {r.source: r.reason for r in summary.source_failures}
    assert "not a valid RSS or Atom feed" in failed[site.url("/broken.xml")]
    (down,) = [reason for source, reason in failed.items() if source != site.url("/broken.xml")]
    assert "feed not read after 2 attempt(s)" in down and "connect" in down
    assert site.hits("/world/flaky") == 2 and site.hits("/world/1") == 1 and site.hits("/world/slow") == 2
    assert any("near-duplicate" in note for note in summary.repeats)
    text = summary.render()
    assert "sources: 2 failed this run" in text and site.url("/broken.xml") in text


def test_dates_come_from_the_page_then_the_feed_and_undated_items_are_flagged(site, first):
    db, summary = first
    store = Store(db)
    with store.engine.connect() as conn:
        rows = {source: (published, missing) for source, published, missing in conn.exec_driver_sql(
            "SELECT source, published, date_missing FROM articles").all()}
        sources = conn.exec_driver_sql("SELECT outlet, url FROM article_sources").all()
    assert rows[site.url("/world/1?utm_source=rss")][0] == "2024-06-01"  # the page's date wins
    assert rows[site.url("/world/2")][0] == "2024-06-02"  # from the feed
    assert rows[site.url("/world/3")] == (None, 1)
    assert any(site.url("/world/3") in w and "no publication date" in w for w in summary.warnings)
    assert ("Reprint Daily", site.url("/other/reprint")) in sources
    assert len(sources) == 5


def test_the_run_publishes_its_summary_frame_shares_and_dashboard_link(first):
    from prefect.artifacts import Artifact

    _, summary = first
    markdown = Artifact.get("rhetoric-run-summary")
    assert summary.run_id in markdown.data and "Test Wire | 4" in markdown.data
    assert "not a valid RSS or Atom feed" in markdown.data and "HTTP 404" in markdown.data
    shares = Artifact.get("rhetoric-frame-shares")
    assert {row["frame"] for row in summary.frame_shares} <= set(shares.data.replace('"', " ").split())
    assert sum(row["sentences"] for row in summary.frame_shares) == summary.sentences_new * len(summary.frame_shares)
    assert Artifact.get("rhetoric-dashboard").data.startswith("[rhetoric dashboard](file://")


def test_the_next_run_fetches_only_what_is_new_and_retries_what_failed(site, elsewhere, project, first):
    from flows.pipeline import run_pipeline

    db, _ = first
    site.routes["/world/slow"].delay = 0.0
    before = {p: site.hits(p) for p in ("/world/1", "/world/2", "/world/flaky", "/other/reprint")}
    again = run_pipeline(db=db, root=str(project))
    assert {p: site.hits(p) for p in before} == before
    assert again.articles_new == 1 and again.new_by_outlet == {"Test Wire": 1}
    assert {r.source for r in again.refusals} == {site.url("/world/report.pdf"), site.url("/world/gone"),
                                                  elsewhere.url("/internal/status")}
    assert len(again.source_failures) == 2
    assert Store(db).corpus_summary()["articles"] == 5
    runs = Store(db).export_runs()
    assert runs["status"].tolist() == ["completed", "completed"]


def test_a_run_that_finds_the_store_busy_skips_with_a_message(project, first):
    from flows.pipeline import run_pipeline

    db, _ = first
    lock = Store(db).run_lock()
    assert lock.acquire()
    try:
        skipped = run_pipeline(db=db, root=str(project))
    finally:
        lock.release()
    assert skipped.skipped and "another run is writing to this store (pid" in skipped.skipped
    assert "waited 0.5 s (lock_wait in rhetoric.toml)" in skipped.skipped
    assert "skipped: another run" in skipped.render()
    runs = Store(db).export_runs()
    assert runs["status"].tolist()[-1] == "skipped" and runs["articles_new"].tolist()[-1] == 0


def test_a_rerun_counts_stored_feed_items_as_already_stored(project, first):
    from flows.pipeline import run_pipeline

    db, summary = first
    again = run_pipeline(db=db, root=str(project))
    assert again.articles_new == 0
    # the four stored feed items and the stored reprint are not fetched again, and are counted
    assert again.articles_already >= 5, again.render()
