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
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer

from rhetoric.errors import InputError, LabelError
from rhetoric.labels import FRAME_SEPARATOR, Frame, text_key
from rhetoric.features import normalise_text

NEAR_COPY = 0.7
POOL_FACTOR = 20
CONTEXT = ("sentence_id", "source", "outlet", "published")


def suggest(sentences: pd.DataFrame, model, n: int = 50, exclude: Iterable[str] = (), random_share: float = 0.0,
            topical_share: float = 0.0, topics: dict[str, Sequence[str]] | None = None, seed: int = 0) -> pd.DataFrame:
    """n stored sentences for a person to label, varied, as labels-format rows.

    Three kinds, told apart in the `reason` column:
    - uncertain: the smallest distance of any frame's calibrated score from that frame's threshold;
    - random: a seeded simple random sample of the rest (what the model sees most: unframed text);
    - topical: sentences that mention a frame's topic words (frames.toml `topics`) but that the
      model does not flag for that frame (the hard negatives, and the positives it misses).
    A sentence is skipped when its word-bigram cosine similarity to one already chosen reaches
    0.7 (near-copies), or its text is in exclude.

    Returns:
        columns text, frames (";"-joined predictions), origin (empty: the reviewer sets it), batch,
        score_<frame> for each frame, model_version, reason, then sentence_id, source, outlet, published.
    """
    excluded = {text_key(t) for t in exclude}
    keep = np.fromiter((text_key(t) not in excluded and str(t).strip() != "" for t in sentences["text"]), bool,
                       len(sentences))
    pool = sentences[keep]
    pool = pool.drop_duplicates(subset="text").reset_index(drop=True)
    if pool.empty or n <= 0:
        empty = np.zeros((0, len(model.frames)))
        return _suggest_frame(pool.iloc[:0], empty.astype(bool), empty, model, [])
    labels, scores = model.predict(list(pool["text"]))
    rng = np.random.default_rng(seed)
    n_random = int(round(n * random_share))
    n_topical = int(round(n * topical_share)) if topics else 0
    thresholds = np.array([model.metadata["thresholds"][f] for f in model.frames])
    margin = np.abs(scores - thresholds).min(axis=1)
    queues = [("uncertain", np.argsort(margin, kind="stable"), max(0, n - n_random - n_topical))]
    if n_topical:
        queues.append(("topical", rng.permutation(_topical(pool, labels, model.frames, topics)), n_topical))
    if n_random:
        queues.append(("random", rng.permutation(len(pool)), n_random))
    texts = list(pool["text"])
    picked, reasons = _pick(texts, queues)
    return _suggest_frame(pool.iloc[picked], labels[picked], scores[picked], model, reasons)


def period_bounds(period: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of a period written YYYY, YYYY-Qn, YYYY-MM, YYYY-MM-DD (a day) or START..END (dates).

    Raises:
        InputError: the period is in none of these forms.
    """
    text = str(period).strip()
    try:
        if ".." in text:
            start, end = (pd.Timestamp(part) for part in text.split("..", 1))
            return start, end + pd.Timedelta(days=1)
        if len(text) == 4 and text.isdigit():
            return pd.Timestamp(f"{text}-01-01"), pd.Timestamp(f"{int(text) + 1}-01-01")
        if len(text) == 7 and text[4:6].upper() == "-Q" and text[6] in "1234":
            start = pd.Timestamp(f"{text[:4]}-{3 * int(text[6]) - 2:02d}-01")
            return start, start + pd.DateOffset(months=3)
        if len(text) == 7:
            start = pd.Timestamp(f"{text}-01")
            return start, start + pd.DateOffset(months=1)
        day = pd.Timestamp(text)
        return day, day + pd.Timedelta(days=1)
    except ValueError:
        raise InputError(f"--period {period!r}: expected YYYY, YYYY-Qn, YYYY-MM, YYYY-MM-DD or START..END "
                         "(e.g. 2024-Q1 or 2024-01-01..2024-03-31)") from None


def shown_sentences(sentences: pd.DataFrame, model, frame: str, n: int = 50) -> pd.DataFrame:
    """The sentences the drill-down shows for a frame: flagged by the model, highest score first, as labels rows."""
    if frame not in model.frames:
        raise InputError(f"--frame {frame!r}: the champion knows {', '.join(model.frames)}")
    pool = sentences.drop_duplicates(subset="text").reset_index(drop=True)
    if pool.empty:
        empty = np.zeros((0, len(model.frames)))
        return _suggest_frame(pool, empty.astype(bool), empty, model, [])
    labels, scores = model.predict(list(pool["text"]))
    j = model.frames.index(frame)
    flagged = np.flatnonzero(labels[:, j])
    picked = flagged[np.argsort(-scores[flagged, j], kind="stable")][:n]
    return _suggest_frame(pool.iloc[picked], labels[picked], scores[picked], model, ["shown"] * len(picked))


def _topical(pool: pd.DataFrame, labels: np.ndarray, frames: Sequence[str], topics: dict[str, Sequence[str]]) -> np.ndarray:
    """Rows that mention some frame's topic words while the model does not flag that frame."""
    from rhetoric.corpora import topic_pattern

    chosen = np.zeros(len(pool), dtype=bool)
    for j, name in enumerate(frames):
        pattern = topic_pattern(topics.get(name, ()))
        if pattern is not None:
            mentions = np.fromiter((pattern.search(t) is not None for t in pool["text"]), bool, len(pool))
            chosen |= mentions & ~labels[:, j]
    return np.flatnonzero(chosen)


def _pick(texts: list[str], queues: list[tuple[str, np.ndarray, int]]) -> tuple[np.ndarray, list[str]]:
    """Fill each queue's quota in turn from its candidate order, never taking a text twice or a near-copy."""
    vectoriser = HashingVectorizer(preprocessor=normalise_text, ngram_range=(1, 2), n_features=2**18,
                                   alternate_sign=False)
    taken: list[int] = []
    reasons: list[str] = []
    chosen_vectors = None
    for reason, order, quota in queues:
        got = 0
        for start in range(0, len(order), max(quota * POOL_FACTOR, 1)):
            if got >= quota:
                break
            seen = set(taken)
            batch = [i for i in order[start:start + max(quota * POOL_FACTOR, 1)] if i not in seen]
            if not batch:
                continue
            vectors = vectoriser.transform([texts[i] for i in batch])
            for k, i in enumerate(batch):
                if got >= quota:
                    break
                row = vectors[k]
                if chosen_vectors is not None and (chosen_vectors @ row.T).max() >= NEAR_COPY:
                    continue
                chosen_vectors = row if chosen_vectors is None else sparse.vstack([chosen_vectors, row]).tocsr()
                taken.append(int(i))
                reasons.append(reason)
                got += 1
    return np.array(taken, dtype=np.int64), reasons


def _suggest_frame(rows: pd.DataFrame, labels: np.ndarray, scores: np.ndarray, model, reasons: list[str]) -> pd.DataFrame:
    out = pd.DataFrame({
        "text": list(rows["text"]),
        "frames": [FRAME_SEPARATOR.join(f for f, on in zip(model.frames, row) if on) for row in labels],
        "origin": "",
        "batch": [f"article:{s}" for s in rows["source"]] if "source" in rows else "",
    })
    for j, name in enumerate(model.frames):
        out[f"score_{name}"] = np.round(scores[:, j], 3) if len(rows) else []
    out["model_version"] = model.version
    out["reason"] = reasons
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
