"""Which articles of a chunk repeat a story: the same address, the same text, or a near-duplicate of a stored
article or of an earlier one in the chunk (the MinHash machinery is rhetoric.dedupe's)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from rhetoric.dedupe import (
    BatchBands, EarlierNeighbours, NearestStored, band_keys, canonical_url, decode_signatures, split_pairs,
)
from rhetoric.ingest import NewArticle
from rhetoric.store import Store


def mark_repeats(store: Store, prepared: list[NewArticle], threshold: float
                 ) -> tuple[list[NewArticle], dict[int, int], list[str]]:
    """Find items that repeat a story, by address, content or near-duplicate text (rhetoric.dedupe).

    An item's address is where it was read from, never the canonical link its page declares:
    a page must not make another page a repeat of itself.

    Near-duplicates of stored articles are found through the band keys kept in the store
    (nearest_stored): only the candidates' signatures are read. The batch's items are
    compared with each other at once (rhetoric.dedupe.EarlierNeighbours), so two copies in
    one batch are found too: an item repeats the closest earlier item that is not itself a
    repeat. A stored match wins over a batch one of equal similarity.

    Returns the batch (a repeat of an earlier item of the batch takes that item's content
    hash, so the store records it as another source), duplicate_of for add_articles
    (batch position -> stored article id), and one line per repeat saying why.
    """
    addresses = [address(a) for a in prepared]
    stored_urls = store.known_urls(a for a in addresses if a)
    stored_hashes = store.known_hashes(a.content_hash for a in prepared)
    signed, values = decode_signatures([a.signature for a in prepared])  # decoded and keyed once, for both searches
    keys = band_keys(values)
    unknown = np.array([prepared[p].content_hash not in stored_hashes and addresses[p] not in stored_urls
                        for p in signed.tolist()], dtype=bool)
    stored_near = _nearest_of_values(store, signed[unknown], values[unknown], keys[unknown], threshold)
    neighbours = EarlierNeighbours(values, keys, threshold)  # near-duplicates within the batch
    row_of = {position: row for row, position in enumerate(signed.tolist())}
    held: set[int] = set()  # the rows of the batch's own stories so far (not repeats), which later items may repeat
    batch_urls: dict[str, int] = {}
    items = list(prepared)
    duplicate_of: dict[int, int] = {}
    notes: list[tuple[str, int | None, str]] = []  # (text, stored article named after it, rest of the text)
    for position, item in enumerate(items):
        url = addresses[position]
        if item.content_hash in stored_hashes:
            continue  # the very same text: the store records the source itself
        if url in stored_urls:
            duplicate_of[position] = stored_urls[url]
            notes.append((f"{item.source}: same canonical URL as stored article", stored_urls[url], ""))
            continue
        if url in batch_urls:
            earlier = batch_urls[url]
            notes.append((f"{item.source}: same canonical URL as {items[earlier].source}", None, ""))
            _same_story(items, duplicate_of, position, earlier)
            continue
        row = row_of.get(position)
        stored, in_batch = stored_near.get(position), neighbours.best(row, held) if row is not None else None
        if stored is not None and (in_batch is None or stored[1] >= in_batch[1]):  # equally close: the stored one
            article_id, score = stored
            duplicate_of[position] = article_id
            notes.append((f"{item.source}: near-duplicate of stored article", article_id, f" (similarity {score:.2f})"))
            continue
        if in_batch is not None:
            other, score = int(signed[in_batch[0]]), in_batch[1]
            notes.append((f"{item.source}: near-duplicate of {items[other].source} (similarity {score:.2f})", None, ""))
            _same_story(items, duplicate_of, position, other)
            continue
        if url:
            batch_urls[url] = position
        if row is not None:
            held.add(row)
    names = store.article_names(duplicate_of.values()) if duplicate_of else {}
    return items, duplicate_of, [
        head if article_id is None else f"{head} {article_id}, {names.get(article_id, 'no longer stored')}{tail}"
        for head, article_id, tail in notes]


def address(item: NewArticle) -> str | None:
    """The normalised address an item was read from: as its preparation worked it out, or worked out now."""
    return item.address if item.address is not None or not item.url else canonical_url(item.url)


def nearest_stored(store: Store, signatures: list[str | None], threshold: float,
                   chunk: int = 5000) -> dict[int, tuple[int, float]]:
    """Position -> (stored article id, similarity) of the signatures with a near-duplicate in the store.

    The candidates are the stored articles sharing a band key with a signature (Store.band_matches);
    their signatures are read and compared a chunk of articles at a time (rhetoric.dedupe.NearestStored).
    """
    positions, values = decode_signatures(signatures)
    return _nearest_of_values(store, positions, values, band_keys(values), threshold, chunk)


def _nearest_of_values(store: Store, positions: np.ndarray, values: np.ndarray, keys: np.ndarray, threshold: float,
                       chunk: int = 5000) -> dict[int, tuple[int, float]]:
    """nearest_stored for signatures decoded already: their positions, MinHash values and band keys."""
    if not len(positions):
        return {}
    bands = BatchBands(keys)
    found = [bands.pairs(found_keys, found_ids) for found_keys, found_ids in store.band_matches(bands.unique_keys())]
    rows, ids = split_pairs(np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64))
    nearest = NearestStored(values, threshold)
    candidates = np.unique(ids)
    for start in range(0, len(candidates), chunk):
        wanted = candidates[start:start + chunk]
        found_ids, found_values = _signature_values(store, wanted.tolist())
        if not len(found_ids):
            continue
        span = slice(np.searchsorted(ids, wanted[0]), np.searchsorted(ids, wanted[-1], side="right"))  # ids sorted
        at = np.searchsorted(found_ids, ids[span]).clip(max=len(found_ids) - 1)
        usable = found_ids[at] == ids[span]
        nearest.compare(rows[span][usable], ids[span][usable], at[usable], found_values)
    return {int(positions[row]): match for row, match in nearest.matches().items()}


def _signature_values(store: Store, article_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The ids, sorted, and MinHash values of those of these stored articles that have a usable signature."""
    stored = sorted(store.signatures_of(article_ids))
    usable, values = decode_signatures([text for _, text in stored])
    return np.array([stored[p][0] for p in usable], dtype=np.int64), values


def _same_story(items: list[NewArticle], duplicate_of: dict[int, int], position: int, earlier: int) -> None:
    if earlier in duplicate_of:
        duplicate_of[position] = duplicate_of[earlier]
    else:
        items[position] = replace(items[position], content_hash=items[earlier].content_hash)
