"""Retraining: what a challenger is judged on, the promotion rule, "nothing changed", and the report of `rhetoric train`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Callable, Sequence

import pandas as pd

from rhetoric.evaluation import row_weights, split_eval
from rhetoric.labels import Frame, label_set_hash, text_key
from rhetoric.model import FrameModel
from rhetoric.registry import Registry, _code_version, evaluate

MACRO_TOLERANCE = 0.005
MAX_FRAME_DROP = 0.05


def inputs_fingerprint(table: pd.DataFrame, held_out: pd.DataFrame, frames: Sequence[Frame],
                       candidates: Sequence[str]) -> str:
    """What a training run depends on: training labels, evaluation labels (with weights), code version, candidates."""
    digest = hashlib.sha256()
    digest.update(label_set_hash(table, frames).encode())
    digest.update(label_set_hash(held_out, frames).encode())
    weights = sorted(f"{text_key(t)}\t{w:.6g}" for t, w in zip(held_out["text"], row_weights(held_out)))
    digest.update("\n".join(weights).encode())
    digest.update(_code_version().encode())
    digest.update(",".join(sorted(candidates)).encode())
    return digest.hexdigest()


def unchanged_version(registry: Registry, fingerprint: str) -> str | None:
    """The stored version trained from exactly these inputs, if any."""
    for version in reversed(registry.versions()):
        if registry.metadata(version).get("inputs_hash") == fingerprint:
            return version
    return None


def real_split_judge(held_out: pd.DataFrame, frames: Sequence[Frame]) -> Callable[[FrameModel], float | None] | None:
    """Model selection's yardstick: weighted macro-F1 on the real-text split (None without one)."""
    real, _ = split_eval(held_out)
    if real.empty:
        return None
    return lambda model: evaluate(model, real, frames)["macro_f1"]


def promotion_decision(challenger: dict, champion: dict | None) -> tuple[bool, list[str]]:
    """Whether the challenger may replace the champion, judged on the same evaluation split (real text first).

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
    """What `rhetoric train` did: the challenger, the comparison on both splits, and whether it was promoted."""

    promoted: bool
    champion_version: str | None
    challenger_version: str | None
    previous_version: str | None
    challenger: dict = field(default_factory=dict)  # {"real", "written", "cv"}: metrics or None
    champion: dict = field(default_factory=dict)  # {"real", "written"} of the champion before this run
    baseline: dict = field(default_factory=dict)  # {"real", "written"} of the keyword baseline
    reasons: list[str] = field(default_factory=list)
    forced: bool = False
    selection: list[dict] = field(default_factory=list)
    chosen: str = ""
    origins: dict = field(default_factory=dict)
    unchanged: bool = False
    judged_on: str = "real"

    def report(self) -> str:
        """The comparison on the real split, then the written split, then the decision, for the terminal."""
        if self.unchanged:
            return (f"nothing changed: the labels, the evaluation split and the code are those of version "
                    f"{self.challenger_version}; no new version was made (champion: {self.champion_version})")
        lines = ["training labels: " + ", ".join(f"{o} {n}" for o, n in self.origins.items())]
        if self.selection:
            judged = any(r.get("judged_macro_f1") is not None for r in self.selection)
            lines.append("model selection, " + ("by macro-F1 on the real-text split (grouped CV beside it):" if judged
                                                 else "by grouped cross-validation on labels/*.csv:"))
            for r in self.selection:
                real = f"real {r['judged_macro_f1']:.3f}  " if r.get("judged_macro_f1") is not None else ""
                lines.append(f"  {'*' if r['candidate'] == self.chosen else ' '} {r['candidate']:<28} {real}"
                             f"cv {r['macro_f1']:.3f}")
        real = self.challenger.get("real")
        if real:
            lines.append(f"real-text split: {real['n']} sentences of real text (labels/eval/), weighted to their corpora; "
                         "[95% interval, bootstrap over documents]")
            lines += _real_table(real, self.champion.get("real"), self.baseline.get("real"))
        written = self.challenger.get("written")
        if written:
            lines.append(f"written split (guard): {written['n']} held-out sentences we wrote, F1 per frame")
            lines += _f1_table(written, self.champion.get("written"), self.baseline.get("written"))
        if not real and not written:
            lines.append("labels/eval/ holds no sentences: compared on grouped cross-validation instead")
        verdict = "promoted" if self.promoted else "not promoted"
        forced = " (--force)" if self.forced else ""
        lines.append(f"challenger {self.challenger_version}: {verdict}{forced} (judged on the {self.judged_on} split); "
                     f"champion is {self.champion_version}")
        lines.extend(f"  {reason}" for reason in self.reasons)
        return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _real_table(new: dict, old: dict | None, base: dict | None) -> list[str]:
    old, base = old or {"per_frame": {}}, base or {"per_frame": {}}
    lines = [f"  {'frame':<16}{'champion P/R/F1':>22}   {'challenger P/R/F1 [F1 interval]':<38}{'change':>8}{'keywords':>10}"]
    ci = new.get("ci", {})
    for name, m in new["per_frame"].items():
        before = old["per_frame"].get(name)
        shown_old = f"{before['precision']:.2f}/{before['recall']:.2f}/{before['f1']:.3f}" if before else "-"
        low, high = ci.get(name, {}).get("f1", (None, None))
        band = f" [{low:.2f}, {high:.2f}]" if low is not None else ""
        change = f"{m['f1'] - before['f1']:+.3f}" if before else ""
        lines.append(f"  {name:<16}{shown_old:>22}   {m['precision']:.2f}/{m['recall']:.2f}/{m['f1']:.3f}{band:<24}"
                     f"{change:>8}{_cell(base['per_frame'].get(name, {}).get('f1')):>10}")
    low, high = ci.get("macro_f1", (None, None))
    band = f" [{low:.2f}, {high:.2f}]" if low is not None else ""
    change = f"{new['macro_f1'] - old['macro_f1']:+.3f}" if old.get("macro_f1") is not None else ""
    lines.append(f"  {'macro-F1':<16}{_cell(old.get('macro_f1')):>22}   {new['macro_f1']:.3f}{band:<29}{change:>8}"
                 f"{_cell(base.get('macro_f1')):>10}")
    return lines


def _f1_table(new: dict, old: dict | None, base: dict | None) -> list[str]:
    old, base = old or {"per_frame": {}}, base or {"per_frame": {}}
    lines = [f"  {'frame':<16}{'champion':>10}{'challenger':>12}{'change':>9}{'keywords':>10}"]
    rows = [(n, old["per_frame"].get(n, {}).get("f1"), m["f1"], base["per_frame"].get(n, {}).get("f1"))
            for n, m in new["per_frame"].items()]
    rows.append(("macro-F1", old.get("macro_f1"), new["macro_f1"], base.get("macro_f1")))
    for name, before, after, keyword in rows:
        change = f"{after - before:+.3f}" if before is not None else ""
        lines.append(f"  {name:<16}{_cell(before):>10}{_cell(after):>12}{change:>9}{_cell(keyword):>10}")
    return lines
