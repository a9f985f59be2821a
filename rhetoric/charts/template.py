"""The dashboard page as a template: everything but its "Last run" line, refilled without drawing anything.

Kept apart from rhetoric.charts.page so that a run that only refills a kept template
(rhetoric.dashboard.write_dashboard) never imports plotly.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

# where the "Last run" fact goes while a page template is built: the first NUL of the page's body, which
# comes after plotly.js (whose source holds NULs) and before any stored text (which never does)
LAST_RUN_MARK = "\x00"


@dataclass(frozen=True)
class PageTemplate:
    """A dashboard page cut where its "Last run" fact goes."""

    before: str
    after: str


def fill_last_run(template: PageTemplate, run: dict | None) -> str:
    """The page of a template, its "Last run" fact saying this about that run."""
    return template.before + html.escape(last_run_text(run)) + template.after


def last_run_text(run: dict | None) -> str:
    """'2026-11-29 20:31 UTC (this page's run)', from the runs table's row of the last run."""
    if not run:
        return "none recorded"
    # a run writes this page before it records its end: rhetoric.dashboard.live_status tells that run ("writing")
    # from another one in progress ("running") and from a dead one ("interrupted")
    status = {"writing": "this page's run", "running": "another run, in progress"}.get(
        run.get("status"), run.get("status", "unknown"))
    return f"{_moment(run.get('finished') or run.get('started'))} ({status})"


def _moment(value) -> str:
    if value is None:
        return "unknown"
    stamp = pd.Timestamp(value)
    return stamp.strftime("%Y-%m-%d %H:%M") + (" UTC" if stamp.tzinfo else "")
