"""Deduplication: canonical URLs, MinHash near-duplicates, and repeats recorded as extra sources."""

import hashlib
import random

import numpy as np
import pytest
from sqlalchemy import text as sql_text

from rhetoric.dedupe import (
    BANDS, MIN_WORDS, NUM_PERM, ROWS_PER_BAND, EarlierNeighbours, NearestStored, SignatureIndex, band_keys, canonical_url,
    choose_canonical, decode_signature, decode_signatures, signature, similarity,
)
from rhetoric.prepare import prepare_articles
from rhetoric.repeats import mark_repeats, nearest_stored
from rhetoric.ingest import RawArticle
from rhetoric.store import NewArticle, Store
from rhetoric.store.upgrades import backfill_bands
from rhetoric.store.schema import band_rows as rows_of_bands
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


def test_signature_and_band_keys_are_those_stored_by_earlier_versions():
    # stored signatures and band keys are compared with new ones: computing them differently (another word
    # hash, another shingle, a library's hash) would silently stop every stored article matching
    body = ["Foreign ministers met in Geneva on Tuesday to discuss grain exports and port fees.",
            "The talks, the third round this year, ended without a joint statement.",
            "Officials from both delegations said they would meet again next month in Vienna.",
            "Trade between the two countries fell by a fifth last year, customs figures show."]
    text = signature(body)
    assert text.startswith("mh3:E3JzAN7YYQG+GFAA2ECz")
    assert hashlib.sha256(text.encode()).hexdigest() == "ca4f77ae297ec89bc2a154f6fe049e65b07b36cb736439a14966e9fe92ee9d2c"
    assert band_keys(decode_signature(text)).ravel()[:2].tolist() == [-2312219122643771115, 3842015523444707846]


def reference_signature(body: list[str]) -> str | None:
    """signature() spelled out one shingle at a time in Python integers: the definition the numpy passes follow."""
    import base64
    import re
    import zlib
    from rhetoric import dedupe

    words = re.findall(r"\w+", " ".join(body).lower())
    if len(words) < MIN_WORDS:
        return None
    mask = 2**64 - 1
    shingles = set()
    for start in range(len(words) - dedupe.SHINGLE_WORDS + 1):
        mixed = 0
        for word in words[start:start + dedupe.SHINGLE_WORDS]:
            mixed = (mixed * int(dedupe._SHINGLE_MULTIPLIER) + zlib.crc32(word.encode())) & mask
        shingles.add((mixed >> 32) ^ (mixed & 0xFFFFFFFF))
    minima = [min(((int(a) * h + int(b)) & mask) >> 32 for h in shingles)
              for a, b in zip(dedupe._PERM_A, dedupe._PERM_B)]
    return dedupe.SIGNATURE_PREFIX + base64.b64encode(np.array(minima, dtype="<u4").tobytes()).decode("ascii")


def test_signatures_of_many_bodies_are_each_body_s_own(monkeypatch):
    """Bodies laid end to end, in groups cut small here: each gets the signature the definition gives it alone,
    repeated shingles, short bodies (none) and a body of exactly MIN_WORDS words included."""
    from rhetoric import dedupe

    rng = random.Random(8)
    bodies = [words_body(rng, words=rng.choice([5, 39, 60, 90, 150])) for _ in range(14)]
    bodies += [["alpha beta gamma delta epsilon " * 12], [" ".join(f"w{i}" for i in range(MIN_WORDS))], []]
    expected = [reference_signature(b) for b in bodies]
    assert expected.count(None) >= 3 and len(set(expected)) >= 8
    monkeypatch.setattr(dedupe, "SHINGLES_AT_ONCE", 100)
    assert dedupe.signatures(bodies) == expected
    assert [signature(b) for b in bodies] == expected


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


def test_items_after_two_with_one_address_in_a_batch_are_still_compared(tmp_path):
    # the seventh stop's batch search lost its index to the address check's variable: a batch with two items
    # of one address, then any signed item, ended the run with a traceback
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.create_schema()
    batch, _ = prepare_articles([
        raw("a", "talks", "https://a.test/story", "Outlet A"),
        raw("b", "trade", "https://a.test/story?utm_source=rss", "Outlet B"),  # the same address as a
        raw("c", "summit", "https://c.test/summit", "Outlet C"),
        raw("d", "summit", "https://d.test/reprint", "Outlet D", title="Reprint", edit=True),  # c, edited
    ])
    items, duplicate_of, notes = mark_repeats(store, batch, threshold=0.8)
    assert [n.split(" (")[0] for n in notes] == ["b: same canonical URL as a", "d: near-duplicate of c"]
    assert items[1].content_hash == items[0].content_hash and items[3].content_hash == items[2].content_hash
    assert duplicate_of == {}  # nothing stored yet: the repeats are sources of the batch's own stories
    result = store.add_articles(items, "run-1", duplicate_of)
    assert len(result.new_article_ids) == 2 and result.already_stored == 2


def test_repeats_read_the_address_prepared_with_the_article_or_work_it_out(tmp_path, monkeypatch):
    """Preparing an article (on a helper) works out its normalised address once; mark_repeats reads it there
    instead of normalising every address again on the run's process, and works it out for an item without one."""
    import dataclasses

    import rhetoric.repeats

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.create_schema()
    batch, _ = prepare_articles([raw("a", "talks", "https://a.test/story/", "Outlet A"),
                                 raw("b", "trade", "https://A.test/story?utm_source=rss", "Outlet B")])
    assert [item.address for item in batch] == ["https://a.test/story"] * 2
    normalised = rhetoric.repeats.canonical_url
    monkeypatch.setattr(rhetoric.repeats, "canonical_url", lambda url: pytest.fail(f"normalised {url} again"))
    assert mark_repeats(store, batch, threshold=0.8)[2] == ["b: same canonical URL as a"]
    monkeypatch.setattr(rhetoric.repeats, "canonical_url", normalised)
    unprepared = [dataclasses.replace(item, address=None) for item in batch]
    assert mark_repeats(store, unprepared, threshold=0.8)[2] == ["b: same canonical URL as a"]


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


# --- band keys in the store ---------------------------------------------------------------



def words_body(rng, vocabulary: int = 3000, words: int = 80) -> list[str]:
    """A body of random words: two such bodies share no 5-word shingle."""
    text = [f"w{rng.randrange(vocabulary)}" for _ in range(words)]
    return [" ".join(text[i:i + 10]) + "." for i in range(0, words, 10)]


def variant(rng, words: list[str], changes: int) -> list[str]:
    """The words with `changes` of them replaced by new ones, as sentences of ten words."""
    words = list(words)
    for i in rng.sample(range(len(words)), changes):
        words[i] = f"x{rng.randrange(10**6)}"
    return [" ".join(words[i:i + 10]) + "." for i in range(0, len(words), 10)]


def signed(key: str, body: list[str]) -> NewArticle:
    return NewArticle(content_hash=hashlib.sha256(key.encode()).hexdigest(), sentences=[f"Headline {key}.", *body],
                      source=f"{key}.txt",
                      signature=signature(body))


def test_band_keys_are_fixed_and_shared_exactly_by_agreeing_bands():
    values = np.arange(NUM_PERM, dtype="<u4")
    keys = band_keys(values)
    assert keys.shape == (1, BANDS) and keys.dtype == np.int64
    # stored keys must stay valid: the hash is fixed arithmetic, the same on every machine and version
    assert keys[0, :2].tolist() == PINNED_KEYS
    other = values.copy()
    other[:ROWS_PER_BAND] += 1  # differs on band 0 only
    same = band_keys(other)[0] == keys[0]
    assert not same[0] and same[1:].all()
    assert len(set(keys[0].tolist())) == BANDS  # equal values in two bands give two keys


PINNED_KEYS = [8156241799034815961, 3447320541049055788]  # what stores hold: changing the hash needs a migration


def test_a_thousand_stored_articles_give_the_one_near_duplicate_without_loading_all_signatures(store, monkeypatch):
    rng = random.Random(5)
    bodies = [words_body(rng) for _ in range(1000)]
    result = store.add_articles([signed(f"a{i}", body) for i, body in enumerate(bodies)], "run-1")
    target = result.new_article_ids[537]
    copy = list(bodies[537])
    copy[2] = copy[2].replace(copy[2].split()[3], "changed", 1)
    monkeypatch.setattr(store, "signatures", lambda: pytest.fail("mark_repeats loaded every stored signature"))
    read: list[int] = []
    signatures_of = store.signatures_of
    monkeypatch.setattr(store, "signatures_of", lambda ids: read.extend(ids) or signatures_of(ids))

    batch = [signed("copy", copy), signed("new", words_body(rng))]
    items, duplicate_of, notes = mark_repeats(store, batch, threshold=0.8)
    assert duplicate_of == {0: target}
    assert notes[0].startswith(f"copy.txt: near-duplicate of stored article {target}, ")
    assert target in read and len(read) < 10  # the candidates' signatures only


def test_earlier_neighbours_find_what_an_index_fed_row_by_row_finds():
    """Variants at every distance from a few stories, in a shuffled batch: each row's match among the earlier rows
    still held (an index fed every row that matched nothing) is the one SignatureIndex finds, score included."""
    rng = random.Random(5)
    bases = [sum((b.split() for b in words_body(rng, words=60)), []) for _ in range(8)]

    texts = [signature(variant(rng, base, rng.choice([0, 0, 1, 2, 3, 5, 8, 12]))) for base in bases for _ in range(9)]
    rng.shuffle(texts)
    texts.insert(7, "not-a-signature")
    positions, values = decode_signatures(texts)
    neighbours = EarlierNeighbours(values, band_keys(values), threshold=0.8)
    index, held, matched, passed_over = SignatureIndex([], threshold=0.8), set(), 0, 0
    for row, position in enumerate(positions.tolist()):
        expected = index.match(texts[position])
        found = neighbours.best(row, held)
        assert (None if found is None else (int(positions[found[0]]), found[1])) == expected
        matched += expected is not None
        passed_over += found != neighbours.best(row, range(row))  # a closer earlier row was a repeat, not held
        if expected is None:
            index.add(position, texts[position])
            held.add(row)
    assert 10 <= matched < len(positions) - 8 and passed_over >= 3  # repeats found, and stories left
    with pytest.raises(ValueError, match="threshold"):
        EarlierNeighbours(values, band_keys(values), threshold=1.5)
    empty = np.zeros((0, NUM_PERM), dtype="<u4")
    assert EarlierNeighbours(empty, band_keys(empty), threshold=0.8).best(0, {0}) is None


def test_band_lookup_finds_what_every_signature_in_memory_finds(store):
    """Stored variants at every distance from a few stories, queried by others: the same match (article and
    similarity, the earliest stored among equals) as the in-memory index over all stored signatures."""
    rng = random.Random(11)
    bases = [sum((b.split() for b in words_body(rng, words=60)), []) for _ in range(6)]

    stored = [variant(rng, base, rng.choice([0, 0, 1, 2, 3, 5, 8])) for base in bases for _ in range(8)]
    store.add_articles([signed(f"s{i}", body) for i, body in enumerate(stored)], "run-1")
    queries = [variant(rng, base, rng.choice([0, 1, 2, 4, 6, 9])) for base in bases for _ in range(5)]
    texts = [signature(q) for q in queries]

    in_memory = SignatureIndex(sorted(store.signatures()), threshold=0.8)
    expected = {i: m for i, m in enumerate(map(in_memory.match, texts)) if m is not None}
    assert len(expected) > 10 and any(score == 1.0 for _, score in expected.values())
    assert nearest_stored(store, texts, threshold=0.8, chunk=7) == expected


def test_an_older_store_gets_its_band_keys_from_its_signatures(store):
    rng = random.Random(3)
    bodies = [words_body(rng) for _ in range(7)]
    ids = store.add_articles([signed(f"a{i}", b) for i, b in enumerate(bodies)] + [article_without_signature()],
                             "run-1").new_article_ids
    with store.engine.begin() as conn:  # as a store made before article_bands existed
        conn.execute(sql_text("DROP TABLE article_bands"))
        conn.execute(sql_text("DROP TABLE migrations"))

    store.create_schema()
    assert band_rows(store) == 7 * BANDS
    assert nearest_stored_ids(store, bodies[4]) == {0: (ids[4], 1.0)}

    # interrupted half-way: done again from the start, rows already there skipped, then recorded as done
    with store.engine.begin() as conn:
        conn.execute(sql_text(f"DELETE FROM article_bands WHERE article_id > {ids[2]}"))
        conn.execute(sql_text("DELETE FROM migrations"))
    backfill_bands(store.engine, batch_size=2)
    assert band_rows(store) == 7 * BANDS
    with store.engine.begin() as conn:
        conn.execute(sql_text("DELETE FROM article_bands"))
    store.create_schema()  # recorded: not looked for again
    assert band_rows(store) == 0


def article_without_signature() -> NewArticle:
    return NewArticle(content_hash=hashlib.sha256(b"short").hexdigest(), sentences=["Short.", "Too short to sign."], source="s.txt")


def nearest_stored_ids(store, body: list[str]) -> dict:
    return nearest_stored(store, [signature(body)], threshold=0.8)


def band_rows(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sql_text("SELECT COUNT(*) FROM article_bands")).scalar_one()


def test_bands_are_written_with_new_articles_only(store):
    rng = random.Random(8)
    body = words_body(rng)
    first = store.add_articles([signed("a", body), article_without_signature()], "run-1")
    assert band_rows(store) == BANDS
    again = store.add_articles([signed("b", body)], "run-2", duplicate_of={0: first.new_article_ids[0]})
    assert again.new_article_ids == [] and band_rows(store) == BANDS
    with store.engine.begin() as conn:  # item by item, as after a refused row: each article with its bands
        isolated = store._write_batch(conn, [signed("c", words_body(rng)), signed("d", words_body(rng))], "run-3", {},
                                      isolate=True)
    assert len(isolated.new_article_ids) == 2 and band_rows(store) == 3 * BANDS


def test_a_pair_agreeing_on_no_whole_band_is_no_match_whatever_its_similarity():
    """What a band-key collision would bring: with a threshold at or below 0.75 a signature can agree on 96 of 128
    values without sharing a band, and the in-memory index never compares it."""
    stored = np.arange(NUM_PERM, dtype="<u4").reshape(1, -1)
    query = stored.copy()
    query[0, ::ROWS_PER_BAND] += 1  # one value off in every band
    nearest = NearestStored(query, threshold=0.5)
    nearest.compare(np.array([0]), np.array([7]), np.array([0]), stored)
    assert nearest.matches() == {}
    nearest.compare(np.array([0]), np.array([9]), np.array([0]), query)
    assert nearest.matches() == {0: (9, 1.0)}


def test_band_agreement_read_as_words_is_the_plain_reshape_and_mean():
    """_agreement reads each band's booleans as one word: the same answers as the plain formulation, on pairs
    agreeing on every value, on none, on one whole band, and at random."""
    from rhetoric.dedupe import _agreement

    rng = np.random.default_rng(7)
    left = rng.integers(0, 3, (500, NUM_PERM)).astype("<u4")
    right = rng.integers(0, 3, (500, NUM_PERM)).astype("<u4")
    right[0], right[1] = left[0], left[1] + 1
    right[2] = left[2] + 1
    right[2, 8:8 + ROWS_PER_BAND] = left[2, 8:8 + ROWS_PER_BAND]  # one whole band, nothing else
    equal = left == right
    whole, similar = _agreement(equal)
    assert np.array_equal(whole, equal.reshape(-1, BANDS, ROWS_PER_BAND).all(axis=2).any(axis=1))
    assert np.array_equal(similar, equal.mean(axis=1))
    assert whole[:3].tolist() == [True, False, True] and similar[:3].tolist() == [1.0, 0.0, ROWS_PER_BAND / NUM_PERM]
    assert 0 < whole.sum() < len(whole)


def test_band_rows_come_in_key_order():
    # inserted in key order, the primary key's index takes a chunk's rows in one pass
    rows = rows_of_bands([(1, signature(body("first"))), (2, signature(body("second")))])
    assert len(rows) == 2 * BANDS and rows == sorted(rows)
    assert {article_id for _, article_id in rows} == {1, 2}
