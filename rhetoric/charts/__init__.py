"""Charts: one plotly figure per function (figures), the page that assembles them (page), and the page as a
template refilled with the last run (template), which imports no plotly."""
