"""One function per chart: a DataFrame in, a plotly Figure out. Palette and template live here only.

Every chart draws aggregates (periods, outlets, frame pairs), never one point per sentence.
"""

from __future__ import annotations

import base64
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# Okabe-Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8C564B", "#000000")
HEAT_SCALE = "Blues"
TEMPLATE = go.layout.Template(layout=go.Layout(
    font={"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 13, "color": "#222"},
    title={"font": {"size": 17}, "x": 0.01, "xanchor": "left"},
    paper_bgcolor="white", plot_bgcolor="white",
    xaxis={"showgrid": True, "gridcolor": "#e6e6e6", "linecolor": "#555", "ticks": "outside", "zeroline": False,
           "automargin": True},
    yaxis={"showgrid": True, "gridcolor": "#e6e6e6", "linecolor": "#555", "ticks": "outside", "zeroline": False,
           "automargin": True},
    legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
    margin={"l": 80, "r": 30, "t": 90, "b": 70},
    hoverlabel={"bgcolor": "white", "font": {"size": 13}},
))
FREQ_WORDS = {"W": "week", "M": "month", "Q": "quarter", "Y": "year"}


def frame_colors(frames: Iterable[str]) -> dict[str, str]:
    """The one colour of each frame, by display order."""
    return {frame: PALETTE[i % len(PALETTE)] for i, frame in enumerate(frames)}


def frame_title(frame: str, titles: Mapping[str, str]) -> str:
    """A frame's name in words."""
    return titles.get(frame) or frame.replace("_", " ").capitalize()


def _rgba(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def _ordered_frames(present: Iterable[str], titles: Mapping[str, str]) -> list[str]:
    present = set(present)
    return [f for f in titles if f in present] + sorted(present - set(titles))


def _coloured_tick(frame: str, titles: Mapping[str, str], colours: Mapping[str, str]) -> str:
    return f"<span style='color:{colours.get(frame, '#222')}'><b>{frame_title(frame, titles)}</b></span>"


def _empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                       font={"size": 15, "color": "#777"})
    return fig


def share_over_time(trends: pd.DataFrame, titles: Mapping[str, str], freq: str = "M",
                    model_changes: pd.DataFrame | None = None,
                    by_outlet: Mapping[str, pd.DataFrame] | None = None) -> go.Figure | dict:
    """Small multiples, one panel per frame: adjusted share per period, its 90% band, model changes.

    by_outlet adds, hidden, the same traces for each outlet or outlet group (trace meta = its
    name; the corpus's own traces have meta ""), which the page's outlet selector shows instead.

    With data, the figure comes as plotly's plain dict (its layout built and checked by plotly,
    its traces written as dicts): checking each of a corpus's 72 or more traces as a graph
    object took most of the dashboard's drawing (0.23-0.34 s of 0.30-0.36 s for the 10k
    corpus). go.Figure(result) checks every trace, as the tests do.
    """
    word = FREQ_WORDS.get(freq, "period")
    title = {"text": f"Frame share per {word}: adjusted estimate with 90% band"}
    if trends.empty:
        return _empty(go.Figure(layout={"template": TEMPLATE, "title": title, "height": 400,
                                        "xaxis": {"title": {"text": f"{word.capitalize()} (first day)"}},
                                        "yaxis": {"title": {"text": "Share of sentences (%)"}}}),
                      "No dated articles with predictions yet")
    frames = _ordered_frames(trends["frame"], titles)
    fig = make_subplots(rows=len(frames), cols=1, shared_xaxes=True, vertical_spacing=0.25 / len(frames),
                        subplot_titles=[frame_title(f, titles) for f in frames])
    fig.update_layout(template=TEMPLATE, title=title, height=150 + 200 * len(frames), hovermode="closest",
                      showlegend=False)
    colours = frame_colors(titles)
    every_period = _all_periods(pd.to_datetime(trends["period"]), freq)
    choices = {"": trends, **(by_outlet or {})}
    traces: list[dict] = []
    for row, frame in enumerate(frames, start=1):
        colour = colours.get(frame, PALETTE[-1])
        axes = {"xaxis": f"x{row if row > 1 else ''}", "yaxis": f"y{row if row > 1 else ''}"}  # make_subplots' names
        for choice, table in choices.items():
            rows = _with_gaps(table[table["frame"] == frame], every_period)
            for trace in _share_traces(rows, frame, frame_title(frame, titles), colour, word):
                traces.append(_checked_order({**trace, **axes, "meta": choice, "visible": choice == ""}))
        rows = _with_gaps(trends[trends["frame"] == frame], every_period)
        top = float(np.nan_to_num(max(t.loc[t["frame"] == frame, "share_high"].max() for t in choices.values())))
        fig.update_yaxes(title_text="Share of sentences (%)", range=[0, max(top * 1.08, 0.01)], row=row, col=1,
                         tickformat=".1%" if top < 0.05 else ".0%")
        fig.layout.annotations[row - 1].font = {"color": colour, "size": 15}
    fig.update_xaxes(title_text=f"{word.capitalize()} (first day)", row=len(frames), col=1)
    _mark_model_changes(fig, model_changes, pd.to_datetime(trends["period"]), freq)
    return {"data": traces, "layout": fig.to_dict()["layout"]}


def _all_periods(periods: pd.Series, freq: str) -> pd.DatetimeIndex:
    """Every period start from the first to the last, so that periods without articles show as gaps."""
    if periods.empty:
        return pd.DatetimeIndex([])
    step = {"W": "W-MON", "M": "MS", "Q": "QS", "Y": "YS"}.get(freq, "MS")
    return pd.date_range(periods.min(), periods.max(), freq=step).union(pd.DatetimeIndex(periods.unique()))


def _with_gaps(rows: pd.DataFrame, every_period: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per period, empty (NaN) where the period has no articles: lines break there."""
    rows = rows.assign(period=pd.to_datetime(rows["period"])).set_index("period")
    out = rows.reindex(every_period)
    out.index.name = "period"
    out = out.reset_index()
    out["period"] = out["period"].dt.strftime("%Y-%m-%d")
    return out


def _segments(defined: np.ndarray) -> list[np.ndarray]:
    """Index runs where defined is true."""
    runs, current = [], []
    for i, ok in enumerate(defined):
        if ok:
            current.append(i)
        elif current:
            runs.append(np.array(current))
            current = []
    if current:
        runs.append(np.array(current))
    return runs


def _share_traces(rows: pd.DataFrame, frame: str, name: str, colour: str, word: str) -> list[dict]:
    """The band (one area per run of periods with data) and the line of one frame, as plotly trace dicts."""
    x = pd.to_datetime(rows["period"])
    bands = []
    runs = _segments(rows["adjusted_share"].notna().to_numpy())
    # a period between two gaps has no neighbour to draw a band to: its band is a whisker instead
    alone = np.zeros(len(rows), dtype=bool)
    for run in runs:
        if len(run) == 1:
            alone[run] = True
    for run in runs:
        xs, high, low = x.iloc[run], rows["share_high"].iloc[run], rows["share_low"].iloc[run]
        # mode "lines" with no width: the default for short traces adds markers in the next palette colour
        bands.append({
            "type": "scatter", "x": _dates(pd.concat([xs, xs[::-1]])), "y": _numbers(pd.concat([high, low[::-1]])),
            "mode": "lines", "fill": "toself", "fillcolor": _rgba(colour, 0.22), "line": {"width": 0, "color": colour},
            "hoverinfo": "skip", "legendgroup": frame, "showlegend": False, "name": f"{name} (90% band)"})
    custom = np.column_stack([np.full(len(rows), frame), rows["period"], rows["count"], rows["sentences"],
                              rows["articles"], rows["share"], rows["share_low"], rows["share_high"]])
    above = np.where(alone, rows["share_high"] - rows["adjusted_share"], np.nan)
    below = np.where(alone, rows["adjusted_share"] - rows["share_low"], np.nan)
    line = {
        "type": "scatter", "x": _dates(x), "y": _numbers(rows["adjusted_share"]), "mode": "lines+markers",
        "name": name, "legendgroup": frame, "connectgaps": False,
        "error_y": {"type": "data", "array": _numbers(above), "arrayminus": _numbers(below),
                    "visible": bool(alone.any()), "color": _rgba(colour, 0.6), "thickness": 6, "width": 0},
        "line": {"color": colour, "width": 2}, "marker": {"size": 6}, "customdata": custom.tolist(),
        "hovertemplate": (f"<b>{name}</b><br>{word.capitalize()} from %{{customdata[1]}}<br>"
                          "Adjusted share: %{y:.1%} (90% band %{customdata[6]:.1%}-%{customdata[7]:.1%})<br>"
                          "Labelled: %{customdata[2]:,} of %{customdata[3]:,} sentences (raw %{customdata[5]:.1%})<br>"
                          "Articles: %{customdata[4]:,}<br><i>Click for the sentences</i><extra></extra>")}
    return [*bands, line]


_PLACED_LAST = ("type", "xaxis", "yaxis")


def _checked_order(trace: dict) -> dict:
    """The trace's keys in the order plotly wrote the checked traces' (by name, then the type and the axes that
    add_trace set; nested properties by name): the 10k corpus's page came out the same, byte for byte."""
    ordered = {key: _by_name(trace[key]) for key in sorted(trace) if key not in _PLACED_LAST}
    ordered.update((key, trace[key]) for key in _PLACED_LAST if key in trace)
    return ordered


def _by_name(value):
    if isinstance(value, dict) and "bdata" not in value:  # a typed array keeps plotly's own order
        return {key: _by_name(value[key]) for key in sorted(value)}
    return value


def _dates(values) -> list[str]:
    """Datetimes as plotly wrote the checked traces' (their customdata is text, which makes plotly write dates in
    ISO text to the microsecond): the page is the same as before, byte for byte."""
    return np.datetime_as_string(pd.to_datetime(values).to_numpy(dtype="datetime64[us]"), unit="us").tolist()


def _numbers(values) -> dict:
    """Numbers (NaN for a gap) as plotly writes a checked trace's: plotly.js's typed-array form, little-endian
    float64 in base64."""
    data = np.ascontiguousarray(np.asarray(values, dtype="<f8"))
    return {"dtype": "f8", "bdata": base64.b64encode(data.tobytes()).decode("ascii")}


PERIOD_DAYS = {"W": 7, "M": 31, "Q": 92, "Y": 366}


def _mark_model_changes(fig: go.Figure, changes: pd.DataFrame | None, periods: pd.Series, freq: str = "M") -> None:
    """Dashed lines where a new champion took over, only inside the span of the data (never stretching the
    axis past it); when several fall in one period only the last is drawn, so labels do not pile up."""
    if changes is None or changes.empty:
        return
    first, last = periods.min(), periods.max() + pd.Timedelta(days=PERIOD_DAYS.get(freq, 31))
    inside = changes.assign(when=pd.to_datetime(changes["promoted_at"]))
    inside = inside[(inside["when"] >= first) & (inside["when"] <= last)]
    if inside.empty:
        return
    inside = inside.assign(slot=period_slot(inside["when"], freq)).drop_duplicates("slot", keep="last")
    for change in inside.itertuples():
        when = change.when
        fig.add_shape(type="line", x0=when, x1=when, y0=0, y1=1, xref="x", yref="paper",
                      line={"color": "#555", "width": 1, "dash": "dash"})
        fig.add_annotation(x=when, y=1, xref="x", yref="paper", yanchor="top", xanchor="left", showarrow=False,
                           text=f"model {change.version}", font={"size": 11, "color": "#555"})


def period_slot(when: pd.Series, freq: str) -> pd.Series:
    """The period each moment falls in, as a sortable key."""
    return pd.to_datetime(when).dt.to_period({"W": "W", "M": "M", "Q": "Q", "Y": "Y"}.get(freq, "M")).astype(str)


def volume_over_time(trends: pd.DataFrame, freq: str = "M") -> go.Figure:
    """Sentences per period (articles in the hover): how much each point of the share chart rests on."""
    word = FREQ_WORDS.get(freq, "period")
    fig = go.Figure(layout={"template": TEMPLATE, "height": 300,
                            "title": {"text": f"Corpus volume per {word}"},
                            "xaxis": {"title": {"text": f"{word.capitalize()} (first day)"}},
                            "yaxis": {"title": {"text": "Sentences (count)"}, "rangemode": "tozero"}})
    if trends.empty:
        return _empty(fig, "No dated articles with predictions yet")
    volume = trends.drop_duplicates("period").sort_values("period")
    # bars as wide as 80% of a period and centred on its first day, where the share chart's points sit
    width = 0.8 * PERIOD_DAYS.get(freq, 31) * 86_400_000
    fig.add_trace(go.Bar(
        x=pd.to_datetime(volume["period"]), y=volume["sentences"], name="Sentences", width=width,
        marker={"color": "#9a9a9a"}, customdata=np.column_stack([volume["period"], volume["articles"]]),
        hovertemplate=(f"{word.capitalize()} from %{{customdata[0]}}<br>Sentences: %{{y:,}}<br>"
                       "Articles: %{customdata[1]:,}<extra></extra>")))
    return fig


def outlet_heatmap(outlets: pd.DataFrame, titles: Mapping[str, str]) -> go.Figure:
    """Outlet x frame: each frame's adjusted share of that outlet's own sentences."""
    fig = go.Figure(layout={"template": TEMPLATE,
                            "title": {"text": "Frame share by outlet (share of each outlet's own sentences)"},
                            "xaxis": {"title": {"text": "Frame"}, "side": "bottom", "showgrid": False},
                            "yaxis": {"title": {"text": "Outlet (sentences)"}, "autorange": "reversed",
                                      "showgrid": False}})
    if outlets.empty:
        return _empty(fig, "No predictions yet")
    frames = _ordered_frames(outlets["frame"], titles)
    colours = frame_colors(titles)
    order = outlets.drop_duplicates("outlet").sort_values("sentences", ascending=False)
    grid = {col: outlets.pivot(index="outlet", columns="frame", values=col).reindex(
        index=order["outlet"], columns=frames) for col in
        ("adjusted_share", "share_low", "share_high", "count", "sentences")}
    z = grid["adjusted_share"].to_numpy(float)
    custom = np.dstack([grid[c].to_numpy(float) for c in ("share_low", "share_high", "count", "sentences")])
    labels = [f"{o} ({int(n):,})" for o, n in zip(order["outlet"], order["sentences"])]
    fig.add_trace(go.Heatmap(
        z=z, x=[_coloured_tick(f, titles, colours) for f in frames], y=labels, customdata=custom,
        colorscale=HEAT_SCALE, zmin=0, colorbar={"title": {"text": "Share (%)"}, "tickformat": ".0%"},
        text=[[f"{v:.1%}" if np.isfinite(v) else "" for v in row] for row in z], texttemplate="%{text}",
        hovertemplate=("%{y}<br>%{x}<br>Adjusted share: %{z:.1%} (90% band %{customdata[0]:.1%}"
                       "-%{customdata[1]:.1%})<br>Labelled: %{customdata[2]:,} of %{customdata[3]:,} "
                       "sentences<extra></extra>")))
    fig.update_layout(height=max(260, 120 + 38 * len(labels)))
    return fig


def cooccurrence_heatmap(cooccurrence: pd.DataFrame, titles: Mapping[str, str]) -> go.Figure:
    """Of the sentences carrying the row frame, the share that also carry the column frame."""
    fig = go.Figure(layout={"template": TEMPLATE,
                            "title": {"text": "Frame co-occurrence: share of the row frame's sentences "
                                              "that also carry the column frame"},
                            "xaxis": {"title": {"text": "Also carries (frame)"}, "showgrid": False},
                            "yaxis": {"title": {"text": "Sentences carrying (frame)"}, "autorange": "reversed",
                                      "showgrid": False}})
    if cooccurrence.empty:
        return _empty(fig, "No labelled sentences yet")
    frames = _ordered_frames(pd.concat([cooccurrence["frame_a"], cooccurrence["frame_b"]]), titles)
    both = pd.DataFrame(0.0, index=frames, columns=frames)
    for row in cooccurrence.itertuples():
        both.loc[row.frame_a, row.frame_b] = both.loc[row.frame_b, row.frame_a] = row.count
    own = np.diag(both.to_numpy())
    with np.errstate(invalid="ignore", divide="ignore"):
        z = both.to_numpy() / own[:, None]
    np.fill_diagonal(z, np.nan)
    colours = frame_colors(titles)
    ticks = [_coloured_tick(f, titles, colours) for f in frames]
    text = [[f"{int(own[i]):,} sentences" if i == j else f"{both.iat[i, j]:,.0f} ({z[i, j]:.0%})"
             for j in range(len(frames))] for i in range(len(frames))]
    fig.add_trace(go.Heatmap(
        z=z, x=ticks, y=ticks, text=text, texttemplate="%{text}", colorscale=HEAT_SCALE, zmin=0,
        hoverongaps=False,
        customdata=np.repeat(own[:, None], len(frames), axis=1),
        colorbar={"title": {"text": "Share (%)"}, "tickformat": ".0%"},
        hovertemplate=("%{y}: %{customdata:,} sentences<br>also carrying %{x}: %{text}"
                       "<extra></extra>")))
    fig.update_layout(height=max(320, 160 + 60 * len(frames)))
    return fig
