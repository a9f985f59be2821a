"""The model registry: every trained version under models/, verified before loading, and a champion pointer.

Layout::

    models/champion.json                 {"champion": VERSION, "history": [{version, promoted_at, macro_f1}, ...]}
    models/VERSION/model.joblib          the pickled FrameModel
    models/VERSION/scorer.npz            the same model as plain arrays, which scoring reads (rhetoric.scorer)
    models/VERSION/metadata.json         version, created, label hash, code and library versions,
                                         thresholds, rates, metrics, SHA-256 of model.joblib and scorer.npz
    models/VERSION/MODEL_CARD.md         intended use, training data, metrics per frame, known limits

VERSION is YYYY.MM.DD-<first 8 hex of the label-set hash>, with -2, -3 ... appended
when that name is taken. A joblib file runs code when loaded, so the registry
checks its SHA-256 and the scikit-learn version before unpickling, and reads only what it
owns: version names of that form, and files that resolve (links followed) inside models/.
The SHA-256 catches a file changed after it was saved; it does not stop someone who can
write to models/, who can rewrite the recorded hash as well.

Scoring reads scorer.npz when a version has one: no code runs when it is loaded, and
neither scikit-learn nor its version matter. Versions saved before it existed (and
models with sentence embeddings) score through model.joblib; `Registry.add_scorer`
writes the arrays for an older version.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from rhetoric import __version__
from rhetoric.errors import ModelError, exception_line
from rhetoric.card import model_card
from rhetoric.evaluation import documents_of, row_weights, split_eval, strata_of, weighted_metrics, weighted_rates
from rhetoric.labels import Frame, label_matrix, label_set_hash, load_label_sets

if TYPE_CHECKING:
    from rhetoric.model import FrameModel, TrainedModel
    from rhetoric.scorer import LinearScorer
# scikit-learn, joblib and rhetoric.model (a fifth of a second) are imported where a model is loaded, saved or
# trained: commands and run steps that only read the registry's files do not pay for them

POINTER = "champion.json"
ARTIFACT = "model.joblib"
SCORER = "scorer.npz"
_LOADED: dict[tuple, "LoadedModel"] = {}  # the last model loaded, by file and SHA-256s
METADATA = "metadata.json"
# the languages of the training text: articles in any other language are stored but left unclassified
LANGUAGES = ("en",)
CARD = "MODEL_CARD.md"
VERSION_NAME = re.compile(r"\d{4}\.\d{2}\.\d{2}-[0-9a-f]{8}(?:-\d+)?")
VERSION_FORM = "YYYY.MM.DD-<8 hex digits>, optionally -N"
RESTORE = "restore models/ from git (git checkout models/) or retrain with `rhetoric train --force`"


class LoadedModel:
    """A verified model from the registry: its version, frames and metadata, and what scores with it.

    The files' SHA-256s are checked before this exists; what scores is loaded when it is first
    used (Registry.load(lazy=True)), so a run with nothing to score loads nothing. It is the
    version's scorer.npz when it has one (numpy and SciPy's sparse matrices only), else its
    unpickled model.joblib (scikit-learn, 0.8 s more). A file that is not a model of the
    recorded frames is then refused, in one line, where it is first used.
    """

    def __init__(self, version: str, frames: tuple[str, ...], metadata: dict, path: Path,
                 scorer_path: Path | None = None):
        self.version, self.frames, self.metadata, self.path = version, frames, metadata, path
        self.scorer_path = scorer_path
        self._model: FrameModel | None = None
        self._scorer: LinearScorer | FrameModel | None = None

    @property
    def model(self) -> FrameModel:
        """The unpickled FrameModel (scikit-learn's pipeline); scoring does not need it when a scorer exists."""
        if self._model is None:
            _check_sklearn(self.path, self.metadata.get("libraries", {}).get("scikit-learn", "unknown"))
            self._model = _unpickle(self.path, self.frames)
        return self._model

    @property
    def scorer(self) -> LinearScorer | FrameModel:
        """What predict scores with: the scorer.npz arrays, or the FrameModel of a version without them."""
        if self._scorer is None:
            if self.scorer_path is None:
                self._scorer = self.model
            else:
                from rhetoric.scorer import LinearScorer

                self._scorer = LinearScorer.load(self.scorer_path, self.frames, RESTORE)
        return self._scorer

    def predict(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(labels bool (n, k), calibrated scores (n, k)), columns in self.frames order, thresholds applied."""
        return self.scorer.predict(list(texts))


class Registry:
    """The models/ folder: save versions, load them safely, know and change the champion."""

    def __init__(self, models_dir: Path):
        self.root = Path(models_dir)

    def versions(self) -> list[str]:
        """Every stored version, oldest first by creation time (folders not named like a version are not versions).

        Raises:
            ModelError: a version folder or its metadata lies outside models/.
        """
        names = [p.parent.name for p in self.root.glob(f"*/{METADATA}") if VERSION_NAME.fullmatch(p.parent.name)]
        return sorted(names, key=lambda name: (self.metadata(name).get("created", ""), name))

    def save(self, trained: TrainedModel, metadata: dict) -> str:
        """Store a trained model as a new version; returns the version name."""
        version = self._new_version(metadata["label_hash"])
        folder = self.root / version
        folder.mkdir(parents=True)
        import joblib

        joblib.dump(trained.model, folder / ARTIFACT, compress=3)
        metadata = {**metadata, "version": version, "sha256": _sha256(folder / ARTIFACT),
                    **_save_scorer(trained.model, folder)}
        _write_json(folder / METADATA, metadata)
        (folder / CARD).write_text(model_card(metadata), encoding="utf-8")
        return version

    def add_scorer(self, version: str) -> bool:
        """Write scorer.npz for a version saved without one (its model.joblib is verified and unpickled first).

        Returns False when the version has one already or its model cannot have one (embeddings).
        """
        metadata = self.check(version)
        if metadata.get("scorer_sha256"):
            return False
        folder = self.root / version
        model = _unpickle(folder / ARTIFACT, tuple(metadata.get("frames") or ()))
        added = _save_scorer(model, folder)
        if added:
            _write_json(folder / METADATA, {**metadata, **added})
        return bool(added)

    def _new_version(self, label_hash: str) -> str:
        base = f"{datetime.now(timezone.utc):%Y.%m.%d}-{label_hash[:8]}"
        version, n = base, 1
        while (self.root / version).exists():
            n += 1
            version = f"{base}-{n}"
        return version

    def metadata(self, version: str) -> dict:
        """The stored metadata of a version."""
        path = self._owned(self._folder(version, str(self.root)) / METADATA)
        if not path.is_file():
            raise ModelError(f"{path}: no such model version; `rhetoric train` creates one")
        return _read_json(path)

    def _folder(self, version: object, named_in: str) -> Path:
        """A version's folder, refused unless its name has the version form and it lies inside models/."""
        if not isinstance(version, str) or not VERSION_NAME.fullmatch(version):
            raise ModelError(f"{named_in}: {version!r} is not a model version; expected a folder name of the form "
                             f"{VERSION_FORM} inside {self.root}; {RESTORE}")
        return self._owned(self.root / version)

    def _owned(self, path: Path) -> Path:
        """path, refused unless it resolves (symbolic links followed) inside models/: the registry loads what it holds."""
        resolved, root = path.resolve(), self.root.resolve()
        if not resolved.is_relative_to(root):
            raise ModelError(f"{path}: resolves to {resolved}, outside the registry {root}; models are only loaded "
                             f"from inside it: replace the link with the real files, or {RESTORE}")
        return path

    def check(self, version: str) -> dict:
        """Verify a version's artifact (inside the registry, SHA-256, scikit-learn version) without loading it.

        Returns its metadata. Cheap: a run checks its champion before Prefect starts and loads it once, later.

        Raises:
            ModelError: the metadata is missing, the file changed since it was saved, or the library differs.
        """
        metadata = self.metadata(version)
        path = self._owned(self.root / version / ARTIFACT)
        if not path.is_file():
            raise ModelError(f"{path}: the model file is missing; restore it from git or run `rhetoric train --force`")
        _check_sha256(path, metadata.get("sha256"), "loading it would run unverified code")
        if metadata.get("scorer_sha256"):
            scorer = self._owned(self.root / version / SCORER)
            if not scorer.is_file():
                raise ModelError(f"{scorer}: the scorer file is missing; {RESTORE}")
            _check_sha256(scorer, metadata["scorer_sha256"], "its scores could not be trusted")
        else:  # scored by unpickling: refused before a long job starts, not when it first scores
            _check_sklearn(path, metadata.get("libraries", {}).get("scikit-learn", "unknown"))
        return metadata

    def load(self, version: str, lazy: bool = False) -> LoadedModel:
        """Verify a version's artifact (as check does) and load it; lazy: unpickle it when it is first used.

        Raises:
            ModelError: as check, or (now, or when first used if lazy) the file does not hold a model of the
                recorded frames.
        """
        metadata = self.check(version)
        path = self.root / version / ARTIFACT
        scorer = self.root / version / SCORER if metadata.get("scorer_sha256") else None
        key = (str(path.resolve()), metadata["sha256"], metadata.get("scorer_sha256"))
        if key not in _LOADED:  # verified again above; loaded once per process (preflight, then the run)
            _LOADED.clear()
            _LOADED[key] = LoadedModel(version, tuple(metadata.get("frames") or ()), metadata, path, scorer)
        if not lazy:
            _LOADED[key].scorer  # noqa: B018  loaded and checked now
        return _LOADED[key]

    def verify(self) -> LoadedModel | None:
        """Check every version folder and load the champion: a long job is refused before it starts, not after.

        Raises:
            ModelError: as versions() and champion() do.
        """
        self.versions()
        return self.champion()

    def champion_version(self) -> str | None:
        """The champion's version name, or None when nothing was promoted yet."""
        return self._pointer().get("champion")

    def champion(self, lazy: bool = False) -> LoadedModel | None:
        """The verified champion, or None when the registry has none (lazy: as load)."""
        version = self.champion_version()
        return self.load(version, lazy) if version else None

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
        """champion.json, its champion and every version in its history checked to be registry versions."""
        path = self._owned(self.root / POINTER)
        if not path.is_file():
            return {}
        pointer = _read_json(path)
        history = pointer.get("history", [])
        if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
            raise ModelError(f"{path}: history is not a list of {{version, promoted_at, macro_f1}} entries; {RESTORE}")
        named = [h.get("version") for h in history]
        for name in named if pointer.get("champion") is None else [pointer["champion"], *named]:
            self._folder(name, str(path))
        return pointer


def _unpickle(path: Path, frames: tuple[str, ...]) -> FrameModel:
    """The FrameModel in a verified joblib file; anything else is refused in one line."""
    import joblib

    from rhetoric.model import FrameModel

    try:
        model = joblib.load(path)
    except Exception as exc:  # unpickling fails in any way: bad bytes, truncation, a class renamed since
        found = exception_line(exc)
        raise ModelError(f"{path}: not a loadable joblib model file ({found}); {RESTORE}") from None
    if not isinstance(model, FrameModel):
        kind = type(model)
        raise ModelError(f"{path}: holds a {kind.__module__}.{kind.__qualname__}, expected a rhetoric.model.FrameModel "
                         f"saved by `rhetoric train`; {RESTORE}")
    if model.frames != frames:
        raise ModelError(f"{path}: the model's frames {', '.join(model.frames)} differ from {METADATA}'s "
                         f"{', '.join(frames) or '(none)'}; {RESTORE}")
    return model


def _save_scorer(model: FrameModel, folder: Path) -> dict:
    """Write the model's scorer.npz when it can have one; the metadata entry recording its SHA-256, or {}."""
    from rhetoric.scorer import LinearScorer

    scorer = LinearScorer.from_model(model)
    if scorer is None:
        return {}
    scorer.save(folder / SCORER)
    return {"scorer_sha256": _sha256(folder / SCORER)}


def _check_sha256(path: Path, recorded: object, risk: str) -> None:
    found = _sha256(path)
    if found != recorded:
        raise ModelError(
            f"{path}: SHA-256 is {found[:16]}... but {METADATA} recorded {str(recorded)[:16]}...; "
            f"the file changed after it was saved and {risk}; {RESTORE}"
        )


def _check_sklearn(path: Path, recorded: str) -> None:
    from importlib.metadata import version

    installed = version("scikit-learn")  # its metadata, not the package: importing it takes a second
    if recorded.split(".")[:2] != installed.split(".")[:2]:
        raise ModelError(
            f"{path}: saved with scikit-learn {recorded}, but {installed} is installed; pickles are only "
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
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: cannot read ({exc}); restore it from git") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object, found a {type(data).__name__}; restore it from git")
    return data


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
    """Metrics of a model on a labelled table (None when the table is empty), frames the model knows.

    A table of real text (rows with a `weight`) gets weighted figures with bootstrap intervals.
    """
    if table.empty:
        return None
    known, truth, predicted = _predictions(model, table, frames)
    return _metrics(table, truth, predicted, known)


def _predictions(model: FrameModel | LoadedModel, table: pd.DataFrame, frames: Sequence[Frame]
                 ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(frames the model knows, their true 0/1 matrix, the model's labels for them) on a labelled table."""
    known = [f.name for f in frames if f.name in model.frames]
    labels, _ = model.predict(list(table["text"]))
    return known, label_matrix(table, known), labels[:, [model.frames.index(n) for n in known]]


def _metrics(table: pd.DataFrame, truth, predicted, names: list[str]) -> dict:
    from rhetoric.model import frame_metrics

    if "weight" in table:
        return weighted_metrics(truth, predicted, names, row_weights(table), documents_of(table), strata_of(table))
    return frame_metrics(truth, predicted, names)


def evaluate_splits(model: FrameModel | LoadedModel, held_out: pd.DataFrame, frames: Sequence[Frame]) -> dict:
    """{"real": weighted metrics on the real-text split, "written": metrics on our written split} (None if empty)."""
    real, written = split_eval(held_out)
    return {"real": evaluate(model, real, frames), "written": evaluate(model, written, frames)}


def baseline(table: pd.DataFrame, frames: Sequence[Frame]) -> dict | None:
    """Metrics of the keyword-only baseline on a labelled table."""
    from rhetoric.model import keyword_baseline

    if table.empty:
        return None
    names = [f.name for f in frames]
    return _metrics(table, label_matrix(table, frames), keyword_baseline(list(table["text"]), frames), names)


def describe(trained: TrainedModel, frames: Sequence[Frame], table: pd.DataFrame, held_out: pd.DataFrame,
             inputs_hash: str = "") -> dict:
    """The metadata of a newly trained model (the registry adds version and sha256).

    metrics.real is the real-text split (weighted, with intervals), metrics.written our written
    held-out articles; metrics.eval is the split the gate compares on (real when there is one).
    """
    import joblib
    import scipy
    import sklearn

    names = [f.name for f in frames]
    real, written = split_eval(held_out)
    splits = evaluate_splits(trained.model, held_out, frames)
    baselines = {"real": baseline(real, frames), "written": baseline(written, frames)}
    return {
        "created": _now(),
        "label_hash": label_set_hash(table, frames),
        "code_version": _code_version(),
        "libraries": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                      "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pd.__version__,
                      "joblib": joblib.__version__},
        "inputs_hash": inputs_hash,
        "candidate": trained.candidate,
        "frames": names,
        "languages": list(LANGUAGES),
        "thresholds": dict(zip(names, map(float, trained.model.thresholds))),
        "thresholds_from": next((r.get("thresholds_from") for r in trained.selection
                                 if r["candidate"] == trained.candidate), None),
        "calibration": {n: [float(a), float(b)] for n, (a, b) in zip(names, trained.model.calibration)},
        "rates": trained.rates,
        "rates_eval": real_split_rates(trained.model, real, frames),
        "metrics": {"cv": trained.cv, **splits, "eval": splits["real"] or splits["written"],
                    "baseline_cv": baseline(table, frames), "baseline_real": baselines["real"],
                    "baseline_written": baselines["written"],
                    "baseline_eval": baselines["real"] or baselines["written"]},
        "selection": trained.selection,
        "training": {"sentences": int(len(table)), "held_out": int(len(held_out)),
                     "files": {str(k): int(v) for k, v in table["file"].value_counts().sort_index().items()},
                     "origins": {str(k): int(v) for k, v in table["origin"].value_counts().sort_index().items()},
                     "sources": ({str(k): int(v) for k, v in table["source"].replace("", pd.NA).dropna()
                                  .value_counts().sort_index().items()} if "source" in table else {}),
                     "batches": int(table["batch"].nunique())},
    }


def real_split_rates(model: FrameModel | LoadedModel, real: pd.DataFrame, frames: Sequence[Frame]) -> dict | None:
    """Weighted TPR and FPR on the real-text split (what the trend correction uses without an audit)."""
    if real.empty:
        return None
    known, truth, predicted = _predictions(model, real, frames)
    return weighted_rates(truth, predicted, known, row_weights(real))


def ensure_champion(models_dir: Path, labels_dir: Path, lazy: bool = False) -> LoadedModel:
    """The champion (lazy: as Registry.load); with none in the registry, train the default pipeline from labels/
    and promote it."""
    registry = Registry(models_dir)
    champion = registry.champion(lazy)
    if champion is not None:
        return champion
    from rhetoric.model import DEFAULT_CANDIDATE, train

    frames, table, held_out = load_label_sets(labels_dir)
    trained = train(table, frames, [DEFAULT_CANDIDATE])
    metadata = describe(trained, frames, table, held_out)
    version = registry.save(trained, metadata)
    registry.promote(version, round(comparison_metrics(metadata)["macro_f1"], 4))
    return registry.load(version)


def comparison_metrics(metadata: dict) -> dict:
    """The metrics a model is compared and promoted on: the real split's, else the written split's, else CV's."""
    return metadata["metrics"]["eval"] or metadata["metrics"]["cv"]
