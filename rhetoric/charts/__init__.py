"""Charts: one plotly figure per function (figures), the page that assembles them (page), and the page as a
template refilled with the last run (template), which imports no plotly."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rhetoric.charts.template import PageTemplate
    from rhetoric.trends import DashboardData


def draw_template(data: DashboardData) -> PageTemplate:
    """page.dashboard_template(data), plotly imported only when this is called: what a run hands its idle
    helper by name (rhetoric.parallel.aside), which imported plotly while it waited for its first slice
    (rhetoric.prepare.warm), so a run with a helper never imports plotly itself (one without draws here)."""
    from rhetoric.charts.page import dashboard_template

    return dashboard_template(data)


def warm_drawing() -> None:
    """Draw a page for a made-up corpus of six articles, and drop it: plotly imports each kind of figure's
    code and validators when it first draws one, which made a helper's first real page 0.32 s against
    0.15 s for the next. A run's helper does this while it waits for its first slice (rhetoric.prepare.warm)."""
    import pandas as pd

    from rhetoric.trends import build_dashboard_data

    n = 6
    totals = pd.DataFrame({"article_id": range(n), "published": pd.date_range("2024-01-01", periods=n, freq="MS"),
                           "outlet": ["a", "b"] * (n // 2), "frame": "frame", "sentences": 10, "count": 1,
                           "score_sum": 1.0})
    cooccurrence = pd.DataFrame({"frame_a": ["frame"], "frame_b": ["frame"], "count": [n]})
    draw_template(build_dashboard_data(totals, {}, cooccurrence, {}, {"frame": "Frame"}, None, [], freq="M"))
