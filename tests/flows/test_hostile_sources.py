"""Pages that claim other addresses: a page's canonical link never stops another page from being fetched."""

import pytest

from rhetoric.store import Store
from tests.http_fixtures import NewsSite, article_page, rss_feed, story
from tests.project_fixtures import make_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sites():
    with NewsSite() as site, NewsSite() as other:
        yield site, other


@pytest.fixture(scope="module")
def runs(tmp_path_factory, sites, prefect_harness):
    """Run 1 lists a (canonical: b, same site) and x (canonical: y, another site); run 2 also lists b and y."""
    from flows.pipeline import run_pipeline

    site, other = sites
    site.add("/a", article_page("Envoys meet in Doha", story("claimant a"), canonical=site.url("/b")))
    site.add("/x", article_page("Unions oppose port fees", story("claimant x"), canonical=other.url("/y")))
    site.add("/b", article_page("Ministers sign grain deal", story("real b")))
    other.add("/y", article_page("Talks resume in Geneva", story("real y")))
    first_items = [{"title": "A", "link": site.url("/a")}, {"title": "X", "link": site.url("/x")}]
    site.add("/feed.xml", rss_feed("Claims Wire", first_items), content_type="application/rss+xml")
    project = make_project(tmp_path_factory.mktemp("claims"))
    (project / "rhetoric.toml").write_text(
        f'[settings]\nhttp_timeout = 5.0\nallow_private = ["{site.netloc}", "{other.netloc}"]\n\n'
        f'[[source]]\nkind = "feed"\nurl = "{site.url("/feed.xml")}"\n', encoding="utf-8")
    db = f"sqlite:///{project / 'claims.db'}"
    first = run_pipeline(db=db, root=str(project))
    site.routes["/feed.xml"].body = rss_feed("Claims Wire", first_items + [
        {"title": "B", "link": site.url("/b")}, {"title": "Y", "link": other.url("/y")}])
    second = run_pipeline(db=db, root=str(project))
    return db, first, second


def test_the_pages_named_by_other_pages_canonical_links_are_still_fetched_and_stored(sites, runs):
    site, other = sites
    db, first, second = runs
    assert first.articles_new == 2, first.render()
    assert second.articles_new == 2 and second.articles_already == 2, second.render()
    assert (site.hits("/a"), site.hits("/x"), site.hits("/b"), other.hits("/y")) == (1, 1, 1, 1)
    assert second.repeats == [] and second.refusals == []
    with Store(db).engine.connect() as conn:
        titles = {t for (t,) in conn.exec_driver_sql("SELECT title FROM articles").all()}
    assert titles == {"Envoys meet in Doha", "Unions oppose port fees", "Ministers sign grain deal",
                      "Talks resume in Geneva"}


def test_a_canonical_link_is_recorded_on_its_own_site_only(sites, runs):
    site, other = sites
    db, *_ = runs
    with Store(db).engine.connect() as conn:
        canonical = dict(conn.exec_driver_sql("SELECT source, canonical_url FROM article_sources").all())
    assert canonical[site.url("/a")] == site.url("/b")  # same site: the page's word is kept
    assert canonical[site.url("/x")] == site.url("/x")  # another site: ignored, the fetched address kept
