"""Reading folders: decoding, refusals, manifest metadata."""

from datetime import date
from pathlib import Path

import pytest

from rhetoric.config import SourceSpec
from rhetoric.ingest import decode_bytes, read_folder

ARTICLE = "Headline about talks\n\nThe ministers met in Beijing. They discussed trade.\n"


def folder(tmp_path: Path, files: dict[str, bytes], manifest: str | None = None) -> SourceSpec:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    if manifest is not None:
        (tmp_path / "manifest.csv").write_text(manifest, encoding="utf-8")
    return SourceSpec(kind="folder", location=str(tmp_path))


@pytest.mark.parametrize("data, expected", [
    ("Café in Zürich – “quoted”".encode("utf-8"), "Café in Zürich – “quoted”"),
    ("Café in Zürich".encode("latin-1"), "Café in Zürich"),
    ("He said \u201cno\u201d \u2013 twice \u20ac5".encode("cp1252"), "He said \u201cno\u201d \u2013 twice \u20ac5"),
    ("\ufeffWith a byte order mark".encode("utf-8"), "With a byte order mark"),
])
def test_decode_bytes_handles_legacy_encodings(data, expected):
    assert decode_bytes(data) == expected


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"),
    (b"   \n\t\n", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (bytes(range(1, 32)) * 50, "binary"),
])
def test_decode_bytes_refuses_unusable_input(data, reason):
    with pytest.raises(ValueError, match=reason):
        decode_bytes(data)


def test_folder_with_manifest_attaches_metadata(tmp_path):
    spec = folder(tmp_path, {"a.txt": ARTICLE.encode()},
                  "file,published,outlet,title,url\na.txt,2023-02-22,DW,The title,https://x.test/a\n")
    batch = read_folder(spec, max_bytes=10_000)
    assert batch.refusals == [] and batch.warnings == []
    (article,) = batch.articles
    assert (article.source, article.published, article.outlet, article.title, article.url) == (
        "a.txt", date(2023, 2, 22), "DW", "The title", "https://x.test/a")


def test_file_without_manifest_row_is_read_with_a_warning(tmp_path):
    spec = folder(tmp_path, {"a.txt": ARTICLE.encode(), "b.md": ARTICLE.encode()},
                  "file,published,outlet,title,url\na.txt,2023-02-22,DW,,\n")
    batch = read_folder(spec, max_bytes=10_000)
    assert [a.source for a in batch.articles] == ["a.txt", "b.md"]
    assert batch.articles[1].published is None
    assert any(w.startswith("b.md: no row in manifest.csv") for w in batch.warnings)


def test_manifest_row_without_file_is_reported(tmp_path):
    spec = folder(tmp_path, {"a.txt": ARTICLE.encode()},
                  "file,published,outlet,title,url\na.txt,2023-02-22,DW,,\ngone.txt,2023-02-23,DW,,\n")
    batch = read_folder(spec, max_bytes=10_000)
    assert len(batch.articles) == 1
    assert any("manifest.csv:3: no file named 'gone.txt'" in w for w in batch.warnings)


def test_bad_manifest_date_refuses_the_file_with_line(tmp_path):
    spec = folder(tmp_path, {"a.txt": ARTICLE.encode(), "b.txt": ARTICLE.encode() + b"More."},
                  "file,published,outlet,title,url\na.txt,2023-13-40,DW,,\nb.txt,2023-01-02,DW,,\n")
    batch = read_folder(spec, max_bytes=10_000)
    assert [a.source for a in batch.articles] == ["b.txt"]
    (refusal,) = batch.refusals
    assert refusal.source == "a.txt"
    assert "manifest.csv:2: bad date '2023-13-40'" in refusal.reason and "YYYY-MM-DD" in refusal.reason


def test_bad_files_are_refused_by_name_and_the_rest_is_read(tmp_path):
    spec = folder(tmp_path, {
        "good.txt": ARTICLE.encode(),
        "empty.txt": b"",
        "image.txt": b"\x89PNG\r\n\x1a\n\x00\x00",
        "huge.txt": b"word " * 5000,
        "notes.csv": b"ignored,because,not,an,article",
        "README.md": b"# About this folder",
    })
    batch = read_folder(spec, max_bytes=10_000)
    assert [a.source for a in batch.articles] == ["good.txt"]
    reasons = {r.source: r.reason for r in batch.refusals}
    assert set(reasons) == {"empty.txt", "image.txt", "huge.txt"}
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["image.txt"]
    assert "over the 10,000-byte limit" in reasons["huge.txt"]


def test_missing_folder_is_refused(tmp_path):
    batch = read_folder(SourceSpec(kind="folder", location=str(tmp_path / "nope")), max_bytes=10)
    assert batch.articles == [] and "not a folder" in batch.refusals[0].reason


def test_a_refused_file_is_not_also_reported_as_ingested_with_unknown_date(tmp_path):
    from rhetoric.config import SourceSpec
    from rhetoric.ingest import read_folder

    (tmp_path / "manifest.csv").write_text("file,published,outlet,title,url\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "photo.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "story.txt").write_text("Talks resume\nThe two sides met in Geneva on Monday.\n", encoding="utf-8")
    batch = read_folder(SourceSpec(kind="folder", location=str(tmp_path)), max_bytes=1_000_000)
    assert sorted(r.source for r in batch.refusals) == ["empty.txt", "photo.txt"]
    assert [w.split(":")[0] for w in batch.warnings] == ["story.txt"]


def test_a_page_date_comes_from_its_markup_never_from_a_copyright_footer():
    from rhetoric.ingest import extract_html

    body = "<p>" + " ".join(["The ministers met in Geneva to discuss the ceasefire proposal and the talks."] * 5) + "</p>"
    page = (f"<html><head><title>Talks</title></head><body><article><h1>Talks resume</h1>{body}</article>"
            "<footer>Copyright 2025 Example News. All rights reserved.</footer></body></html>")
    assert extract_html(page).published is None  # the feed item's date fills it in (rhetoric.fetch)
    dated = page.replace("<head>", '<head><meta property="article:published_time" content="2025-02-24T10:00:00Z">')
    assert str(extract_html(dated).published) == "2025-02-24"


def test_a_manifest_with_a_quote_left_open_is_refused_with_its_line(tmp_path):
    """The open quote on line 3 would give b.txt the title 'Talks\\nc.txt,2023-03-01,...' and c.txt no date."""
    spec = folder(tmp_path, {n: ARTICLE.encode() + n.encode() for n in ("a.txt", "b.txt", "c.txt")},
                  "file,published,outlet,title,url\n"
                  "a.txt,2023-02-22,DW,Fine,\n"
                  'b.txt,2023-02-23,DW,"Talks,\n'
                  "c.txt,2023-03-01,DW,Other,\n")
    batch = read_folder(spec, max_bytes=10_000)
    assert batch.articles == []
    (refusal,) = batch.refusals
    assert refusal.source == str(tmp_path / "manifest.csv")
    assert refusal.reason.startswith(f"{tmp_path / 'manifest.csv'}:3: a quote opened on this line is not closed "
                                     "on it, so the rows up to line 4 run into one value")
    assert refusal.reason.endswith(f"no file of {tmp_path} is read until it is fixed")


def test_manifest_lines_count_physical_lines(tmp_path):
    spec = folder(tmp_path, {"a.txt": ARTICLE.encode()},
                  'file,published,outlet,title,url\n\n"a.txt",2023-13-01,DW,"A ""quoted"" title",\n')
    (refusal,) = read_folder(spec, max_bytes=10_000).refusals
    assert "manifest.csv:3: bad date" in refusal.reason
