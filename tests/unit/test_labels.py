"""Frames file and labelled CSVs: parsing, and a clear message for every kind of problem."""

from pathlib import Path

import pytest

from rhetoric.errors import LabelError
from rhetoric.labels import (check_disjoint, label_matrix, label_set_hash, load_eval_labels,
                             load_frames, load_labels)
from tests.model_fixtures import FRAMES_TOML

HEADER = "text,frames,origin,batch\n"


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    folder = tmp_path / "labels"
    folder.mkdir()
    (folder / "frames.toml").write_text(FRAMES_TOML, encoding="utf-8")
    return folder


def write(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")


def test_frames_keep_file_order_and_fields(labels):
    frames = load_frames(labels)
    assert [f.name for f in frames] == ["multipolarity", "anti_sanctions", "peace_talks", "anti_hegemony"]
    assert frames[0].title == "Multipolarity"
    assert "new world order" in frames[0].keywords


@pytest.mark.parametrize("toml, message", [
    ('[[frame]]\nname = "a"\ntitle = "A"\ndescription = "d"\n[[frame]]\nname = "a"\ntitle = "B"\ndescription = "d"\n',
     "name 'a' is defined twice"),
    ('[[frame]]\nname = "a"\ndescription = "d"\n', "frame 'a': title must be a non-empty string"),
    ('[[frame]]\nname = "Bad Name"\ntitle = "A"\ndescription = "d"\n', "name must be lower-case"),
    ('[[frame]]\nname = "a"\ntitle = "A"\ndescription = "d"\nkeywords = [1]\n', "keywords must be a list"),
    ("title = 'x'\n", "no [[frame]] entries"),
    ("[[frame]\n", "not valid TOML"),
])
def test_frames_file_problems_name_the_entry(labels, toml, message):
    (labels / "frames.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(LabelError, match=r"frames\.toml") as info:
        load_frames(labels)
    assert any(message in p for p in info.value.problems)


def test_rows_parse_with_ordered_frames_and_defaults(labels):
    write(labels, "a.csv", HEADER + '"Sanctions are illegal, and peace talks must start.",peace_talks; anti_sanctions,written,b1\n'
          "Nothing here.,,seed,\n")
    write(labels, "b.csv", "text,frames\nThe world is multipolar.,multipolarity\n")
    table = load_labels(labels, load_frames(labels))
    assert list(table["frames"]) == [("anti_sanctions", "peace_talks"), (), ("multipolarity",)]
    assert list(table["origin"]) == ["written", "seed", "written"]
    assert table["batch"].iloc[0] == "b1"
    assert table["batch"].iloc[1] == "labels/a.csv:3"
    assert list(table["line"]) == [2, 3, 2]
    assert label_matrix(table, load_frames(labels)).tolist() == [[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 0, 0]]


@pytest.mark.parametrize("body, expected", [
    (HEADER + "Some text.,blame,written,b\n",
     "labels/x.csv:2: unknown frame 'blame'; expected one of anti_hegemony, anti_sanctions, multipolarity, peace_talks"),
    (HEADER + "Fine text.,,written,b\n  ,peace_talks,written,b\n", "labels/x.csv:3: empty text; write the sentence or delete the row"),
    (HEADER + "Too,many,fields,here,now\n", "labels/x.csv:2: malformed row: 5 fields where the header has 4"),
    (HEADER + "Talks now.,peace_talks,written,b\nTalks  now.,,written,c\n",
     "labels/x.csv:3: the same text is labelled (no frame) here and 'peace_talks' at labels/x.csv:2"),
    ("text,labels\nSome text.,peace_talks\n", "labels/x.csv:1: missing column(s) frames"),
    (HEADER + "Some text.,,guessed,b\n", "labels/x.csv:2: origin 'guessed' is not one of seed, written, imported, reviewed"),
    (HEADER + "Some text.,peace_talks,,b\n", "labels/x.csv:2: empty origin; a suggested or audit row must be checked by a person"),
])
def test_each_problem_names_file_line_and_fix(labels, body, expected):
    write(labels, "x.csv", body)
    with pytest.raises(LabelError) as info:
        load_labels(labels, load_frames(labels))
    assert any(expected in p for p in info.value.problems), info.value.problems
    assert expected in str(info.value)


def test_every_problem_is_reported_at_once(labels):
    write(labels, "x.csv", HEADER + "One.,blame,written,b\n,peace_talks,written,b\nThree.,,nope,b\n")
    with pytest.raises(LabelError) as info:
        load_labels(labels, load_frames(labels))
    assert [p.split(":")[1] for p in info.value.problems] == ["2", "3", "4"]


def test_conflict_across_files_names_both(labels):
    write(labels, "a.csv", HEADER + "Talks now.,peace_talks,written,b\n")
    write(labels, "b.csv", HEADER + "talks now.,multipolarity,written,b\n")
    with pytest.raises(LabelError, match=r"labels/b\.csv:2: .* at labels/a\.csv:2"):
        load_labels(labels, load_frames(labels))


def test_exact_repeats_are_kept_once(labels):
    write(labels, "a.csv", HEADER + "Talks now.,peace_talks,written,b\nTalks now.,peace_talks,written,b\n")
    assert len(load_labels(labels, load_frames(labels))) == 1


def test_eval_split_is_separate_and_must_not_overlap(labels):
    write(labels, "a.csv", HEADER + "Talks now.,peace_talks,written,b\n")
    write(labels, "eval/heldout.csv", "text,frames,origin,batch,outlet\nTalks now.,peace_talks,reviewed,e,TASS\n"
          "Other.,,reviewed,e,TASS\n")
    frames = load_frames(labels)
    train, held = load_labels(labels, frames), load_eval_labels(labels, frames)
    assert len(train) == 1 and list(held["outlet"]) == ["TASS", "TASS"]
    with pytest.raises(LabelError, match=r"labels/eval/heldout\.csv:2: this sentence also appears in labels/a\.csv:2"):
        check_disjoint(train, held)


def test_label_hash_changes_with_labels_not_order(labels):
    frames = load_frames(labels)
    write(labels, "a.csv", HEADER + "One.,peace_talks,written,b\nTwo.,,written,b\n")
    first = label_set_hash(load_labels(labels, frames), frames)
    write(labels, "a.csv", HEADER + "Two.,,written,b\nOne.,peace_talks,written,b\n")
    assert label_set_hash(load_labels(labels, frames), frames) == first
    write(labels, "a.csv", HEADER + "Two.,,written,b\nOne.,multipolarity,written,b\n")
    assert label_set_hash(load_labels(labels, frames), frames) != first


def test_a_quote_left_open_is_refused_with_the_line_where_it_opened(labels):
    """Unclosed, the quote on line 3 swallows lines 4 and 5 into one 'sentence'; csv reads that without complaint."""
    write(labels, "x.csv", HEADER + "First.,,written,b\n"
          '"Sanctions are illegal, said the envoy.,anti_sanctions,written,b\n'
          "Talks now.,peace_talks,written,b\n"
          'Peace is near.",peace_talks,written,b\n'
          "Last one.,,written,b\n")
    with pytest.raises(LabelError) as info:
        load_labels(labels, load_frames(labels))
    assert info.value.problems == [
        "labels/x.csv:3: a quote opened on this line is not closed on it, so the rows up to line 5 run into one "
        'value; close the quote (write "" for a quote inside a value)']


def test_a_quote_never_closed_is_refused_too(labels):
    write(labels, "x.csv", HEADER + '"Sanctions are illegal.,anti_sanctions,written,b\nTalks now.,peace_talks,written,b\n')
    with pytest.raises(LabelError, match=r"labels/x\.csv:2: a quote opened on this line is not closed on it, "
                                         r"so the rows up to line 3 run into one value"):
        load_labels(labels, load_frames(labels))


def test_quoted_commas_and_doubled_quotes_on_one_line_are_fine(labels):
    write(labels, "x.csv", HEADER + '"He said ""no"", twice.",peace_talks,written,b\r\nNext.,,written,b\r\n')
    table = load_labels(labels, load_frames(labels))
    assert list(table["text"]) == ['He said "no", twice.', "Next."] and list(table["line"]) == [2, 3]
