"""Ingest: read articles from folders, decode them, extract HTML, attach manifest metadata, refuse bad input with a reason.

HTML (files in folders here, fetched pages in rhetoric.fetch) goes through one
extractor, trafilatura: article text, headline, date, author and canonical link.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Iterator

from rhetoric.config import SourceSpec

HTML_SUFFIXES = (".html", ".htm")
ARTICLE_SUFFIXES = (".txt", ".md", *HTML_SUFFIXES)
MANIFEST_NAME = "manifest.csv"
MANIFEST_COLUMNS = ("file", "published", "outlet", "title", "url")
# A folder's README describes the folder; it is not an article.
SKIPPED_NAMES = {"readme.md", "readme.txt"}


@dataclass
class RawArticle:
    """An article as read from its source, before cleaning."""

    source: str
    text: str
    title: str | None = None
    published: date | None = None
    outlet: str | None = None
    url: str | None = None
    author: str | None = None
    is_html: bool = False
    canonical_url: str | None = None

    @cached_property
    def fingerprint(self) -> str:
        """Hash of what the input contributes to its stored text (raw text and headline); computed once."""
        digest = hashlib.sha256(self.text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00" + (self.title or "").encode("utf-8", "surrogatepass"))
        return digest.hexdigest()


@dataclass
class NewArticle:
    """A cleaned, split article ready to store (rhetoric.prepare makes one from a RawArticle)."""

    content_hash: str
    sentences: list[str]
    source: str
    title: str | None = None
    published: date | None = None
    outlet: str | None = None
    url: str | None = None
    canonical_url: str | None = None
    author: str | None = None
    signature: str | None = None
    fingerprint: str | None = None
    language: str | None = None
    # the normalised form of url (rhetoric.dedupe.canonical_url), worked out where the article was prepared: the
    # address rhetoric.repeats compares. None with a url: not worked out (read it through rhetoric.repeats.address)
    address: str | None = None
    # when a helper scored the sentences while it waited for the run (rhetoric.prepare.score_while_waiting):
    # (model version, labels (m, k), scores (m, k), start, stop), the sentences being rows start:stop of the
    # two blocks, which the helper shares among the articles it scored in one step (scored_rows); the run
    # scores the rest itself
    scored: tuple | None = None


def scored_rows(scored: tuple) -> tuple:
    """(model version, labels (n, k), scores (n, k)) of an article from its NewArticle.scored.

    A helper's scores come as blocks shared by the articles it scored in one step: pickled
    once each, a prepared chunk of 2,500 articles crosses to the run as a few dozen arrays
    instead of 5,000 (unpickling a fully scored chunk took 0.083 s against 0.016 s unscored).
    """
    version, labels, scores, start, stop = scored
    return version, labels[start:stop], scores[start:stop]


@dataclass(frozen=True)
class Refusal:
    """An input that was not ingested, and why."""

    source: str
    reason: str


@dataclass
class IngestBatch:
    """What reading the sources produced: articles, refused inputs and warnings."""

    articles: list[RawArticle] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def extend(self, other: "IngestBatch") -> None:
        self.articles.extend(other.articles)
        self.refusals.extend(other.refusals)
        self.warnings.extend(other.warnings)


@dataclass(frozen=True)
class ManifestRow:
    line: int
    published: date | None
    outlet: str | None
    title: str | None
    url: str | None
    error: str | None = None


def read_folder(spec: SourceSpec, max_bytes: int, suffixes: tuple[str, ...] = ARTICLE_SUFFIXES) -> IngestBatch:
    """Read every article file in a folder, with metadata from its manifest.

    A file without a manifest row is read with unknown metadata and a warning; a
    manifest row without a file, or with a bad date, is reported and its file refused.
    """
    batch = IngestBatch()
    for part in read_folder_in_chunks(spec, max_bytes, suffixes=suffixes):
        batch.extend(part)
    return batch


def article_names(folder: Path | str, suffixes: tuple[str, ...] = ARTICLE_SUFFIXES) -> list[str]:
    """The names of the folder's article files, in the order a run reads them.

    Raises:
        OSError: the folder cannot be listed.
    """
    with os.scandir(folder) as entries:  # names sorted as strings: a Path comparison costs ten times more
        return sorted(e.name for e in entries if e.is_file() and os.path.splitext(e.name)[1].lower() in suffixes
                      and e.name.lower() not in SKIPPED_NAMES)


def read_folder_in_chunks(spec: SourceSpec, max_bytes: int, chunk: int | None = None,
                          suffixes: tuple[str, ...] = ARTICLE_SUFFIXES) -> Iterator[IngestBatch]:
    """read_folder a chunk of files at a time: each batch holds the next `chunk` files (all when None), read when
    it is asked for, so a folder of a million files is never in memory at once. The first batch also carries
    the folder's and its manifest's problems; at least one batch is yielded."""
    folder = Path(spec.location)
    batch = IngestBatch()
    if not folder.is_dir():
        batch.refusals.append(Refusal(str(folder), "not a folder; check --source or rhetoric.toml"))
        yield batch
        return
    manifest_path = Path(spec.manifest) if spec.manifest else folder / MANIFEST_NAME
    has_manifest = manifest_path.is_file()
    try:
        manifest = read_manifest(manifest_path, batch) if has_manifest else {}
    except ValueError as exc:  # its rows cannot be told apart: no file gets another file's metadata
        batch.refusals.append(Refusal(str(manifest_path), f"{exc}; no file of {folder} is read until it is fixed"))
        yield batch
        return
    names = article_names(folder, suffixes)
    files = [folder / name for name in names]
    present = set(names)
    for name, row in manifest.items():
        if name not in present:
            batch.warnings.append(f"{manifest_path}:{row.line}: no file named {name!r} in {folder}; "
                                  "fix the file column or add the file")
    for number, path in enumerate(files):
        if chunk and number and number % chunk == 0:
            yield batch
            batch = IngestBatch()
        row = manifest.get(path.name)
        if row is not None and row.error:
            batch.refusals.append(Refusal(path.name, f"{manifest_path}:{row.line}: {row.error}"))
            continue
        read = _read_one(path, row, spec, max_bytes, batch)
        if read and row is None and has_manifest:  # a refused file is reported once, as refused
            batch.warnings.append(f"{path.name}: no row in {manifest_path.name}; ingested with unknown "
                                  "date and outlet (add a row to fix)")
    yield batch


def _read_one(path: Path, row: ManifestRow | None, spec: SourceSpec, max_bytes: int, batch: IngestBatch) -> bool:
    """Read one file into the batch; False when it was refused."""
    try:
        text = read_text(path, max_bytes)
    except ValueError as exc:
        batch.refusals.append(Refusal(path.name, str(exc)))
        return False
    article = RawArticle(
        source=path.name, text=text,
        title=row.title if row else None,
        published=row.published if row else None,
        outlet=(row.outlet if row and row.outlet else spec.outlet),
        url=row.url if row else None,
    )
    if path.suffix.lower() in HTML_SUFFIXES:
        extracted = extract_html(text, article.url)
        if extracted is None:
            batch.refusals.append(Refusal(path.name, NO_TEXT_IN_HTML))
            return False
        article = extracted.fill(article)
    batch.articles.append(article)
    return True


# Fewer words than this is a navigation bar or a teaser, not an article.
MIN_HTML_WORDS = 20
NO_TEXT_IN_HTML = (f"no article text found in the HTML (under {MIN_HTML_WORDS} words: an index page, "
                   "a paywall or an empty template?)")


@dataclass(frozen=True)
class Extracted:
    """What trafilatura found in an HTML page."""

    text: str
    title: str | None = None
    published: date | None = None
    author: str | None = None
    canonical_url: str | None = None
    sitename: str | None = None

    def fill(self, article: RawArticle) -> RawArticle:
        """The article with this text, keeping metadata it already has (a manifest row wins over the page)."""
        return replace(article, text=self.text, is_html=True,
                       title=article.title or self.title,
                       published=article.published or self.published,
                       author=article.author or self.author,
                       canonical_url=article.canonical_url or self.canonical_url)


def extract_html(html: str | bytes, url: str | None = None) -> Extracted | None:
    """Article text and metadata of an HTML page; None when it holds no article text."""
    import trafilatura  # imported on use: it loads lxml and language data

    # only a date the page's own markup states: htmldate's extensive search would otherwise guess one from
    # the text, a copyright footer included (a 24 Feb 2025 article was stored as 2025-01-01)
    document = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                           include_tables=False,
                                           date_extraction_params={"extensive_search": False, "original_date": True,
                                                                   "max_date": date.today().isoformat()})
    if document is None or len((document.text or "").split()) < MIN_HTML_WORDS:
        return None
    return Extracted(text=document.text, title=document.title or None,
                     published=_parse_date(document.date), author=document.author or None,
                     canonical_url=document.url or None, sitename=document.sitename or None)


def _parse_date(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def read_text(path: Path, max_bytes: int) -> str:
    """Read and decode a text file; ValueError says why it cannot be used."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ValueError(f"file is {size:,} bytes, over the {max_bytes:,}-byte limit "
                             "(raise max_bytes in rhetoric.toml if it is a real article)")
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the file ({exc.strerror or exc})") from None
    return decode_bytes(data)


def decode_bytes(data: bytes) -> str:
    """Decode article bytes: UTF-8 when valid, else Windows-1252 / Latin-1."""
    if not data.strip():
        raise ValueError("file is empty")
    if b"\x00" in data[:8192]:
        raise ValueError("file is binary (it contains NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = _decode_legacy(data)
    if _control_ratio(text) > 0.05:
        raise ValueError("file looks binary (many control characters), not text")
    if not text.strip():
        raise ValueError("file has no text")
    return text


def _decode_legacy(data: bytes) -> str:
    # Western news text that is not UTF-8 is nearly always Windows-1252, a superset of
    # Latin-1's printable characters; bytes cp1252 leaves undefined fall back to Latin-1.
    # (Statistical detectors guess wrong on short articles, so none is used.)
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# control characters other than the line breaks and tabs text uses: \t \n \f \r are \x09 \x0a \x0c \x0d
_CONTROL = re.compile("[\x00-\x08\x0b\x0e-\x1f]")


def _control_ratio(text: str) -> float:
    sample = text[:20000]
    if not sample:
        return 0.0
    return len(_CONTROL.findall(sample)) / len(sample)


def read_manifest(path: Path, batch: IngestBatch) -> dict[str, ManifestRow]:
    """Rows of a manifest by file name; malformed rows are reported in batch.warnings.

    Raises:
        ValueError: a quote left open runs rows together (a manifest value never spans lines).
    """
    try:
        raw = decode_bytes(path.read_bytes())
    except (OSError, ValueError) as exc:
        batch.warnings.append(f"{path}: cannot read the manifest ({exc}); files are read without metadata")
        return {}
    reader = csv.reader(raw.splitlines(keepends=True))  # line ends kept: a value spanning lines shows them
    columns = next(reader, [])
    if "file" not in columns:
        batch.warnings.append(f"{path}:1: the manifest has no 'file' column; expected columns "
                              f"{','.join(MANIFEST_COLUMNS)}; files are read without metadata")
        return {}
    rows: dict[str, ManifestRow] = {}
    start = reader.line_num + 1
    for values in reader:
        line, start = start, reader.line_num + 1
        if any("\n" in v or "\r" in v for v in values):
            raise ValueError(runaway_quote(f"{path}:{line}", reader.line_num))
        if not values:
            continue
        record = dict(zip(columns, values))
        name = (record.get("file") or "").strip()
        if not name:
            batch.warnings.append(f"{path}:{line}: empty 'file' value; row ignored")
            continue
        if name in rows:
            batch.warnings.append(f"{path}:{line}: {name!r} already listed on line {rows[name].line}; "
                                  "the first row is used")
            continue
        rows[name] = _manifest_row(line, record)
    return rows


def runaway_quote(where: str, end: int) -> str:
    """The problem of a quoted CSV value that spans lines. In manifests and label files no value holds a
    line break, so it is a quote left open, which runs the rows after it into one value."""
    return (f"{where}: a quote opened on this line is not closed on it, so the rows up to line {end} run into "
            "one value; close the quote (write \"\" for a quote inside a value)")


def _manifest_row(line: int, record: dict) -> ManifestRow:
    def value(key: str) -> str | None:
        v = (record.get(key) or "").strip()
        return v or None

    published, error = None, None
    raw_date = value("published")
    if raw_date:
        try:
            published = date.fromisoformat(raw_date)
        except ValueError:
            error = (f"bad date {raw_date!r} in the published column; expected YYYY-MM-DD "
                     "(fix the manifest row and run again)")
    return ManifestRow(line, published, value("outlet"), value("title"), value("url"), error)
