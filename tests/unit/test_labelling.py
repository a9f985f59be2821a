"""The labelling loop: suggestions the champion is least sure of, and imports from Label Studio and doccano."""

import json

import numpy as np
import pandas as pd
import pytest

from rhetoric.errors import InputError, LabelError
from rhetoric.labelling import import_annotations, suggest
from rhetoric.labels import load_frames, load_labels, spreadsheet_safe, unquote_cell
from tests.model_fixtures import FRAMES_TOML


class FixedModel:
    """Scores each sentence by a number written in it, so the least-sure order is known in advance."""

    version = "test-1"
    frames = ("multipolarity", "peace_talks")
    metadata = {"thresholds": {"multipolarity": 0.5, "peace_talks": 0.4}}

    def predict(self, texts):
        scores = np.array([[float(t.split("score ")[1].split(" ")[0]), 0.0] for t in texts])
        return scores >= np.array([0.5, 0.4]), scores


def sentences(texts):
    return pd.DataFrame({"sentence_id": range(len(texts)), "text": texts, "source": [f"a{i % 3}" for i in range(len(texts))],
                         "outlet": "TASS", "published": "2022-03-30"})


def test_suggest_picks_least_sure_first_in_labels_format():
    table = sentences(["Lavrov flew to Beijing score 0.9 on Monday.", "Wang praised the partnership score 0.52 loudly.",
                       "Trade grew fast score 0.1 this year.", "Talks in Huangshan covered Afghanistan score 0.45 mostly.",
                       "Officials denied every report score 0.7 here."])
    out = suggest(table, FixedModel(), n=3)
    assert [t.split("score ")[1][:4] for t in out["text"]] == ["0.52", "0.45", "0.7 "]
    assert list(out["frames"]) == ["multipolarity", "", "multipolarity"]
    assert set(out["origin"]) == {""}
    assert list(out.columns[:4]) == ["text", "frames", "origin", "batch"]
    assert {"score_multipolarity", "score_peace_talks", "sentence_id", "outlet", "published"} <= set(out.columns)
    assert out["batch"].iloc[0] == "article:a1"


def test_suggest_skips_near_copies_and_excluded_texts():
    near = [f"The minister said the world order is changing fast score 0.5{i} ok" for i in range(5)]
    other = ["A completely different sentence about trade volumes score 0.6 ok",
             "Excluded sentence score 0.5 ok"]
    out = suggest(sentences(near + other), FixedModel(), n=5, exclude=["excluded sentence score 0.5 ok"])
    assert len(out) == 2
    assert out["text"].iloc[1] == other[0]


@pytest.fixture
def frames(tmp_path):
    (tmp_path / "frames.toml").write_text(FRAMES_TOML, encoding="utf-8")
    return load_frames(tmp_path)


def test_import_label_studio_export(tmp_path, frames):
    tasks = [
        {"id": 7, "data": {"text": "Peace  talks must resume.", "source": "art-1"},
         "annotations": [{"result": [{"type": "choices", "value": {"choices": ["peace_talks", "anti_hegemony"]}}]}]},
        {"id": 8, "data": {"text": "Nothing here."}, "annotations": [
            {"result": [{"type": "choices", "value": {"choices": ["multipolarity"]}}], "was_cancelled": True},
            {"result": []}]},
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(tasks))
    table = import_annotations(path, frames)
    assert table.to_dict("records") == [
        {"text": "Peace talks must resume.", "frames": "peace_talks;anti_hegemony", "origin": "imported", "batch": "art-1"},
        {"text": "Nothing here.", "frames": "", "origin": "imported", "batch": "import:export"},
    ]


def test_import_doccano_jsonl(tmp_path, frames):
    path = tmp_path / "doccano.jsonl"
    path.write_text('{"id": 1, "text": "Sanctions are illegal.", "label": ["anti_sanctions"]}\n\n'
                    '{"id": 2, "text": "Neutral.", "label": []}\n')
    table = import_annotations(path, frames)
    assert list(table["frames"]) == ["anti_sanctions", ""] and set(table["origin"]) == {"imported"}


def test_import_refuses_unknown_frames_with_line_or_item(tmp_path, frames):
    doccano = tmp_path / "d.jsonl"
    doccano.write_text('{"text": "Fine.", "label": []}\n{"text": "Bad.", "label": ["blame"]}\n')
    with pytest.raises(LabelError, match=r"d\.jsonl:2: unknown frame 'blame'; expected one of anti_hegemony"):
        import_annotations(doccano, frames)
    studio = tmp_path / "s.json"
    studio.write_text(json.dumps([{"id": 3, "data": {"text": "Bad."},
                                   "annotations": [{"result": [{"value": {"choices": ["blame"]}}]}]}]))
    with pytest.raises(LabelError, match=r"s\.json: item 0 \(task id 3\): unknown frame 'blame'"):
        import_annotations(studio, frames)


def test_import_refuses_files_of_neither_format(tmp_path, frames):
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\n")
    with pytest.raises(InputError, match=r"notes\.txt:1: not valid JSON"):
        import_annotations(path, frames)


def test_suggest_mixes_uncertain_random_and_topical_shares():
    words = ["harvest", "railway", "budget", "weather", "football", "museum", "airport", "election", "flood",
             "festival", "bridge", "school", "hospital", "river", "concert", "market", "factory", "village",
             "library", "stadium"]
    texts = ([f"{w.title()} {v} report score 0.0{i % 10}" for i, (w, v) in
              enumerate((w, v) for w in words for v in ("opens", "closes"))]
             + [f"Sanctions on {w} embargo score 0.1" for w in words[:10]]
             + [f"Borderline {w} claim score 0.4{i}" for i, w in enumerate(words[10:])])
    out = suggest(sentences(texts), FixedModel(), n=10, random_share=0.3, topical_share=0.3,
                  topics={"multipolarity": ["sanction", "embargo"]}, seed=3)
    assert len(out) == 10
    assert list(out["reason"]).count("uncertain") == 4
    assert list(out["reason"]).count("random") == 3
    topical = out[out["reason"] == "topical"]
    assert len(topical) == 3 and topical["text"].str.startswith("Sanctions on").all()
    assert out["text"].is_unique
    again = suggest(sentences(texts), FixedModel(), n=10, random_share=0.3, topical_share=0.3,
                    topics={"multipolarity": ["sanction", "embargo"]}, seed=3)
    assert list(again["text"]) == list(out["text"])  # seeded


def test_suggest_topical_skips_sentences_already_flagged_for_that_frame():
    texts = ["Sanctions are illegal score 0.9 says minister.", "Sanctions were announced score 0.1 on Friday."]
    out = suggest(sentences(texts), FixedModel(), n=1, topical_share=1.0,
                  topics={"multipolarity": ["sanction"]}, seed=1)
    assert list(out["text"]) == [texts[1]]


@pytest.mark.parametrize("period, start, end", [
    ("2024", "2024-01-01", "2025-01-01"),
    ("2024-Q2", "2024-04-01", "2024-07-01"),
    ("2024-02", "2024-02-01", "2024-03-01"),
    ("2024-02-29", "2024-02-29", "2024-03-01"),
    ("2024-01-01..2024-03-31", "2024-01-01", "2024-04-01"),
])
def test_period_bounds(period, start, end):
    from rhetoric.labelling import period_bounds

    assert period_bounds(period) == (pd.Timestamp(start), pd.Timestamp(end))


def test_a_bad_period_is_one_clear_error():
    from rhetoric.labelling import period_bounds

    with pytest.raises(InputError, match="--period 'spring': expected YYYY, YYYY-Qn"):
        period_bounds("spring")


def test_shown_sentences_are_the_flagged_ones_highest_score_first():
    from rhetoric.labelling import shown_sentences

    texts = ["Alpha claim score 0.9 strong.", "Beta note score 0.2 weak.", "Gamma claim score 0.6 middling.",
             "Delta claim score 0.7 firm."]
    out = shown_sentences(sentences(texts), FixedModel(), "multipolarity", n=2)
    assert list(out["text"]) == [texts[0], texts[3]]
    assert set(out["reason"]) == {"shown"} and set(out["origin"]) == {""}
    with pytest.raises(InputError, match="--frame 'blame'"):
        shown_sentences(sentences(texts), FixedModel(), "blame")


@pytest.mark.parametrize("cell, written", [
    ("=HYPERLINK(\"http://x.example\",\"click\")", "'=HYPERLINK(\"http://x.example\",\"click\")"),
    ("+1 for peace talks, the envoy wrote.", "'+1 for peace talks, the envoy wrote."),
    ("-2 percent under the sanctions, officials said.", "'-2 percent under the sanctions, officials said."),
    ("@RT_com reported the sanctions are illegal.", "'@RT_com reported the sanctions are illegal."),
    ("\tcmd", "'\tcmd"),
    ("\rcmd", "'\rcmd"),
    ("-0.5", "-0.5"),  # a plain number in a text column opens as that number, not a formula
    ("Talks = progress, said Wang.", "Talks = progress, said Wang."),
    ("'quoted' from the start", "'quoted' from the start"),
    ("'=typed with a quote", "''=typed with a quote"),  # one more quote, so that it reads back as typed
])
def test_spreadsheet_safe_prefixes_text_a_spreadsheet_would_run(cell, written):
    table = pd.DataFrame({"text": [cell], "score": [0.5]})
    assert spreadsheet_safe(table)["text"].tolist() == [written]
    assert table["text"].tolist() == [cell]  # the caller's table is left alone


def test_spreadsheet_safe_leaves_numbers_numbers_and_columns_in_order():
    table = pd.DataFrame({"period": ["2024-01-01"], "frame": ["peace_talks"], "share": [-0.5],
                          "count": [-3], "outlet": ["@Formula News"], "rates_from": ["cv"]})
    safe = spreadsheet_safe(table)
    assert list(safe.columns) == list(table.columns)
    assert safe.dtypes.to_dict() == table.dtypes.to_dict()
    assert safe.to_csv(index=False).splitlines()[1] == "2024-01-01,peace_talks,-0.5,-3,'@Formula News,cv"


def test_a_neutralised_suggestion_reads_back_as_the_original_sentence(tmp_path, frames):
    texts = ["=1+1 said the minister about the multipolar world.", "+1 for peace talks, the envoy wrote.",
             "-2 percent growth under sanctions, officials said.", "@TASS reported new peace talks.",
             "'=typed with a quote reads back as typed"]
    table = pd.DataFrame({"text": texts, "frames": ["multipolarity", "peace_talks", "", "peace_talks", ""],
                          "origin": "reviewed", "batch": "article:a", "outlet": ["@TASS"] * 5})
    path = tmp_path / "reviewed.csv"
    spreadsheet_safe(table).to_csv(path, index=False)
    written = path.read_text(encoding="utf-8")
    assert "\n'=1+1 said" in written and "\n'@TASS reported" in written and "'-2 percent" in written
    loaded = load_labels(tmp_path, frames)
    assert list(loaded["text"]) == texts
    assert set(loaded["outlet"]) == {"@TASS"}


@pytest.mark.parametrize("cell, read", [
    ("'=SUM(A1)", "=SUM(A1)"), ("'+1", "+1"), ("'-x", "-x"), ("'@x", "@x"), ("'\tx", "\tx"),
    ("'quoted'", "'quoted'"), ("''=x", "'=x"), ("=x", "=x"), ("", ""),
])
def test_unquote_cell_takes_off_only_the_prefix_spreadsheet_safe_adds(cell, read):
    assert unquote_cell(cell) == read
