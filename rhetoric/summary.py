"""What one run did: counted as it goes, printed by `rhetoric run`, kept in the runs table, shown in Prefect."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from rhetoric.ingest import Refusal


@dataclass
class RunSummary:
    """What one run did; printed by `rhetoric run` and recorded in the runs table."""

    run_id: str
    articles_new: int = 0
    articles_already: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sentences_new: int = 0
    sentences_scored: int = 0
    model_version: str | None = None
    chart_path: str | None = None
    new_by_outlet: dict[str, int] = field(default_factory=dict)
    source_failures: list[Refusal] = field(default_factory=list)
    repeats: list[str] = field(default_factory=list)
    frame_shares: list[dict] = field(default_factory=list)
    skipped: str | None = None
    # stored articles in languages the champion was not trained on: language -> articles
    unreadable: dict[str, int] = field(default_factory=dict)
    languages: tuple[str, ...] = ()
    # frame -> the trend correction's rates: tpr, fpr, reviewed, from (audit, eval or cv)
    rates: dict[str, dict] = field(default_factory=dict)
    # stage -> seconds the run spent in it (read, prepare, dedupe, store, classify, dashboard, ...)
    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the time spent in the block to the stage's figure."""
        began = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(self.timings.get(stage, 0.0) + time.perf_counter() - began, 4)

    def counts(self) -> dict:
        """The counters stored with the run."""
        return {"articles_new": self.articles_new, "articles_seen": self.articles_already,
                "articles_refused": len(self.refusals), "sentences_new": self.sentences_new,
                "sentences_rescored": max(self.sentences_scored - self.sentences_new, 0),
                "model_version": self.model_version}

    def details(self) -> dict:
        """Refusals, warnings and per-outlet counts, kept as JSON with the run."""
        return {"refused": [{"source": r.source, "reason": r.reason} for r in self.refusals],
                "warnings": self.warnings, "new_by_outlet": self.new_by_outlet,
                "chart_path": self.chart_path,
                "failed_sources": [{"source": r.source, "reason": r.reason} for r in self.source_failures],
                "repeats": self.repeats, "frame_shares": self.frame_shares, "skipped": self.skipped,
                "unreadable": self.unreadable, "rates": self.rates, "timings": self.timings}

    def render(self) -> str:
        """The human summary of the run."""
        if self.skipped:
            return f"run {self.run_id}\nskipped: {self.skipped}"
        lines = [
            f"run {self.run_id}",
            f"articles: {self.articles_new} new, {self.articles_already} already stored, "
            f"{len(self.refusals)} refused",
        ]
        lines += [f"  refused {r.source}: {r.reason}" for r in self.refusals]
        lines += [f"  repeat {note}" for note in self.repeats]
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.source_failures:
            lines.append(f"sources: {len(self.source_failures)} failed this run (tried again next run)")
            lines += [f"  failed {r.source}: {r.reason}" for r in self.source_failures]
        lines.append(f"sentences: {self.sentences_new} new, {self.sentences_scored} classified")
        if self.unreadable:
            lines.append(f"not classified: {self.unreadable_text()}")
        lines.append(f"model version: {self.model_version}")
        if self.rates:
            lines.append(f"error rates: {self.rates_text()}")
        lines.append(f"chart: {self.chart_path}")
        return "\n".join(lines)

    def rates_text(self) -> str:
        """'multipolarity TPR 0.53 FPR 0.002 from audit (300 reviewed); ... (hint when not all from an audit)'."""
        parts = [f"{frame} TPR {e['tpr']:.2f} FPR {e['fpr']:.3f} from {e['from']}"
                 + (f" ({int(e['reviewed']):,} reviewed)" if e.get("reviewed") else "")
                 for frame, e in self.rates.items()]
        hint = "" if all(e["from"] == "audit" for e in self.rates.values()) else \
            " (measured on other text: run `rhetoric label audit`)"
        return "; ".join(parts) + hint

    def unreadable_text(self) -> str:
        """'3 stored article(s) in ru 2, zh 1: the model reads en only'."""
        total = sum(self.unreadable.values())
        shown = ", ".join(f"{language} {n}" for language, n in self.unreadable.items())
        readable = ", ".join(self.languages) or "en"
        return f"{total} stored article(s) in {shown}: the model reads {readable} only"

    def markdown(self) -> str:
        """The run summary as Markdown, for the Prefect UI."""
        if self.skipped:
            return f"# Run {self.run_id}\n\nSkipped: {self.skipped}\n"
        out = [f"# Run {self.run_id}", "",
               f"**{self.articles_new}** new articles, {self.articles_already} already stored "
               f"(including {len(self.repeats)} repeat(s) of stored stories), "
               f"{len(self.refusals)} refused; {self.sentences_new} new sentences; "
               f"{self.sentences_scored} classified by model `{self.model_version}`.", ""]
        if self.unreadable:
            out += [f"Not classified: {self.unreadable_text()}.", ""]
        if self.rates:
            out += [f"Error rates of the trend correction: {self.rates_text()}.", ""]
        out += ["## New articles per outlet", "", "| outlet | new articles |", "|---|---:|"]
        out += [f"| {_cell(o)} | {n} |" for o, n in sorted(self.new_by_outlet.items())] or ["| (none) | 0 |"]
        if self.source_failures:
            out += ["", "## Sources that failed (tried again next run)", ""]
            out += [f"- `{r.source}`: {_cell(r.reason)}" for r in self.source_failures]
        out += ["", "## Refused inputs", ""]
        out += [f"- `{r.source}`: {_cell(r.reason)}" for r in self.refusals] or ["None."]
        out += ["", "## Frames in this run's new sentences", ""]
        if self.frame_shares:
            out += ["| frame | sentences | labelled | share |", "|---|---:|---:|---:|"]
            out += [f"| {r['frame']} | {r['sentences']} | {r['labelled']} | {r['share']:.1%} |"
                    for r in self.frame_shares]
        else:
            out.append("No new sentences.")
        if self.chart_path:
            out += ["", f"Dashboard: [{self.chart_path}]({Path(self.chart_path).resolve().as_uri()})"]
        return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
