"""Charts: one plotly figure per function (figures) and the page that assembles them (page)."""

from rhetoric.charts.page import dashboard_html

__all__ = ["dashboard_html"]
