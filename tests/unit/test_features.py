"""Topic flags: which frames' topic words a sentence mentions, matched like the sampler's regex."""

import numpy as np
import pytest

from rhetoric.corpora import topic_pattern
from rhetoric.features import NewsFeatures
from rhetoric.vectors import tokenise, topic_flags, topic_phrases

TOPICS = (("multipolar", "world order", "national currenc"), ("sanction", "coercive measure"),
          ("peace", "cease-fire"), ("the west", "nato"))


@pytest.mark.parametrize("text, expected", [
    ("Sanctions were imposed on Friday.", [0, 1, 0, 0, 1]),
    ("The new world order is emerging.", [1, 0, 0, 0, 1]),
    ("Trade in national currencies grew.", [1, 0, 0, 0, 1]),
    ("The national team won; currency markets fell.", [0, 0, 0, 0, 0]),
    ("The western allies met NATO officials.", [0, 0, 0, 1, 1]),
    ("A cease-fire took hold, then a cease fire talk.", [0, 0, 1, 0, 1]),
    ("Peacekeepers and unilateral coercive measures.", [0, 1, 1, 0, 1]),
    ("World leaders met; order was restored.", [0, 0, 0, 0, 0]),
    ("Nothing to see here.", [0, 0, 0, 0, 0]),
])
def test_topic_flags_match_words_in_a_row_with_the_last_as_a_prefix(text, expected):
    ids, doc, words = tokenise([text])
    assert topic_flags(ids, doc, words, 1, topic_phrases(TOPICS))[0].astype(int).tolist() == expected


def test_topic_flags_agree_with_the_sampler_regex_and_never_cross_sentences():
    texts = ["The world", "order of the day", "Sanctions, peace and NATO.", "westward", "the West"]
    ids, doc, words = tokenise(texts)
    flags = topic_flags(ids, doc, words, len(texts), topic_phrases(TOPICS))
    regex = np.column_stack([[topic_pattern(t).search(s) is not None for s in texts] for t in TOPICS])
    assert (flags[:, :4] == regex).all()
    assert not flags[0].any() and not flags[1].any()  # "world" + "order" across two sentences is no match


def test_news_features_append_topic_columns_as_plain_flags():
    texts = ["Sanctions hurt trade, the minister said.", "The weather was fine in Moscow today."] * 3
    plain = NewsFeatures(char_ngrams=None, min_df=1).fit(texts)
    flagged = NewsFeatures(char_ngrams=None, min_df=1, topics=TOPICS).fit(texts)
    a, b = plain.transform(texts), flagged.transform(texts)
    assert b.shape[1] == a.shape[1] + len(TOPICS) + 1
    assert np.allclose(b[:, : a.shape[1]].toarray(), a.toarray())
    assert b[0, -5:].toarray().tolist() == [[0, 1, 0, 0, 1]] and b[1, -5:].nnz == 0
