"""Reading the shared corpora in place: documents, the document-level split, the stratified sampler."""

import csv
import gzip
import json

import numpy as np
import pandas as pd
import pytest

from rhetoric.corpora import (CORPORA, document_sentences, in_eval_pool, read_documents, sentence_table,
                              stratified_sample, topic_strata, write_article_folder)
from rhetoric.errors import InputError


def write_corpus(folder, name, records):
    with gzip.open(folder / CORPORA[name].file, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


@pytest.fixture
def corpora(tmp_path):
    write_corpus(tmp_path, "kremlin", [
        {"id": n, "url": f"http://en.kremlin.ru/events/president/news/{n}", "title": f"Talks with Xi number {n}",
         "date": "2019-06-05", "text": "The leaders discussed sanctions. They called for a multipolar world.\n\nTrade grew."}
        for n in range(40)])
    write_corpus(tmp_path, "ungdc", [{"country_iso3": "CUB", "session": 74, "year": 2019,
                                      "text": "We condemn the illegal\nblockade imposed on our\ncountry for sixty-\nfour years.\n\nThank you."}])
    write_corpus(tmp_path, "statedept", [
        {"url": "https://www.state.gov/a", "title": "Joint Statement of the United States and Japan", "date": "2022-01-01",
         "text": "Co-signed text."},
        {"url": "https://www.state.gov/b", "title": "Secretary Blinken's Call", "date": "2022-03-01",
         "text": "The Secretary condemned Russia's war. He discussed sanctions."}])
    write_corpus(tmp_path, "wikipedia", [
        {"date": "2025-01-01", "category": "x", "context": [], "text": "A ceasefire is agreed in the region."},
        {"date": "2025-01-01", "category": "x", "context": [], "text": "Floods hit the coast."},
        {"date": "2025-01-02", "category": "x", "context": [], "text": "Markets rise."}])
    return tmp_path


def test_documents_carry_attribution_and_clean_text(corpora):
    kremlin = list(read_documents(corpora, "kremlin"))
    assert len(kremlin) == 40 and kremlin[0].licence == "CC BY 4.0" and kremlin[0].url.endswith("/0")
    assert document_sentences(kremlin[0]) == ["Talks with Xi number 0", "The leaders discussed sanctions.",
                                              "They called for a multipolar world.", "Trade grew."]
    speech = next(read_documents(corpora, "ungdc"))
    assert speech.url == "ungdc:CUB:2019" and speech.licence == "CC0 1.0"
    assert document_sentences(speech) == ["We condemn the illegal blockade imposed on our country for sixty-four years.",
                                          "Thank you."]
    releases = list(read_documents(corpora, "statedept"))
    assert [d.url for d in releases] == ["https://www.state.gov/b"]  # joint statements are left out
    days = list(read_documents(corpora, "wikipedia"))
    assert [(d.doc_id, len(d.paragraphs)) for d in days] == [("2025-01-01", 2), ("2025-01-02", 1)]
    assert days[0].licence == "CC BY-SA 4.0" and "Portal:Current_events/2025-01-01" in days[0].url


def test_a_missing_corpus_or_unknown_name_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="corpus file not found; pass --corpora"):
        list(read_documents(tmp_path, "kremlin"))
    with pytest.raises(InputError, match="unknown corpus 'bbc'"):
        list(read_documents(tmp_path, "bbc"))


def test_the_eval_pool_is_a_fixed_fifth_of_documents_and_pools_never_share_a_document(corpora):
    documents = list(read_documents(corpora, "kremlin"))
    flags = [in_eval_pool(d) for d in documents]
    assert flags == [in_eval_pool(d) for d in read_documents(corpora, "kremlin")]
    assert 0 < sum(flags) < len(flags)
    evaluation, training = sentence_table(corpora, ("kremlin",), "eval"), sentence_table(corpora, ("kremlin",), "train")
    assert set(evaluation["url"]).isdisjoint(training["url"])


def test_stratified_sample_weights_add_up_to_each_cell():
    table = pd.DataFrame({"text": [f"s{i}" for i in range(100)], "source": ["a"] * 60 + ["b"] * 40})
    strata = np.array(["topic" if i % 10 == 0 else "other" for i in range(100)], dtype=object)
    sample = stratified_sample(table, strata, {"topic": 3, "other": 20}, seed=1)
    totals = sample.groupby(["source", "stratum"])["weight"].sum()
    assert totals.to_dict() == pytest.approx({("a", "other"): 54, ("a", "topic"): 6, ("b", "other"): 36, ("b", "topic"): 4})
    assert list(sample["text"]) == list(stratified_sample(table, strata, {"topic": 3, "other": 20}, seed=1)["text"])


def test_topic_strata_take_the_first_frame_whose_topic_is_mentioned():
    strata = topic_strata(["Sanctions and peace talks.", "Peace now.", "Weather."],
                          {"anti_sanctions": ["sanction"], "peace_talks": ["peace"]})
    assert list(strata) == ["anti_sanctions", "peace_talks", "other"]


def test_article_folder_keeps_each_documents_address(corpora, tmp_path):
    documents = list(read_documents(corpora, "ungdc")) + list(read_documents(corpora, "wikipedia"))
    out = tmp_path / "articles"
    write_article_folder(documents, out)
    rows = list(csv.DictReader(open(out / "manifest.csv", encoding="utf-8")))
    assert [r["url"] for r in rows] == ["ungdc:CUB:2019", *(d.url for d in documents[1:])]
    assert (out / rows[0]["file"]).read_text(encoding="utf-8").splitlines()[0] == rows[0]["title"]
