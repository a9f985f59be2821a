"""Chart structure (traces, titles, axes, palette) and the assembled page."""

import base64
import json
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from rhetoric.charts import figures
from rhetoric.charts.page import dashboard_html
from rhetoric.trends import DashboardData

TITLES = {"peace_talks": "Peace talks", "anti_sanctions": "Anti-sanctions"}


@pytest.fixture
def trends():
    periods = ["2023-01-01", "2023-04-01", "2023-07-01"]
    rows = []
    for i, period in enumerate(periods):
        for j, frame in enumerate(["anti_sanctions", "peace_talks"]):
            share = 0.05 * (i + 1) + 0.01 * j
            rows.append({"period": period, "frame": frame, "articles": 10 + i, "sentences": 200 + i,
                         "count": 10 * (i + 1), "share": share, "adjusted_share": share,
                         "share_low": share - 0.01, "share_high": share + 0.02})
    return pd.DataFrame(rows)


@pytest.fixture
def outlets():
    rows = []
    for outlet, volume in (("Small Wire", 100), ("Big Daily", 5000)):
        for frame, share in (("peace_talks", 0.1), ("anti_sanctions", 0.3)):
            rows.append({"outlet": outlet, "frame": frame, "articles": 5, "sentences": volume,
                         "count": int(volume * share), "share": share, "adjusted_share": share,
                         "share_low": share / 2, "share_high": share * 1.5})
    return pd.DataFrame(rows)


@pytest.fixture
def cooccurrence():
    return pd.DataFrame({"frame_a": ["anti_sanctions", "anti_sanctions", "peace_talks"],
                         "frame_b": ["anti_sanctions", "peace_talks", "peace_talks"],
                         "count": [40, 10, 20]})


@pytest.fixture
def data(trends, outlets, cooccurrence):
    sentences = pd.DataFrame({
        "frame": ["peace_talks", "anti_sanctions", "anti_sanctions"],
        "period": ["2023-04-01", "2023-01-01", ""], "published": ["2023-05-02", "2023-01-09", ""],
        "outlet": ["Big Daily", "Small Wire", "Big Daily"], "title": ["Talks", "Sanctions", None],
        "url": ["https://example.org/t", "", None], "source": ["t.html", "s.html", "u.html"],
        "text": ["Talks must start now.", "Sanctions are <script>bad</script>.", "Undated claim."],
        "score": [0.91, 0.88, 0.5]})
    summary = {"articles": 33, "sentences": 603, "first_published": pd.Timestamp("2023-01-02").date(),
               "last_published": pd.Timestamp("2023-09-30").date(), "undated_articles": 2,
               "outlets": ["Big Daily", "Small Wire"], "model_versions": ["v2"], "languages": {"en": 31, "ru": 2},
               "last_run": {"run_id": "r", "started": pd.Timestamp("2024-01-01 09:00", tz="UTC"),
                            "finished": pd.Timestamp("2024-01-01 09:05", tz="UTC"), "status": "completed"}}
    changes = pd.DataFrame({"version": ["v1", "v2"], "promoted_at": pd.to_datetime(["2019-01-01", "2023-05-10"]),
                            "macro_f1": [0.6, 0.7]})
    return DashboardData(summary=summary, frame_titles=TITLES, freq="Q", trends=trends, outlets=outlets,
                         cooccurrence=cooccurrence, sentences=sentences,
                         model={"version": "v2", "macro_f1": 0.7312, "adjusted": True, "evaluated_on": "real text",
                                "languages": ["en"]}, model_changes=changes)


def decoded(value):
    """plotly.js typed arrays ({"dtype", "bdata"}) in a figure dict, as the numpy arrays they hold."""
    if isinstance(value, dict) and set(value) == {"dtype", "bdata"}:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    if isinstance(value, dict):
        return {key: decoded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decoded(item) for item in value]
    return value


def share_chart(*args) -> go.Figure:
    """figures.share_over_time's figure as graph objects, every trace checked by plotly (go.Figure raises on a
    bad property)."""
    fig = figures.share_over_time(*args)
    return go.Figure(decoded(fig)) if isinstance(fig, dict) else fig


def test_the_share_chart_written_unchecked_is_what_plotly_writes_checked(trends):
    changes = pd.DataFrame({"version": ["v2"], "promoted_at": pd.to_datetime(["2023-05-10"])})
    gappy = trends[trends["period"] != trends["period"].unique()[1]]  # a gap: NaN in the arrays, a whisker
    for table in (trends, gappy):
        fig = figures.share_over_time(table, TITLES, "Q", changes, {"Outlet A": table})
        assert isinstance(fig, dict) and len(fig["data"]) > 4
        # the same traces built as graph objects from plain numbers and checked: plotly writes the same JSON
        written = json.loads(pio.to_json(fig, validate=False))
        assert written == json.loads(pio.to_json(go.Figure(decoded(fig))))
        assert any(isinstance(trace["y"], dict) for trace in written["data"])  # typed arrays, as plotly writes
        # and dates as plotly writes the column of datetimes a graph object was given, beside a text customdata
        # (which decides how plotly writes dates: to the microsecond)
        rows = figures._with_gaps(table[table["frame"] == "anti_sanctions"],
                                  figures._all_periods(pd.to_datetime(table["period"]), "Q"))
        line, = [t for t in written["data"] if t["name"] == "Anti-sanctions" and t["meta"] == "" and "error_y" in t]
        old_style = go.Scatter(x=pd.to_datetime(rows["period"]), customdata=np.array(line["customdata"]))
        checked = json.loads(pio.to_json(go.Figure(old_style)))["data"][0]["x"]
        assert line["x"] == checked and len(checked) == rows["period"].nunique()


def test_share_over_time_draws_a_panel_with_band_and_line_per_frame(trends):
    changes = pd.DataFrame({"version": ["v1", "v2"], "promoted_at": pd.to_datetime(["2019-01-01", "2023-05-10"])})
    fig = share_chart(trends, TITLES, "Q", changes)
    lines = [t for t in fig.data if t.mode == "lines+markers"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert [t.name for t in lines] == ["Peace talks", "Anti-sanctions"]  # the titles' order
    assert [t.yaxis for t in lines] == ["y", "y2"] and [t.yaxis for t in bands] == ["y", "y2"]
    assert len(bands) == 2 and all(not t.showlegend for t in bands)
    colours = figures.frame_colors(TITLES)
    assert [t.line.color for t in lines] == [colours["peace_talks"], colours["anti_sanctions"]]
    assert list(lines[1].y) == pytest.approx(trends.loc[trends.frame == "anti_sanctions", "adjusted_share"])
    assert list(bands[1].y) == pytest.approx([0.07, 0.12, 0.17, 0.14, 0.09, 0.04])  # high, then low reversed
    assert lines[0].customdata[0][0] == "peace_talks" and lines[0].customdata[0][1] == "2023-01-01"
    assert "quarter" in fig.layout.title.text
    notes = [a.text for a in fig.layout.annotations]
    assert notes[:2] == ["Peace talks", "Anti-sanctions"]  # panel titles
    for axis in (fig.layout.yaxis, fig.layout.yaxis2):
        assert axis.title.text == "Share of sentences (%)" and axis.tickformat == ".0%"
    assert fig.layout.xaxis2.title.text == "Quarter (first day)"
    assert len(fig.layout.shapes) == 1 and "model v2" in notes and "model v1" not in notes  # v1 predates the data


def test_small_shares_get_a_decimal_on_the_axis(trends):
    small = trends.assign(**{c: trends[c] / 10 for c in ("share", "adjusted_share", "share_low", "share_high")})
    assert share_chart(small, TITLES).layout.yaxis.tickformat == ".1%"


def test_volume_over_time_has_one_bar_per_period(trends):
    fig = figures.volume_over_time(trends, "Q")
    assert len(fig.data) == 1 and fig.data[0].type == "bar"
    assert list(fig.data[0].y) == [200, 201, 202]
    assert fig.layout.yaxis.title.text == "Sentences (count)"


def test_outlet_heatmap_is_normalised_per_outlet_and_ordered_by_volume(outlets):
    fig = figures.outlet_heatmap(outlets, TITLES)
    heat = fig.data[0]
    assert heat.type == "heatmap"
    assert list(heat.y) == ["Big Daily (5,000)", "Small Wire (100)"]
    assert "Peace talks" in heat.x[0] and "Anti-sanctions" in heat.x[1]
    assert np.asarray(heat.z).tolist() == [[0.1, 0.3], [0.1, 0.3]]
    assert fig.layout.xaxis.title.text == "Frame" and fig.layout.yaxis.title.text == "Outlet (sentences)"


def test_cooccurrence_is_the_share_of_the_row_frame(cooccurrence):
    fig = figures.cooccurrence_heatmap(cooccurrence, TITLES)
    z = np.asarray(fig.data[0].z, dtype=float)
    # rows/columns: peace_talks (20 sentences), anti_sanctions (40); 10 carry both
    assert np.isnan(z[0, 0]) and np.isnan(z[1, 1])
    assert z[0, 1] == pytest.approx(0.5) and z[1, 0] == pytest.approx(0.25)
    assert fig.data[0].text[0][0] == "20 sentences"
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text


@pytest.mark.parametrize("chart", [
    lambda: share_chart(pd.DataFrame(columns=["period", "frame"]), TITLES),
    lambda: figures.volume_over_time(pd.DataFrame(columns=["period"])),
    lambda: figures.outlet_heatmap(pd.DataFrame(columns=["outlet", "frame"]), TITLES),
    lambda: figures.cooccurrence_heatmap(pd.DataFrame(columns=["frame_a", "frame_b", "count"]), TITLES),
])
def test_empty_data_gives_an_empty_chart_with_a_message(chart):
    fig = chart()
    assert len(fig.data) == 0 and fig.layout.annotations[0].text.startswith("No ")


def test_page_is_self_contained_and_names_everything(data):
    page = dashboard_html(data)
    assert page.count("* plotly.js v") == 1  # the library inline, once
    assert not re.search(r"<script[^>]+src=", page)
    assert not re.search(r"<link[^>]+href=\"?https?:", page)
    for div in ("chart-share", "chart-volume", "chart-outlets", "chart-cooccurrence", "drilldown"):
        assert f'id="{div}"' in page
    for title in TITLES.values():
        assert f">{title}</option>" in page
    assert "33 articles, 603 sentences" in page and "2 undated articles left out of time charts" in page
    assert "2 article(s) in languages the model cannot read left unclassified: ru 2" in page
    assert "v2, macro-F1 0.731 on real text" in page and "v1 (2019-01-01) \u2192 v2 (2023-05-10)" in page and "2024-01-01 09:05 UTC (completed)" in page
    assert "&lt;script&gt;bad&lt;/script&gt;" in page and "<script>bad" not in page
    assert 'data-frame="peace_talks" data-period="2023-04-01" data-published="2023-05-02" data-outlet="Big Daily"' in page
    assert '<option value="2023-04-01">2023 Q2</option>' in page and '<option value="undated">' in page
    assert '<a href="https://example.org/t"' in page


def test_the_page_drawn_on_a_helper_is_the_page_drawn_here(data):
    """A run hands the drawing to its idle helper (rhetoric.dashboard.write_dashboard): the same page, to the
    byte, as this process draws; and with no helper, this process draws it."""
    from rhetoric import parallel
    from rhetoric.charts import draw_template
    from rhetoric.charts.page import dashboard_template

    here = dashboard_template(data)
    assert parallel.aside(draw_template, data).thread is None  # no helper: drawn here when asked
    parallel.start(1, warm="rhetoric.prepare:warm")
    try:
        helper = parallel._helpers[0]
        there = parallel.aside(draw_template, data)
        assert there.thread is not None  # handed over
        there.thread.join()
        assert there.value is not parallel._FAILED  # drawn there, not here on the helper's failure
        drawn = there.result()
        assert helper.alive()
    finally:
        parallel.shutdown()
    assert (drawn.before, drawn.after) == (here.before, here.after)


def test_an_empty_store_gives_a_page_that_says_so(tmp_path):
    from rhetoric.store import Store
    from rhetoric.trends import dashboard_data

    store = Store(f"sqlite:///{tmp_path / 'empty.db'}")
    store.create_schema()
    page = dashboard_html(dashboard_data(store, TITLES, None, []))
    assert page.count("No dated articles with predictions yet") >= 2
    assert "0 articles, 0 sentences" in page and ">Peace talks</option>" in page


def test_trust_panel_lists_rates_sources_and_warns_without_an_audit(data):
    from dataclasses import replace

    evidence = {"peace_talks": {"tpr": 0.74, "fpr": 0.009, "positives": 134.0, "negatives": 3383.0,
                                "reviewed": 5618, "from": "eval"},
                "anti_sanctions": {"tpr": 0.61, "fpr": 0.001, "positives": 30.0, "negatives": 270.0,
                                   "reviewed": 300, "from": "audit"}}
    page = dashboard_html(replace(data, evidence=evidence))
    assert 'id="trust-table"' in page and "real-text evaluation split (other text)" in page
    assert "an audit of this corpus" in page and "5,618" in page and "0.009" in page
    assert 'id="no-audit"' in page and "run <code>rhetoric label audit</code>" in page
    audited = {f: {**e, "from": "audit"} for f, e in evidence.items()}
    assert 'id="no-audit"' not in dashboard_html(replace(data, evidence=audited))


def test_periods_without_articles_break_the_line_and_the_band(trends):
    gappy = trends[trends["period"] != trends["period"].unique()[1]]  # the middle quarter has no articles
    fig = share_chart(gappy, TITLES, "Q")
    line = next(t for t in fig.data if t.mode == "lines+markers" and t.name == "Anti-sanctions")
    assert len(line.y) == 3 and np.isnan(line.y[1]) and line.connectgaps is False
    bands = [t for t in fig.data if t.fill == "toself" and t.name.startswith("Anti-sanctions")]
    assert len(bands) == 2  # one polygon per run of periods with data
    assert all(t.mode == "lines" for t in fig.data if t.fill == "toself")  # no stray markers on band edges


def test_volume_bars_are_a_period_wide_and_sit_on_the_points(trends):
    fig = figures.volume_over_time(trends, "M")
    assert fig.data[0].width == pytest.approx(0.8 * 31 * 86_400_000)
    assert list(pd.to_datetime(fig.data[0].x)) == list(pd.to_datetime(sorted(trends["period"].unique())))


def test_model_changes_never_stretch_the_axis_and_one_per_period(trends):
    changes = pd.DataFrame({"version": ["v2", "v3", "v4", "v5"],
                            "promoted_at": pd.to_datetime(["2023-05-10", "2023-05-20", "2023-06-01", "2031-01-01"])})
    fig = share_chart(trends, TITLES, "Q", changes)
    notes = [a.text for a in fig.layout.annotations]
    assert "model v3" not in notes and "model v4" in notes  # v2 and v3 share 2023-Q2 with v4: the last is drawn
    assert "model v5" not in notes  # years after the data: not drawn, the axis is not stretched


def test_drilldown_strength_ranks_saturated_scores(data):
    from dataclasses import replace

    rows = data.sentences.assign(score=[0.99999, 0.9999, 0.5])
    page = dashboard_html(replace(data, sentences=rows))
    assert "+11.5" in page and "+9.2" in page and "+0.0" in page


def test_a_period_between_gaps_shows_its_band_as_a_whisker(trends):
    lonely = trends[trends["period"] != trends["period"].unique()[1]]
    fig = share_chart(lonely, TITLES, "Q")
    line = next(t for t in fig.data if t.mode == "lines+markers" and t.name == "Anti-sanctions")
    assert line.error_y.visible
    assert line.error_y.array[0] == pytest.approx(0.02) and line.error_y.arrayminus[2] == pytest.approx(0.01)
