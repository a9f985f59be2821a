"""The model registry: every trained version under models/, verified before loading, and a champion pointer.

Layout::

    models/champion.json                 {"champion": VERSION, "history": [{version, promoted_at, macro_f1}, ...]}
    models/VERSION/model.joblib          the pickled FrameModel
    models/VERSION/metadata.json         version, created, label hash, code and library versions,
                                         thresholds, rates, metrics, SHA-256 of model.joblib
    models/VERSION/MODEL_CARD.md         intended use, training data, metrics per frame, known limits

VERSION is YYYY.MM.DD-<first 8 hex of the label-set hash>, with -2, -3 ... appended
when that name is taken. A joblib file runs code when loaded, so the registry
checks its SHA-256 and the scikit-learn version before unpickling.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import joblib
import numpy as np
import pandas as pd
import scipy
import sklearn

from rhetoric import __version__
from rhetoric.errors import ModelError
from rhetoric.labels import Frame, label_matrix, label_set_hash, load_label_sets
from rhetoric.model import DEFAULT_CANDIDATE, FrameModel, TrainedModel, frame_metrics, keyword_baseline, train

POINTER = "champion.json"
ARTIFACT = "model.joblib"
METADATA = "metadata.json"
CARD = "MODEL_CARD.md"


@dataclass
class LoadedModel:
    """A verified model from the registry."""

    version: str
    frames: tuple[str, ...]
    metadata: dict
    model: FrameModel

    def predict(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(labels bool (n, k), calibrated scores (n, k)), columns in self.frames order, thresholds applied."""
        return self.model.predict(list(texts))


class Registry:
    """The models/ folder: save versions, load them safely, know and change the champion."""

    def __init__(self, models_dir: Path):
        self.root = Path(models_dir)

    def versions(self) -> list[str]:
        """Every stored version, oldest first by creation time."""
        found = [p.parent for p in self.root.glob(f"*/{METADATA}")]
        return [p.name for p in sorted(found, key=lambda p: (_read_json(p / METADATA).get("created", ""), p.name))]

    def save(self, trained: TrainedModel, metadata: dict) -> str:
        """Store a trained model as a new version; returns the version name."""
        version = self._new_version(metadata["label_hash"])
        folder = self.root / version
        folder.mkdir(parents=True)
        joblib.dump(trained.model, folder / ARTIFACT, compress=3)
        metadata = {**metadata, "version": version, "sha256": _sha256(folder / ARTIFACT)}
        _write_json(folder / METADATA, metadata)
        (folder / CARD).write_text(model_card(metadata), encoding="utf-8")
        return version

    def _new_version(self, label_hash: str) -> str:
        base = f"{datetime.now(timezone.utc):%Y.%m.%d}-{label_hash[:8]}"
        version, n = base, 1
        while (self.root / version).exists():
            n += 1
            version = f"{base}-{n}"
        return version

    def metadata(self, version: str) -> dict:
        """The stored metadata of a version."""
        path = self.root / version / METADATA
        if not path.is_file():
            raise ModelError(f"{path}: no such model version; `rhetoric train` creates one")
        return _read_json(path)

    def load(self, version: str) -> LoadedModel:
        """Verify a version's artifact (SHA-256, scikit-learn version) and load it.

        Raises:
            ModelError: the metadata is missing, the file changed since it was saved, or the library differs.
        """
        metadata = self.metadata(version)
        path = self.root / version / ARTIFACT
        if not path.is_file():
            raise ModelError(f"{path}: the model file is missing; restore it from git or run `rhetoric train --force`")
        found = _sha256(path)
        if found != metadata.get("sha256"):
            raise ModelError(
                f"{path}: SHA-256 is {found[:16]}... but {METADATA} recorded {str(metadata.get('sha256'))[:16]}...; "
                "the file changed after it was saved and loading it would run unverified code. "
                "Restore it (git checkout models/) or retrain with `rhetoric train --force`."
            )
        _check_sklearn(path, metadata.get("libraries", {}).get("scikit-learn", "unknown"))
        model = joblib.load(path)
        return LoadedModel(version, tuple(metadata["frames"]), metadata, model)

    def champion_version(self) -> str | None:
        """The champion's version name, or None when nothing was promoted yet."""
        return self._pointer().get("champion")

    def champion(self) -> LoadedModel | None:
        """The verified champion, or None when the registry has none."""
        version = self.champion_version()
        return self.load(version) if version else None

    def history(self) -> list[dict]:
        """Champion promotions, oldest first: {"version", "promoted_at", "macro_f1"}."""
        return list(self._pointer().get("history", []))

    def promote(self, version: str, macro_f1: float | None) -> None:
        """Make a stored version the champion and append it to the history."""
        self.metadata(version)
        pointer = self._pointer()
        history = pointer.get("history", [])
        history.append({"version": version, "promoted_at": _now(), "macro_f1": macro_f1})
        _write_json(self.root / POINTER, {"champion": version, "history": history})

    def _pointer(self) -> dict:
        path = self.root / POINTER
        return _read_json(path) if path.is_file() else {}


def _check_sklearn(path: Path, recorded: str) -> None:
    if recorded.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        raise ModelError(
            f"{path}: saved with scikit-learn {recorded}, but {sklearn.__version__} is installed; pickles are only "
            f"portable within a minor release. Install scikit-learn {recorded} or retrain with `rhetoric train --force`."
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read ({exc}); restore it from git") from None


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _code_version() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                                capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


def evaluate(model: FrameModel | LoadedModel, table: pd.DataFrame, frames: Sequence[Frame]) -> dict | None:
    """Metrics of a model on a labelled table (None when the table is empty), frames the model knows."""
    if table.empty:
        return None
    known = [f for f in frames if f.name in model.frames]
    labels, _ = model.predict(list(table["text"]))
    columns = [model.frames.index(f.name) for f in known]
    return frame_metrics(label_matrix(table, known), labels[:, columns], [f.name for f in known])


def baseline(table: pd.DataFrame, frames: Sequence[Frame]) -> dict | None:
    """Metrics of the keyword-only baseline on a labelled table."""
    if table.empty:
        return None
    names = [f.name for f in frames]
    return frame_metrics(label_matrix(table, frames), keyword_baseline(list(table["text"]), frames), names)


def describe(trained: TrainedModel, frames: Sequence[Frame], table: pd.DataFrame, held_out: pd.DataFrame) -> dict:
    """The metadata of a newly trained model (the registry adds version and sha256)."""
    names = [f.name for f in frames]
    return {
        "created": _now(),
        "label_hash": label_set_hash(table, frames),
        "code_version": _code_version(),
        "libraries": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                      "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
                      "joblib": joblib.__version__},
        "candidate": trained.candidate,
        "frames": names,
        "thresholds": dict(zip(names, map(float, trained.model.thresholds))),
        "calibration": {n: [float(a), float(b)] for n, (a, b) in zip(names, trained.model.calibration)},
        "rates": trained.rates,
        "metrics": {"cv": trained.cv, "eval": evaluate(trained.model, held_out, frames),
                    "baseline_cv": baseline(table, frames), "baseline_eval": baseline(held_out, frames)},
        "selection": trained.selection,
        "training": {"sentences": int(len(table)), "held_out": int(len(held_out)),
                     "files": {str(k): int(v) for k, v in table["file"].value_counts().sort_index().items()},
                     "origins": {str(k): int(v) for k, v in table["origin"].value_counts().sort_index().items()},
                     "batches": int(table["batch"].nunique())},
    }


def ensure_champion(models_dir: Path, labels_dir: Path) -> LoadedModel:
    """The champion; with none in the registry, train the default pipeline from labels/ and promote it."""
    registry = Registry(models_dir)
    champion = registry.champion()
    if champion is not None:
        return champion
    frames, table, held_out = load_label_sets(labels_dir)
    trained = train(table, frames, [DEFAULT_CANDIDATE])
    metadata = describe(trained, frames, table, held_out)
    version = registry.save(trained, metadata)
    registry.promote(version, round(comparison_metrics(metadata)["macro_f1"], 4))
    return registry.load(version)


def comparison_metrics(metadata: dict) -> dict:
    """The metrics a model is compared and promoted on: the evaluation split's, else grouped CV's."""
    return metadata["metrics"]["eval"] or metadata["metrics"]["cv"]



MACRO_TOLERANCE = 0.005
MAX_FRAME_DROP = 0.05


def promotion_decision(challenger: dict, champion: dict | None) -> tuple[bool, list[str]]:
    """Whether the challenger may replace the champion, judged on the same evaluation split.

    Promote when macro-F1 is not lower than the champion's minus 0.005 and no frame both
    models know loses more than 0.05 F1. Returns (promote, reasons).
    """
    if champion is None:
        return True, ["there is no champion yet"]
    reasons = []
    floor = champion["macro_f1"] - MACRO_TOLERANCE
    ok = challenger["macro_f1"] >= floor
    reasons.append(f"macro-F1 {challenger['macro_f1']:.3f} {'>=' if ok else '<'} champion "
                   f"{champion['macro_f1']:.3f} - {MACRO_TOLERANCE}")
    for name, old in champion["per_frame"].items():
        new = challenger["per_frame"].get(name)
        if new is not None and old["f1"] - new["f1"] > MAX_FRAME_DROP:
            ok = False
            reasons.append(f"{name} F1 falls {old['f1'] - new['f1']:.3f} (more than {MAX_FRAME_DROP})")
    return ok, reasons


@dataclass
class TrainOutcome:
    """What `rhetoric train` did: the challenger, the comparison, and whether it was promoted."""

    promoted: bool
    champion_version: str
    challenger_version: str
    previous_version: str | None
    challenger_eval: dict
    champion_eval: dict | None
    baseline_eval: dict | None
    reasons: list[str]
    forced: bool = False
    selection: list[dict] = field(default_factory=list)
    chosen: str = ""

    def report(self) -> str:
        """The comparison table on the evaluation split and the decision, for the terminal."""
        old = self.champion_eval or {"per_frame": {}}
        base = self.baseline_eval or {"per_frame": {}}
        lines = []
        if self.selection:
            lines.append("model selection, grouped cross-validation on labels/*.csv:")
            lines += [f"  {'*' if r['candidate'] == self.chosen else ' '} {r['candidate']:<22} macro-F1 "
                      f"{r['macro_f1']:.3f}  micro-F1 {r['micro_f1']:.3f}" for r in self.selection]
        lines += [f"evaluation split: {self.challenger_eval['n']} held-out sentences, F1 per frame",
                 f"{'frame':<22}{'champion':>10}{'challenger':>12}{'change':>9}{'keywords':>10}"]
        rows = [(n, old["per_frame"].get(n, {}).get("f1"), m["f1"], base["per_frame"].get(n, {}).get("f1"))
                for n, m in self.challenger_eval["per_frame"].items()]
        rows += [(k.replace("_f1", "-F1"), old.get(k), self.challenger_eval[k], base.get(k))
                 for k in ("macro_f1", "micro_f1")]
        for name, before, after, keyword in rows:
            change = f"{after - before:+.3f}" if before is not None else ""
            lines.append(f"{name:<22}{_cell(before):>10}{_cell(after):>12}{change:>9}{_cell(keyword):>10}")
        verdict = "promoted" if self.promoted else "not promoted"
        forced = " (--force)" if self.forced else ""
        lines.append(f"challenger {self.challenger_version}: {verdict}{forced}; champion is {self.champion_version}")
        lines.extend(f"  {reason}" for reason in self.reasons)
        return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def model_card(metadata: dict) -> str:
    """A short Markdown model card from a version's metadata."""
    metrics, training = metadata["metrics"], metadata["training"]
    lines = [
        f"# Model card: {metadata['version']}", "",
        f"Created {metadata['created']} with rhetoric {metadata['code_version']}, "
        f"scikit-learn {metadata['libraries']['scikit-learn']}; pipeline `{metadata['candidate']}`.", "",
        "## Intended use", "",
        "Tags sentences of news reporting with the framing categories of labels/frames.toml "
        "(multi-label; a sentence may carry none) so that `rhetoric` can chart how often outlets use each "
        "frame. Shares over many sentences are the intended output; single predictions are noisy.", "",
        "## Training data", "",
        f"{training['sentences']} labelled sentences in {training['batches']} batches "
        f"(label-set hash `{metadata['label_hash'][:16]}`); {training['held_out']} held-out sentences "
        "in labels/eval/ never train anything.", "",
        "| file | sentences |", "|---|---|",
        *[f"| {f} | {n} |" for f, n in training["files"].items()], "",
        "## Metrics", "",
        "Grouped cross-validation (no batch on both sides) and the held-out evaluation split, "
        "at each frame's threshold (chosen by cross-validation); the keyword baseline for comparison.", "",
        "| frame | threshold | CV P | CV R | CV F1 | eval P | eval R | eval F1 | keyword eval F1 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in metadata["frames"]:
        cv = metrics["cv"]["per_frame"][name]
        ev = (metrics["eval"] or {}).get("per_frame", {}).get(name, {})
        kw = (metrics["baseline_eval"] or {}).get("per_frame", {}).get(name, {})
        lines.append(f"| {name} | {metadata['thresholds'][name]:.2f} | {cv['precision']:.3f} | {cv['recall']:.3f} "
                     f"| {cv['f1']:.3f} | {_cell(ev.get('precision'))} | {_cell(ev.get('recall'))} "
                     f"| {_cell(ev.get('f1'))} | {_cell(kw.get('f1'))} |")
    for key in ("macro_f1", "micro_f1"):
        lines.append(f"| **{key.replace('_f1', ' F1')}** | | | | {metrics['cv'][key]:.3f} | | | "
                     f"{_cell((metrics['eval'] or {}).get(key))} | {_cell((metrics['baseline_eval'] or {}).get(key))} |")
    lines += ["", "## Known limits", "",
              "- A linear model on word and character n-grams (plus keyword flags in the `-kw` pipelines): it keys "
              "on wording, so paraphrases far from the labelled examples, irony and context from other sentences "
              "are missed.",
              "- Calibrated scores saturate: a sentence that merely mentions a frame's topic (sanctions, talks) "
              "can score high; check the eval precision per frame before reading single predictions.",
              "- Most training sentences were written or selected to illustrate the codebook; real reporting "
              "differs, and the held-out split is small, so per-frame figures carry wide uncertainty.",
              "- English only. Scores are calibrated on cross-validated training data, not on each outlet.",
              ""]
    return "\n".join(lines)
