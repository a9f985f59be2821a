"""The framing taxonomy (labels/frames.toml) and the labelled sentences (labels/*.csv), validated.

Every problem found names the file and line, what was found and what to do, and
all of them are reported at once in one LabelError.
"""

from __future__ import annotations

import csv
import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy
import pandas as pd

from rhetoric.errors import LabelError
from rhetoric.ingest import runaway_quote

FRAMES_FILE = "frames.toml"
EVAL_DIR = "eval"
REQUIRED_COLUMNS = ("text", "frames")
ORIGINS = ("seed", "written", "imported", "reviewed", "corpus", "audit")
FRAME_SEPARATOR = ";"
FRAME_NAME = re.compile(r"^[a-z][a-z0-9_]*$")  # a frame's machine name; the store names columns after it
COLUMNS = ["text", "frames", "origin", "batch", "file", "line"]


@dataclass(frozen=True)
class Frame:
    """One framing category: machine name, chart title, codebook claim, typical wording."""

    name: str
    title: str
    description: str
    keywords: tuple[str, ...]
    topics: tuple[str, ...] = ()


def load_frames(labels_dir: Path) -> tuple[Frame, ...]:
    """Read labels/frames.toml; the frames in file order.

    Raises:
        LabelError: the file is missing or unreadable, or an entry lacks a field or repeats a name.
    """
    path = Path(labels_dir) / FRAMES_FILE
    try:  # utf-8-sig: Windows editors start a UTF-8 file with a byte-order mark
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise LabelError([f"{path}: cannot read the frames file ({exc.strerror}); create it with [[frame]] entries"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise LabelError([f"{path}: not valid TOML ({exc}); fix the syntax"]) from None
    entries = data.get("frame")
    if not isinstance(entries, list) or not entries:
        raise LabelError([f"{path}: no [[frame]] entries; define at least one frame"])
    problems: list[str] = []
    frames: list[Frame] = []
    for index, entry in enumerate(entries):
        frame = _parse_frame(path, index, entry, problems)
        if frame is not None and frame.name in {f.name for f in frames}:
            problems.append(f"{path}: frame[{index}]: name {frame.name!r} is defined twice; rename or remove one")
        elif frame is not None:
            frames.append(frame)
    if problems:
        raise LabelError(problems)
    return tuple(frames)


def _parse_frame(path: Path, index: int, entry: object, problems: list[str]) -> Frame | None:
    where = f"{path}: frame[{index}]"
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected a table with name, title, description, keywords")
        return None
    name = entry.get("name")
    if not isinstance(name, str) or not FRAME_NAME.match(name):
        problems.append(f"{where}: name must be lower-case letters, digits and '_', found {name!r}")
        return None
    where = f"{path}: frame {name!r}"
    found = len(problems)
    for key in ("title", "description"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            problems.append(f"{where}: {key} must be a non-empty string, found {entry.get(key)!r}")
    for key in ("keywords", "topics"):
        words = entry.get(key, [])
        if not isinstance(words, list) or not all(isinstance(k, str) and k.strip() for k in words):
            problems.append(f"{where}: {key} must be a list of non-empty strings")
    if len(problems) > found:
        return None
    return Frame(name, entry["title"].strip(), entry["description"].strip(),
                 tuple(k.strip() for k in entry.get("keywords", [])), tuple(k.strip() for k in entry.get("topics", [])))


def load_labels(labels_dir: Path, frames: Sequence[Frame]) -> pd.DataFrame:
    """The training sentences: every labels/*.csv at the top level, validated together.

    Returns a DataFrame with columns text, frames (tuple of names in frames-file order),
    origin, batch, file, line, plus any extra columns of the files. A row repeated
    with the same frames is kept once.

    Raises:
        LabelError: listing every problem with file and line.
    """
    return _load_dir(Path(labels_dir), sorted(Path(labels_dir).glob("*.csv")), frames)


def load_eval_labels(labels_dir: Path, frames: Sequence[Frame]) -> pd.DataFrame:
    """The fixed evaluation split: labels/eval/*.csv, validated like the training files."""
    folder = Path(labels_dir) / EVAL_DIR
    return _load_dir(Path(labels_dir), sorted(folder.glob("*.csv")), frames)


def _load_dir(labels_dir: Path, paths: list[Path], frames: Sequence[Frame]) -> pd.DataFrame:
    names = [f.name for f in frames]
    problems: list[str] = []
    rows: list[dict] = []
    for path in paths:
        rows.extend(_read_file(_display(labels_dir, path), path, names, problems))
    rows = _check_conflicts(rows, problems)
    if problems:
        raise LabelError(problems)
    table = pd.DataFrame(rows)
    if table.empty:
        return pd.DataFrame(columns=COLUMNS)
    extras = [c for c in table.columns if c not in COLUMNS]
    return table[COLUMNS + extras].reset_index(drop=True)


def _display(labels_dir: Path, path: Path) -> str:
    """The path as messages show it: labels/x.csv style, relative to the labels folder's parent."""
    try:
        return str(path.relative_to(labels_dir.parent))
    except ValueError:
        return str(path)


def _read_file(shown: str, path: Path, names: list[str], problems: list[str]) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{shown}: cannot read the file ({exc}); save it as UTF-8 CSV")
        return []
    reader = csv.reader(text.splitlines(keepends=True))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        problems.append(f"{shown}:1: missing column(s) {', '.join(missing)}; the header must include text,frames")
        return []
    rows = []
    line = reader.line_num + 1
    for fields in reader:
        if any("\n" in f or "\r" in f for f in fields):
            problems.append(runaway_quote(f"{shown}:{line}", reader.line_num))
        elif any(f.strip() for f in fields):
            row = _parse_row(f"{shown}:{line}", fields, header, names, problems)
            if row is not None:
                rows.append({**row, "file": shown, "line": line})
        line = reader.line_num + 1
    return rows


def _parse_row(where: str, fields: list[str], header: list[str], names: list[str], problems: list[str]) -> dict | None:
    if len(fields) != len(header):
        problems.append(
            f"{where}: malformed row: {len(fields)} fields where the header has {len(header)}; "
            "quote text that contains commas"
        )
        return None
    row = dict(zip(header, map(unquote_cell, fields)))
    text = " ".join(row["text"].split())
    found = len(problems)
    if not text:
        problems.append(f"{where}: empty text; write the sentence or delete the row")
    wanted = [f.strip() for f in row["frames"].split(FRAME_SEPARATOR) if f.strip()]
    for frame in wanted:
        if frame not in names:
            problems.append(f"{where}: unknown frame {frame!r}; expected one of {', '.join(sorted(names))}")
    origin = row.get("origin", "written").strip()
    if not origin:
        problems.append(f"{where}: empty origin; a suggested or audit row must be checked by a person, who "
                        "corrects its frames and then sets origin to 'reviewed' (or 'audit' under labels/audit/)")
    elif origin not in ORIGINS:
        problems.append(f"{where}: origin {origin!r} is not one of {', '.join(ORIGINS)}; use the one that says "
                        "where the label came from")
    if len(problems) > found:
        return None
    batch = row.get("batch", "").strip() or where
    ordered = tuple(n for n in names if n in wanted)
    extras = {k: v for k, v in row.items() if k not in ("text", "frames", "origin", "batch")}
    return {**extras, "text": text, "frames": ordered, "origin": origin, "batch": batch}


# first characters that make a spreadsheet read a CSV cell as a formula (OWASP, CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """A copy to write as CSV in which no text cell opens as a formula: those starting with FORMULA_STARTS get a '.

    Only object and string columns are touched, and in them only strings that are not plain numbers,
    so shares, scores and -0.5 stay numbers. A cell that already starts with quotes before such a
    character gets one more, so that unquote_cell, which takes one off, gives back every cell exactly.
    """
    safe = table.copy()
    for column in safe.columns:
        if pd.api.types.is_object_dtype(safe[column]) or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(_neutralised)
    return safe


def _neutralised(cell: object) -> object:
    if isinstance(cell, str) and cell.lstrip("'").startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def unquote_cell(cell: str) -> str:
    """A CSV cell as it was before spreadsheet_safe: one of the quotes before a formula's first character taken off."""
    return cell[1:] if cell.startswith("'") and cell.lstrip("'").startswith(FORMULA_STARTS) else cell


def text_key(text: str) -> str:
    """The form under which two sentences count as the same: case and spacing ignored."""
    return " ".join(text.split()).casefold()


def _check_conflicts(rows: list[dict], problems: list[str]) -> list[dict]:
    """Report texts labelled two ways; drop exact repeats (same text, same frames)."""
    first: dict[str, dict] = {}
    kept = []
    for row in rows:
        key = text_key(row["text"])
        earlier = first.get(key)
        if earlier is None:
            first[key] = row
            kept.append(row)
        elif earlier["frames"] != row["frames"]:
            problems.append(
                f"{row['file']}:{row['line']}: the same text is labelled "
                f"{_shown_frames(row['frames'])} here and {_shown_frames(earlier['frames'])} at "
                f"{earlier['file']}:{earlier['line']}; decide by the codebook and keep one label"
            )
    return kept


def _shown_frames(frames: tuple[str, ...]) -> str:
    return "'" + FRAME_SEPARATOR.join(frames) + "'" if frames else "(no frame)"


def load_label_sets(labels_dir: Path) -> tuple[tuple[Frame, ...], pd.DataFrame, pd.DataFrame]:
    """Frames, training labels and the evaluation split, validated and checked not to overlap.

    Raises:
        LabelError: every problem in the files, with file and line.
    """
    frames = load_frames(labels_dir)
    table = load_labels(labels_dir, frames)
    held_out = load_eval_labels(labels_dir, frames)
    # audit files (labels/audit/) never train, but a row nobody reviewed is refused here too
    _load_dir(Path(labels_dir), sorted((Path(labels_dir) / "audit").glob("*.csv")), frames)
    check_disjoint(table, held_out)
    return frames, table, held_out


def check_disjoint(train: pd.DataFrame, held_out: pd.DataFrame) -> None:
    """Refuse held-out sentences that also appear in the training files (they would leak).

    Raises:
        LabelError: one line per shared sentence, naming both places.
    """
    seen = {text_key(t): (f, l) for t, f, l in zip(train["text"], train["file"], train["line"])}
    problems = []
    for text, file, line in zip(held_out["text"], held_out["file"], held_out["line"]):
        if text_key(text) in seen:
            tf, tl = seen[text_key(text)]
            problems.append(
                f"{file}:{line}: this sentence also appears in {tf}:{tl}; the evaluation split "
                "must never train the model, so remove it from one of the two files"
            )
    if problems:
        raise LabelError(problems)


def label_matrix(table: pd.DataFrame, frames: Sequence[Frame] | Sequence[str]) -> numpy.ndarray:
    """The (n, k) 0/1 indicator matrix of the table's frames, columns in frames order."""
    names = [f if isinstance(f, str) else f.name for f in frames]
    matrix = numpy.zeros((len(table), len(names)), dtype=numpy.int8)
    for i, labelled in enumerate(table["frames"]):
        for name in labelled:
            matrix[i, names.index(name)] = 1
    return matrix


def label_set_hash(table: pd.DataFrame, frames: Sequence[Frame]) -> str:
    """SHA-256 over the frames file content and the (text, frames) pairs, order-independent."""
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(repr((frame.name, frame.keywords)).encode())
    pairs = sorted(f"{text_key(t)}\t{';'.join(fr)}" for t, fr in zip(table["text"], table["frames"]))
    for pair in pairs:
        digest.update(pair.encode() + b"\n")
    return digest.hexdigest()
