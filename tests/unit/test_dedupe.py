"""Deduplication: canonical URLs, MinHash near-duplicates, and repeats recorded as extra sources."""

import pytest

from rhetoric.dedupe import (
    MIN_WORDS, SignatureIndex, canonical_url, choose_canonical, decode_signature, signature,
    similarity,
)
from rhetoric.pipeline import mark_repeats, prepare_articles
from rhetoric.ingest import RawArticle
from rhetoric.store import Store
from tests.http_fixtures import story


@pytest.mark.parametrize("url, expected", [
    ("HTTP://Example.ORG:80/World/Story/?utm_source=rss&utm_medium=x#comments",
     "http://example.org/World/Story"),
    ("https://example.org:443/a?b=2&a=1&fbclid=XYZ", "https://example.org/a?a=1&b=2"),
    ("https://example.org:8443//a//b/", "https://example.org:8443/a/b"),
    ("https://example.org", "https://example.org/"),
    ("https://example.org/?id=7&ref=home", "https://example.org/?id=7"),
    ("  https://example.org/a  ", "https://example.org/a"),
    ("002_seed.txt", "002_seed.txt"),
    ("", None),
    (None, None),
])
def test_canonical_url_normalises_what_does_not_change_the_page(url, expected):
    assert canonical_url(url) == expected


@pytest.mark.parametrize("declared, fetched, chosen", [
    ("https://news.test/2024/talks/", "https://news.test/p/1?utm_campaign=feed", "https://news.test/2024/talks"),
    ("https://www.news.test/2024/talks", "http://news.test/p/1", "https://www.news.test/2024/talks"),
    ("https://news.test/2024/talks", "https://www.news.test/p/1", "https://news.test/2024/talks"),
    # another site's page: a claim about someone else, ignored
    ("https://news.test/2024/talks/", "http://127.0.0.1:8000/p/1?utm_campaign=feed", "http://127.0.0.1:8000/p/1"),
    ("https://other.test/2024/talks", "https://news.test/p/1", "https://news.test/p/1"),
    ("https://news.test.evil.example/a", "https://news.test/p/1", "https://news.test/p/1"),
    ("http://127.0.0.1:9000/b", "http://127.0.0.1:8000/a", "http://127.0.0.1:8000/a"),
    # a home page, or nothing: the fetched address
    ("https://news.test/", "https://news.test/p/1", "https://news.test/p/1"),
    (None, "https://news.test/p/1", "https://news.test/p/1"),
])
def test_choose_canonical_takes_the_declared_link_only_on_the_pages_own_site(declared, fetched, chosen):
    assert choose_canonical(declared, fetched) == chosen


def body(topic: str) -> list[str]:
    return " ".join(story(topic)).split(". ")


def test_short_bodies_get_no_signature():
    short = ["Ministers met on Tuesday.", "They talked about trade."]
    assert signature(short) is None
    assert len(" ".join(body("x")).split()) > MIN_WORDS and signature(body("x")) is not None


def test_signature_is_stable_text_of_fixed_length():
    first, again = signature(body("stable")), signature(body("stable"))
    assert first == again and first.startswith("mh3:")
    assert decode_signature(first).shape == (128,)
    assert decode_signature("mh3:abc") is None and decode_signature(first.replace("mh3:", "mh2:")) is None and decode_signature(None) is None


def test_small_edits_stay_above_the_threshold_and_other_stories_far_below():
    original = body("wire")
    edited = list(original)
    edited[3] = edited[3].replace("The ", "A ", 1) + " officials said"
    edited.append("Reporting by Wire staff; editing by the desk")
    assert similarity(signature(original), signature(edited)) >= 0.85
    assert similarity(signature(original), signature(body("another"))) < 0.3


def test_index_returns_the_best_match_at_or_above_the_threshold():
    index = SignatureIndex([(1, signature(body("one"))), (2, "not-a-signature")], threshold=0.8)
    assert index.match(signature(body("one"))) == (1, 1.0)
    assert index.match(signature(body("two"))) is None
    index.add("batch:0", signature(body("two")))
    assert index.match(signature(body("two")))[0] == "batch:0"
    with pytest.raises(ValueError, match="threshold"):
        SignatureIndex([], threshold=0)


def raw(source, topic, url, outlet, title="Headline", edit=False):
    paragraphs = story(topic)
    if edit:
        paragraphs[1] = paragraphs[1].replace("The ", "A ", 1)
    return RawArticle(source=source, text=title + "\n\n" + "\n\n".join(paragraphs), outlet=outlet, url=url)


def test_repeats_are_stored_once_with_every_outlet_and_url(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.create_schema()
    first, _ = prepare_articles([raw("a", "talks", "https://a.test/talks?utm_source=rss", "Outlet A")])
    store.add_articles(first, "run-1")

    batch, refused = prepare_articles([
        raw("b", "talks", "https://b.test/copy", "Outlet B", title="Other headline", edit=True),
        raw("c", "other", "https://c.test/other", "Outlet C"),
        raw("d", "other", "https://d.test/reprint", "Outlet D", title="Reprint", edit=True),
        raw("e", "third", "https://a.test/talks", "Outlet A"),
    ])
    assert refused == []
    items, duplicate_of, notes = mark_repeats(store, batch, threshold=0.8)
    result = store.add_articles(items, "run-2", duplicate_of)

    assert len(result.new_article_ids) == 1 and result.already_stored == 3
    assert store.corpus_summary()["articles"] == 2
    stored_note = next(n for n in notes if "near-duplicate of stored article" in n)
    assert stored_note.startswith("b: near-duplicate of stored article 1, ") and "(a)" in stored_note  # named
    assert "{" not in stored_note
    assert any(n.startswith("d: near-duplicate of c") for n in notes)
    assert any(n.startswith("e: same canonical URL") for n in notes)
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT a.outlet, s.outlet, s.url FROM article_sources s JOIN articles a ON a.id = s.article_id "
            "ORDER BY s.id").all()
    carried = {}
    for story_outlet, outlet, url in rows:
        carried.setdefault(story_outlet, set()).add((outlet, url))
    assert carried["Outlet A"] == {("Outlet A", "https://a.test/talks?utm_source=rss"),
                                   ("Outlet B", "https://b.test/copy"), ("Outlet A", "https://a.test/talks")}
    assert carried["Outlet C"] == {("Outlet C", "https://c.test/other"), ("Outlet D", "https://d.test/reprint")}


def page(address: str, topic: str, declared: str | None = None) -> RawArticle:
    return RawArticle(source=address, text="Headline\n\n" + "\n\n".join(story(topic)), url=address,
                      canonical_url=declared, outlet="News")


@pytest.mark.parametrize("same_run", [True, False])
def test_a_declared_canonical_link_never_makes_another_page_a_repeat(tmp_path, same_run):
    """Page a says its canonical address is b's; b is a different story and must be stored as one."""
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.create_schema()
    claimant = page("https://news.test/a", "claimant", declared="https://news.test/b")
    real = page("https://news.test/b", "real story")
    if not same_run:
        first, _ = prepare_articles([claimant])
        store.add_articles(first, "run-1")
        assert store.known_urls(["https://news.test/b"]) == {}  # a's claim does not make b look stored
        assert store.known_urls(["https://news.test/a"]) == {"https://news.test/a": 1}
    batch, _ = prepare_articles([claimant, real] if same_run else [real])
    items, duplicate_of, notes = mark_repeats(store, batch, threshold=0.8)
    result = store.add_articles(items, "run-2", duplicate_of)
    assert notes == [] and duplicate_of == {}
    assert store.corpus_summary()["articles"] == 2 and result.already_stored == 0
