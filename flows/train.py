"""The rhetoric-train flow: validate labels, train a challenger, score it against the champion, promote or not."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from rhetoric.errors import RhetoricError
from rhetoric.labels import Frame, load_label_sets
from rhetoric.model import SELECTION, TrainedModel, train
from rhetoric.registry import Registry, comparison_metrics, describe, evaluate_splits
from rhetoric.training import (TrainOutcome, inputs_fingerprint, promotion_decision, real_split_judge,
                               unchanged_version)


def _only_io_errors(task, task_run, state) -> bool:
    """Retry a task only when it failed on the file system, never on bad labels or a bad model."""
    try:
        state.result()
    except OSError:
        return True
    except BaseException:
        return False
    return False


@task(name="validate-labels", cache_policy=NO_CACHE)
def validate_labels(labels_dir: str) -> tuple[tuple[Frame, ...], pd.DataFrame, pd.DataFrame] | RhetoricError:
    """Read the frames, the training labels and the evaluation split.

    Bad labels come back as the LabelError listing every problem, not raised: the flow then
    ends Failed with that message and the caller gets the error, without tracebacks in the log.
    """
    try:
        return load_label_sets(Path(labels_dir))
    except RhetoricError as problem:
        return problem


@task(name="train-challenger", cache_policy=NO_CACHE)
def train_challenger(table: pd.DataFrame, frames: tuple[Frame, ...], held_out: pd.DataFrame,
                     candidates: list[str]) -> TrainedModel | RhetoricError:
    """Every candidate fitted; the best by macro-F1 on the real-text split (by grouped CV without one).

    Labels too thin to train on come back as the ModelError, like validate_labels' problems.
    """
    try:
        return train(table, frames, candidates, judge=real_split_judge(held_out, frames))
    except RhetoricError as problem:
        return problem


@task(name="score-champion", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1,
      retry_condition_fn=_only_io_errors)
def score_champion(models_dir: str, held_out: pd.DataFrame, frames: tuple[Frame, ...]) -> tuple[str | None, dict]:
    """The current champion's version and its metrics on the same splits: {"real", "written"}, or {"cv"} without any."""
    champion = Registry(Path(models_dir)).champion()
    if champion is None:
        return None, {}
    if held_out.empty:
        return champion.version, {"cv": champion.metadata["metrics"]["cv"]}
    return champion.version, evaluate_splits(champion, held_out, frames)


@task(name="evaluate-challenger", cache_policy=NO_CACHE)
def evaluate_challenger(trained: TrainedModel, frames: tuple[Frame, ...], table: pd.DataFrame,
                        held_out: pd.DataFrame, inputs_hash: str) -> dict:
    """The challenger's metadata: real-split, written-split and cross-validated metrics, baselines, thresholds, rates."""
    return describe(trained, frames, table, held_out, inputs_hash)


@task(name="save-challenger", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1,
      retry_condition_fn=_only_io_errors)
def save_challenger(models_dir: str, trained: TrainedModel, metadata: dict) -> str:
    """Store the challenger as a new registry version (whether or not it is promoted)."""
    return Registry(Path(models_dir)).save(trained, metadata)


@task(name="promote", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1, retry_condition_fn=_only_io_errors)
def promote(models_dir: str, version: str, macro_f1: float) -> None:
    """Point the registry's champion at the version."""
    Registry(Path(models_dir)).promote(version, round(macro_f1, 4))


@flow(name="rhetoric-train")
def train_flow(labels_dir: str, models_dir: str, force: bool = False,
               candidates: list[str] | None = None) -> TrainOutcome:
    """Validate labels, train a challenger, compare it with the champion on the real-text split first, promote if not worse.

    Promotion: on the real-text split (the written split when there is none), macro-F1 not
    below the champion's minus 0.005 and no frame's F1 down by more than 0.05; force
    promotes anyway. Unchanged labels, evaluation split and code make no new version.
    candidates defaults to model.SELECTION (scikit-learn-only pipelines).

    Raises:
        LabelError: the labels are invalid (every problem, with file and line); nothing is trained.
        ModelError: the labels are too thin to train on.
    """
    checked = validate_labels(labels_dir)
    if isinstance(checked, RhetoricError):
        return Failed(message=str(checked), data=checked)
    frames, table, held_out = checked
    candidates = list(candidates or SELECTION)
    registry = Registry(Path(models_dir))
    fingerprint = inputs_fingerprint(table, held_out, frames, candidates)
    same = unchanged_version(registry, fingerprint)
    if same is not None and not force:
        return TrainOutcome(promoted=False, champion_version=registry.champion_version(), challenger_version=same,
                            previous_version=registry.champion_version(), unchanged=True)
    trained = train_challenger(table, frames, held_out, candidates)
    if isinstance(trained, RhetoricError):
        return Failed(message=str(trained), data=trained)
    metadata = evaluate_challenger(trained, frames, table, held_out, fingerprint)
    previous, champion_splits = score_champion(models_dir, held_out, frames)
    judged_on = "real" if metadata["metrics"]["real"] else "written" if metadata["metrics"]["written"] else "cv"
    champion_eval = champion_splits.get(judged_on) if previous else None
    challenger_eval = comparison_metrics(metadata)
    promote_it, reasons = promotion_decision(challenger_eval, champion_eval)
    version = save_challenger(models_dir, trained, metadata)
    if promote_it or force:
        promote(models_dir, version, challenger_eval["macro_f1"])
    metrics = metadata["metrics"]
    return TrainOutcome(
        promoted=promote_it or force,
        champion_version=version if (promote_it or force) else previous,
        challenger_version=version,
        previous_version=previous,
        challenger={"real": metrics["real"], "written": metrics["written"], "cv": metrics["cv"]},
        champion=champion_splits,
        baseline={"real": metrics["baseline_real"], "written": metrics["baseline_written"]},
        reasons=reasons,
        forced=force and not promote_it,
        selection=trained.selection,
        chosen=trained.candidate,
        origins=metadata["training"]["origins"],
        judged_on=judged_on,
    )
