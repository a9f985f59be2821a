"""The model card (models/VERSION/MODEL_CARD.md), written from a version's metadata."""

from __future__ import annotations

from rhetoric.corpora import CORPORA

# below this precision on the real split, the card warns that a frame's single flags are mostly wrong
IMPRECISE = 0.5


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _interval(ci: dict | None, key: str) -> str:
    if not ci or key not in ci:
        return ""
    low, high = ci[key]
    return f" [{low:.2f}, {high:.2f}]"


def model_card(metadata: dict) -> str:
    """A Markdown model card: intended use, training data with provenance, real-split then written-split figures, limits."""
    metrics, training = metadata["metrics"], metadata["training"]
    real, written = metrics.get("real"), metrics.get("written", metrics.get("eval"))
    lines = [
        f"# Model card: {metadata['version']}", "",
        f"Created {metadata['created']} with rhetoric {metadata['code_version']}, "
        f"scikit-learn {metadata['libraries']['scikit-learn']}; pipeline `{metadata['candidate']}`; "
        f"reads {', '.join(metadata.get('languages', ['en']))} (articles in other languages are left unclassified).", "",
        "## Intended use", "",
        "Tags sentences of news reporting with the framing categories of labels/frames.toml "
        "(multi-label; a sentence may carry none) so that `rhetoric` can chart how often outlets use each "
        "frame. Shares over many sentences are the intended output; single predictions are noisy.", "",
        "## Training data", "",
        f"{training['sentences']} labelled sentences in {training['batches']} batches "
        f"(label-set hash `{metadata['label_hash'][:16]}`); by origin: "
        + ", ".join(f"{o} {n}" for o, n in training.get("origins", {}).items()) + ". "
        f"{training['held_out']} evaluation sentences in labels/eval/ never train anything.", "",
        "| file | sentences |", "|---|---|",
        *[f"| {f} | {n} |" for f, n in training["files"].items()], "",
    ]
    sources = training.get("sources") or {}
    if sources:
        lines += ["Real text trained on (read in place from ../shared/corpora; labelled sentences carry their "
                  "document's URL or id and licence):", "",
                  "| corpus | sentences | licence | attribution |", "|---|---|---|---|"]
        lines += [f"| {name} | {n} | {CORPORA[name].licence} | {CORPORA[name].attribution} |"
                  for name, n in sources.items() if name in CORPORA]
        lines.append("")
    chosen_on = metadata.get("thresholds_from") or {}
    if chosen_on:
        lines += ["Thresholds: each frame's is chosen by out-of-fold F1 on "
                  + "; ".join(f"{n}: {w['rows']} ({w['sentences']} sentences, {w['positives']} positives)"
                              for n, w in chosen_on.items())
                  + ". A random sample of real text holds frames as rarely as a real corpus does; labels picked "
                    "to teach the model do not.", ""]
    lines += ["## Metrics on real text", ""]
    if real:
        lines += [
            f"The real-text split: {real['n']} sentences of the four corpora, from documents that give no training "
            "sentence, sampled by corpus and topic stratum and weighted back to the whole pool (weighted counts), "
            "labelled twice independently by the codebook. 95% intervals from a bootstrap over documents.", "",
            "| frame | threshold | precision | recall | F1 | positives in sample | keyword F1 |", "|---|---|---|---|---|---|---|"]
        base = (metrics.get("baseline_real") or {}).get("per_frame", {})
        ci = real.get("ci", {})
        for name in metadata["frames"]:
            m = real["per_frame"][name]
            lines.append(f"| {name} | {metadata['thresholds'][name]:.2f} | {m['precision']:.3f}{_interval(ci.get(name), 'precision')} "
                         f"| {m['recall']:.3f}{_interval(ci.get(name), 'recall')} | {m['f1']:.3f}{_interval(ci.get(name), 'f1')} "
                         f"| {m['support']} | {_cell(base.get(name, {}).get('f1'))} |")
        lines.append(f"| **macro F1** | | | | {real['macro_f1']:.3f}{_interval(ci, 'macro_f1')} | | "
                     f"{_cell((metrics.get('baseline_real') or {}).get('macro_f1'))} |")
    else:
        lines.append("No real-text split was present when this version was trained: its figures below are on text we wrote.")
    lines += ["", "## Metrics on our written split and cross-validation", "",
              "The written held-out articles (labels/eval/heldout.csv, a guard that the written register is kept) and "
              "grouped cross-validation on the training labels (no batch on both sides).", "",
              "| frame | CV P | CV R | CV F1 | written P | written R | written F1 |", "|---|---|---|---|---|---|---|"]
    for name in metadata["frames"]:
        cv = metrics["cv"]["per_frame"][name]
        ev = (written or {}).get("per_frame", {}).get(name, {})
        lines.append(f"| {name} | {cv['precision']:.3f} | {cv['recall']:.3f} | {cv['f1']:.3f} "
                     f"| {_cell(ev.get('precision'))} | {_cell(ev.get('recall'))} | {_cell(ev.get('f1'))} |")
    lines.append(f"| **macro F1** | | | {metrics['cv']['macro_f1']:.3f} | | | {_cell((written or {}).get('macro_f1'))} |")
    lines += ["", "## Known limits", "", *_limits(metadata, real), ""]
    return "\n".join(lines)


def _limits(metadata: dict, real: dict | None) -> list[str]:
    limits = []
    if real:
        weak = [f"{n} ({m['precision']:.2f})" for n, m in real["per_frame"].items() if m["precision"] < IMPRECISE]
        if weak:
            limits.append(f"- Imprecise on real text: {', '.join(weak)}: fewer than half of its flags are right "
                          "there; read its trend through the corrected share and its band, not the raw count.")
        wide = [n for n, m in real.get("ci", {}).items() if n in real["per_frame"] and m["f1"][1] - m["f1"][0] > 0.25]
        if wide:
            limits.append(f"- Wide intervals ({', '.join(wide)}): the real split holds few positives of these frames, "
                          "so their figures are uncertain.")
    limits += [
        "- A linear model on word and character n-grams: it keys on wording, so paraphrases far from the labelled "
        "examples, irony and context from other sentences are missed.",
        "- Real training text is official speech (Kremlin, UN General Debate, State Department) and Wikipedia's "
        "event items; news reporting by outlets is represented only by sentences we wrote. Measure the error on "
        "your own corpus before trusting a trend.",
        "- Scores are calibrated on cross-validated training data, whose frames are far more frequent than in "
        "real reporting; the trend charts correct shares for the measured error rates.",
    ]
    return limits
