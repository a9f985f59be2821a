"""The labelling loop: pick sentences for a person to label, and import annotations from labelling tools.

Convention for `rhetoric label suggest`: rows come out in the labels format with the
champion's predicted frames filled in and origin left EMPTY. A person corrects the
frames, sets origin to "reviewed" and moves the rows into labels/; load_labels refuses
an empty origin, so unreviewed suggestions cannot train a model by accident. batch is
the sentence's article (source), so grouped cross-validation keeps an article together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import HashingVectorizer

from rhetoric.errors import InputError, LabelError
from rhetoric.labels import FRAME_SEPARATOR, Frame, text_key
from rhetoric.features import normalise_text

NEAR_COPY = 0.7
POOL_FACTOR = 20
CONTEXT = ("sentence_id", "source", "outlet", "published")


def suggest(sentences: pd.DataFrame, model, n: int = 50, exclude: Iterable[str] = ()) -> pd.DataFrame:
    """The n stored sentences the model is least sure about, varied, as labels-format rows.

    Uncertainty is the smallest distance of any frame's calibrated score from that frame's
    threshold. Starting from the least sure, a sentence is skipped when its word-bigram
    cosine similarity to one already chosen reaches 0.7 (near-copies), or its text is in exclude.

    Returns:
        columns text, frames (";"-joined predictions), origin (empty: the reviewer sets it), batch,
        score_<frame> for each frame, model_version, then sentence_id, source, outlet, published.
    """
    excluded = {text_key(t) for t in exclude}
    pool = sentences[[text_key(t) not in excluded and str(t).strip() != "" for t in sentences["text"]]]
    pool = pool.drop_duplicates(subset="text")
    if pool.empty or n <= 0:
        return _suggest_frame(pool.iloc[:0], np.zeros((0, len(model.frames)), bool), np.zeros((0, len(model.frames))), model)
    labels, scores = model.predict(list(pool["text"]))
    thresholds = np.array([model.metadata["thresholds"][f] for f in model.frames])
    margin = np.abs(scores - thresholds).min(axis=1)
    order = np.argsort(margin, kind="stable")[: n * POOL_FACTOR]
    chosen = _varied(list(pool["text"].iloc[order]), n)
    picked = order[chosen]
    return _suggest_frame(pool.iloc[picked], labels[picked], scores[picked], model)


def _varied(texts: list[str], n: int) -> list[int]:
    """Indexes of up to n texts, in order, skipping any too similar to one already taken."""
    vectors = HashingVectorizer(preprocessor=normalise_text, ngram_range=(1, 2), n_features=2**18,
                                alternate_sign=False).transform(texts)
    taken: list[int] = []
    for i in range(len(texts)):
        if taken and (vectors[taken] @ vectors[i].T).max() >= NEAR_COPY:
            continue
        taken.append(i)
        if len(taken) == n:
            break
    return taken


def _suggest_frame(rows: pd.DataFrame, labels: np.ndarray, scores: np.ndarray, model) -> pd.DataFrame:
    out = pd.DataFrame({
        "text": list(rows["text"]),
        "frames": [FRAME_SEPARATOR.join(f for f, on in zip(model.frames, row) if on) for row in labels],
        "origin": "",
        "batch": [f"article:{s}" for s in rows["source"]] if "source" in rows else "",
    })
    for j, name in enumerate(model.frames):
        out[f"score_{name}"] = np.round(scores[:, j], 3) if len(rows) else []
    out["model_version"] = model.version
    for column in CONTEXT:
        out[column] = list(rows[column]) if column in rows else ""
    return out


def import_annotations(path: Path, frames: Sequence[Frame]) -> pd.DataFrame:
    """Convert a Label Studio JSON export or a doccano JSONL export into labels-format rows.

    Label Studio: the JSON list of tasks; the text is data["text"] (or the task's only string
    field), the frames are the choices of the latest annotation that was not cancelled.
    doccano: one JSON object a line with "text" and "label" (or "labels"), a list of names.
    origin is "imported"; batch is the task's data["batch"] or data["source"] if present,
    else the export file's name (conservative: the whole file is one group).

    Raises:
        InputError: the file cannot be read or is neither format.
        LabelError: unknown frames or empty texts, each with file and line or item.
    """
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the export ({exc}); pass a Label Studio JSON or doccano JSONL file") from None
    items = _label_studio_items(path, content) if content.lstrip().startswith("[") else _doccano_items(path, content)
    names = [f.name for f in frames]
    problems: list[str] = []
    rows = [row for where, item in items if (row := _import_row(where, item, names, path.stem, problems))]
    if problems:
        raise LabelError(problems)
    return pd.DataFrame(rows, columns=["text", "frames", "origin", "batch"])


def _label_studio_items(path: Path, content: str) -> list[tuple[str, dict]]:
    try:
        tasks = json.loads(content)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); export again as JSON") from None
    items = []
    for index, task in enumerate(tasks):
        where = f"{path}: item {index}" + (f" (task id {task.get('id')})" if isinstance(task, dict) and "id" in task else "")
        if not isinstance(task, dict):
            items.append((where, {"problem": "expected a task object"}))
            continue
        data = task.get("data", task)
        text = data.get("text") if isinstance(data, dict) else None
        if text is None and isinstance(data, dict):
            strings = [v for v in data.values() if isinstance(v, str)]
            text = strings[0] if len(strings) == 1 else None
        annotations = [a for a in task.get("annotations", []) if not a.get("was_cancelled")]
        choices = _choices(annotations[-1].get("result", [])) if annotations else None
        meta = data if isinstance(data, dict) else {}
        items.append((where, {"text": text, "labels": choices, "batch": meta.get("batch") or meta.get("source")}))
    return items


def _choices(results: list[dict]) -> list[str]:
    found: list[str] = []
    for result in results:
        value = result.get("value", {})
        for choice in value.get("choices", []) + [c for path in value.get("taxonomy", []) for c in path[-1:]]:
            if choice not in found:
                found.append(choice)
    return found


def _doccano_items(path: Path, content: str) -> list[tuple[str, dict]]:
    items = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg}); expected a Label Studio JSON list "
                             "or doccano JSONL, one object a line") from None
        if not isinstance(record, dict):
            items.append((where, {"problem": "expected a JSON object"}))
            continue
        labels = record.get("label", record.get("labels"))
        items.append((where, {"text": record.get("text", record.get("data")), "labels": labels,
                              "batch": record.get("batch") or record.get("source")}))
    return items


def _import_row(where: str, item: dict[str, Any], names: list[str], stem: str, problems: list[str]) -> dict | None:
    if "problem" in item:
        problems.append(f"{where}: {item['problem']}")
        return None
    text = " ".join(str(item.get("text") or "").split())
    labels = item.get("labels")
    found = len(problems)
    if not text:
        problems.append(f"{where}: empty or missing text; fix the task or drop it from the export")
    if labels is None:
        problems.append(f"{where}: not annotated; annotate it or drop it from the export")
        labels = []
    for label in labels:
        if label not in names:
            problems.append(f"{where}: unknown frame {label!r}; expected one of {', '.join(sorted(names))}")
    if len(problems) > found:
        return None
    ordered = [n for n in names if n in labels]
    return {"text": text, "frames": FRAME_SEPARATOR.join(ordered), "origin": "imported",
            "batch": str(item.get("batch") or f"import:{stem}")}
