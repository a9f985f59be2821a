"""Assemble the dashboard: one self-contained HTML string (plotly.js inline, once); the caller writes it."""

from __future__ import annotations

import html
import math
from datetime import date, datetime

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from rhetoric.charts import figures
from rhetoric.charts.template import LAST_RUN_MARK, PageTemplate, fill_last_run
from rhetoric.trends import DashboardData

_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
_MAX_OUTLETS_NAMED = 12

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#222;background:#f6f6f4}
main{max-width:1200px;margin:0 auto;padding:0 20px 40px}
header{background:#fff;border-bottom:1px solid #ddd;padding:18px 20px}
header .inner{max-width:1200px;margin:0 auto}
h1{margin:0 0 10px;font-size:24px}
h2{font-size:19px;margin:28px 0 8px}
.facts{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:8px 24px;margin:0}
.facts div{margin:0}.facts dt{font-size:12px;color:#666;text-transform:uppercase;letter-spacing:.04em}
.facts dd{margin:0;font-size:15px}
.chips{margin:12px 0 0;display:flex;flex-wrap:wrap;gap:8px}
.chip{display:inline-flex;align-items:center;gap:6px;font-size:14px}
.chip i{display:inline-block;width:14px;height:14px;border-radius:3px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;margin:10px 0}
.note{color:#555;font-size:14px;line-height:1.45;max-width:900px}
.warning{background:#fff4e5;border-left:4px solid #e8a33d;padding:8px 12px;font-size:14px;max-width:900px}
.controls{display:flex;flex-wrap:wrap;gap:14px;align-items:center;margin:8px 0}
.controls label{font-size:14px;color:#444}
select{font-size:14px;padding:3px}
table{border-collapse:collapse;width:100%;background:#fff;font-size:14px}
th,td{border-bottom:1px solid #e3e3e3;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f0f0ee;position:sticky;top:0}
.scroll{max-height:640px;overflow:auto;border:1px solid #ddd}
.controls label{margin-right:14px}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.text{max-width:620px}
"""

_DRILL_JS = """
(function () {
  var frameSel = document.getElementById('drill-frame');
  var periodSel = document.getElementById('drill-period');
  var outletSel = document.getElementById('drill-outlet');
  var search = document.getElementById('drill-search');
  var trendOutlet = document.getElementById('trend-outlet');
  var dateFrom = document.getElementById('date-from');
  var dateTo = document.getElementById('date-to');
  var shown = document.getElementById('drill-count');
  var command = document.getElementById('drill-command');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#drill-table tbody tr'));
  function quote(s) { return /^[A-Za-z0-9_.:-]+$/.test(s) ? s : '"' + s.replace(/"/g, '\\"') + '"'; }
  function apply() {
    var f = frameSel.value, p = periodSel.value, o = outletSel.value, n = 0;
    var q = (search.value || '').toLowerCase(), from = dateFrom.value, to = dateTo.value;
    rows.forEach(function (r) {
      var day = r.dataset.published;
      var ok = r.dataset.frame === f && (!p || r.dataset.period === p) && (!o || r.dataset.outlet === o)
        && (!q || r.textContent.toLowerCase().indexOf(q) >= 0)
        && (!from || (day && day >= from)) && (!to || (day && day <= to));
      r.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n ? n + (n === 1 ? ' sentence' : ' sentences') + ', highest score first'
                          : 'No stored top sentences for this selection.';
    var period = p && p !== 'undated' ? p : (from || to ? (from || '1900-01-01') + '..' + (to || '2999-12-31') : '');
    command.textContent = 'rhetoric label suggest --frame ' + quote(f) + (period ? ' --period ' + period : '')
      + (o ? ' --outlet ' + quote(o) : '') + ' -n 100 --out review.csv';
  }
  function showOutlet() {
    var chart = document.getElementById('chart-share');
    if (chart && chart.data && window.Plotly) {
      Plotly.restyle(chart, {visible: chart.data.map(function (t) { return (t.meta || '') === trendOutlet.value; })});
    }
    var single = Array.prototype.some.call(outletSel.options, function (opt) { return opt.value === trendOutlet.value; });
    outletSel.value = single ? trendOutlet.value : '';
    apply();
  }
  function showDates() {
    var range = [dateFrom.value || null, dateTo.value || null];
    ['chart-share', 'chart-volume'].forEach(function (id) {
      var chart = document.getElementById(id);
      if (!chart || !chart.layout || !window.Plotly) { return; }
      var update = {};
      Object.keys(chart.layout).filter(function (k) { return /^xaxis[0-9]*$/.test(k); }).forEach(function (k) {
        if (range[0] || range[1]) { update[k + '.range'] = range; } else { update[k + '.autorange'] = true; }
      });
      Plotly.relayout(chart, update);
    });
    apply();
  }
  [frameSel, periodSel, outletSel].forEach(function (s) { s.addEventListener('change', apply); });
  search.addEventListener('input', apply);
  trendOutlet.addEventListener('change', showOutlet);
  [dateFrom, dateTo].forEach(function (s) { s.addEventListener('change', showDates); });
  // a view can be shared as a link: #outlet=RT&from=2024-01-01&to=2024-06-30&q=sanctions&frame=peace_talks
  var state = {};
  (location.hash || '').replace(/^#/, '').split('&').forEach(function (kv) {
    var i = kv.indexOf('='); if (i > 0) { state[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1)); }
  });
  if (state.frame) { frameSel.value = state.frame; }
  if (state.period) { periodSel.value = state.period; }
  if (state.q) { search.value = state.q; }
  if (state.from) { dateFrom.value = state.from; }
  if (state.to) { dateTo.value = state.to; }
  if (state.outlet) { trendOutlet.value = state.outlet; }
  apply();
  window.addEventListener('load', function () {
    if (state.outlet) { showOutlet(); }
    if (state.from || state.to) { showDates(); }
    var chart = document.getElementById('chart-share');
    if (!chart || !chart.on) { return; }
    chart.on('plotly_click', function (ev) {
      var pt = ev.points && ev.points[0];
      if (!pt || !pt.customdata) { return; }
      frameSel.value = pt.customdata[0];
      periodSel.value = pt.customdata[1];
      apply();
      document.getElementById('drilldown').scrollIntoView({behavior: 'smooth'});
    });
  });
})();
"""


def dashboard_html(data: DashboardData) -> str:
    """The whole dashboard page as one HTML string that opens from file:// without a network."""
    return fill_last_run(dashboard_template(data), data.summary.get("last_run"))


def dashboard_template(data: DashboardData) -> PageTemplate:
    """The page cut where the last run is named: everything else on it depends only on the store's content,
    the model and the settings, so a run that changed none of them refills a kept template
    (rhetoric.dashboard.write_dashboard) instead of drawing the charts again."""
    charts = {
        "chart-share": figures.share_over_time(data.trends, data.frame_titles, data.freq, data.model_changes,
                                               data.outlet_trends),
        "chart-volume": figures.volume_over_time(data.trends, data.freq),
        "chart-outlets": figures.outlet_heatmap(data.outlets, data.frame_titles),
        "chart-cooccurrence": figures.cooccurrence_heatmap(data.cooccurrence, data.frame_titles),
    }
    div = {key: _figure_div(fig, key) for key, fig in charts.items()}
    word = figures.FREQ_WORDS.get(data.freq, "period")
    body = f"""
<header><div class="inner"><h1>Framing trends</h1>{_facts(data)}{_chips(data.frame_titles)}</div></header>
<main>
<section id="over-time"><h2>Which frames are rising, and since when</h2>
<p class="note">{_estimator_note(data)} Click a point to read that {word}'s sentences below.</p>
{_view_controls(data)}
<div class="card">{div['chart-share']}</div><div class="card">{div['chart-volume']}</div></section>
{_trust(data)}
<section id="outlets"><h2>In which outlets</h2>
<p class="note">Each row is one outlet, 100% being that outlet's own sentences, so large and small
outlets compare fairly. Outlets are ordered by volume.</p><div class="card">{div['chart-outlets']}</div></section>
<section id="cooccurrence"><h2>Which frames travel together</h2>
<p class="note">Rows read: of the sentences the model gives the row frame, this share also carries the
column frame (raw labels, not adjusted). The diagonal gives each frame's number of sentences.</p>
<div class="card">{div['chart-cooccurrence']}</div></section>
{_drilldown(data)}
</main>"""
    before, after = body.split(LAST_RUN_MARK, 1)
    return PageTemplate(
        before=(f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>rhetoric: framing trends</title><style>{_CSS}</style>"
                f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head>\n<body>{before}"),
        after=f"{after}\n<script>{_DRILL_JS}</script></body></html>\n")


def _figure_div(fig: go.Figure | dict, div_id: str) -> str:
    """The chart's div and script; a dict figure (figures.share_over_time) is written as it is, unchecked."""
    return pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id, config=_CONFIG,
                       validate=not isinstance(fig, dict))


def _facts(data: DashboardData) -> str:
    s, model = data.summary, data.model
    outlets = list(s.get("outlets") or [])
    named = ", ".join(outlets[:_MAX_OUTLETS_NAMED]) + (
        f" and {len(outlets) - _MAX_OUTLETS_NAMED} more" if len(outlets) > _MAX_OUTLETS_NAMED else "")
    span = f"{_day(s.get('first_published'))} to {_day(s.get('last_published'))}"
    undated = int(s.get("undated_articles") or 0)
    if undated:
        span += f" ({undated:,} undated article{'s' if undated != 1 else ''} left out of time charts)"
    readable = set(model.get("languages") or ["en"])
    other = {lang: n for lang, n in (s.get("languages") or {}).items() if lang and lang not in readable}
    if other:
        shown = ", ".join(f"{lang} {n:,}" for lang, n in sorted(other.items(), key=lambda kv: -kv[1]))
        span += (f" ({sum(other.values()):,} article(s) in languages the model cannot read left unclassified: "
                 f"{shown})")
    f1 = model.get("macro_f1")
    champion = (f"{model.get('version') or 'unknown'}, macro-F1 {f1:.3f} on "
                f"{model.get('evaluated_on', 'held-out text')}" if isinstance(f1, (int, float))
                else f"{model.get('version') or 'none'}")
    facts = [("Corpus", f"{int(s.get('articles') or 0):,} articles, {int(s.get('sentences') or 0):,} sentences"),
             ("Date span", span), (f"Outlets ({len(outlets)})", named or "none"),
             ("Last run", LAST_RUN_MARK), ("Champion model", champion),
             ("Periods", f"{figures.FREQ_WORDS.get(data.freq, data.freq)}s")]
    if len(data.model_changes):
        facts.append(("Champion history", " \u2192 ".join(
            f"{c.version} ({_day(c.promoted_at)})" for c in data.model_changes.itertuples())))
    items = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>" for k, v in facts)
    return f'<dl class="facts">{items}</dl>'


def _chips(titles: dict[str, str]) -> str:
    colours = figures.frame_colors(titles)
    chips = "".join(f'<span class="chip"><i style="background:{colours[f]}"></i>{html.escape(t)}</span>'
                    for f, t in titles.items())
    return f'<div class="chips" aria-label="frames">{chips}</div>'


def _estimator_note(data: DashboardData) -> str:
    if not data.model.get("adjusted"):
        return ("Each panel is one frame: the raw share of sentences the model labels with it (the champion "
                "records no error rates, so no correction is made) and a 90% band from a bootstrap over articles.")
    return ("Each panel is one frame: its share of sentences, corrected for the champion's measured "
            "true- and false-positive rates (adjusted classify-and-count; where each frame's rates come from is "
            "in the table below the charts), and a shaded 90% band from a "
            "bootstrap over articles. A wide band means a thin period: read the volume chart before "
            "trusting a jump. Where the band includes the uncertainty of the error rates, that part moves "
            "all periods together, so a steady rise can be real even when neighbouring bands overlap. "
            "Dashed lines mark when a new champion model took over.")


_SOURCE_WORDS = {
    "audit": "an audit of this corpus (labels/audit/)",
    "eval": "the real-text evaluation split (other text)",
    "cv": "cross-validation on the training labels (other text)",
}


def _view_controls(data: DashboardData) -> str:
    """The outlet (or outlet group) the share chart shows, and the date range of every time view."""
    outlets = [c for c in data.outlet_trends if not c.endswith(" (group)")]
    groups = [c for c in data.outlet_trends if c.endswith(" (group)")]
    options = '<option value="">All outlets</option>' + "".join(
        f'<option value="{html.escape(c)}">{html.escape(c)}</option>' for c in groups + outlets)
    return (f'<div class="controls" id="view-controls"><label>Outlet <select id="trend-outlet">{options}</select></label>'
            '<label>From <input type="date" id="date-from"></label><label>To <input type="date" id="date-to"></label>'
            '<span class="note">The outlet choice redraws the share chart with that outlet\'s (or group\'s) own '
            'estimates; the dates narrow the charts and the sentences below.</span></div>')


def _trust(data: DashboardData) -> str:
    """How far to trust the corrected shares: per frame, the rates in use, their source and what they rest on."""
    evidence = data.evidence or {}
    if not evidence:
        return ""
    rows = "".join(
        f'<tr data-frame="{html.escape(frame)}"><td>{html.escape(data.frame_titles.get(frame, frame))}</td>'
        f"<td>{e['tpr']:.2f}</td><td>{e['fpr']:.3f}</td><td>{html.escape(_SOURCE_WORDS.get(e['from'], e['from']))}</td>"
        + (f"<td>{int(e['reviewed']):,}</td></tr>" if e.get("reviewed") else "<td>not recorded</td></tr>")
        for frame, e in evidence.items())
    audited = [f for f, e in evidence.items() if e["from"] == "audit"]
    warning = "" if len(audited) == len(evidence) else (
        f'<p class="warning" id="no-audit">Rates measured on other text for '
        f"{html.escape(', '.join(data.frame_titles.get(f, f) for f in evidence if f not in audited))}: "
        "run <code>rhetoric label audit</code>, review the sample, save it under labels/audit/ and rebuild, so that "
        "the correction uses this corpus's own error rates.</p>")
    return f"""<section id="trust"><h2>How far to trust these shares</h2>
<p class="note">The correction divides out each frame's error rates: the share of sentences that carry the frame
and that the model flags (true-positive rate, TPR) and the share of those without it that it flags anyway
(false-positive rate, FPR). Rates measured on other text can be wrong for this corpus.</p>{warning}
<div class="scroll"><table id="trust-table"><thead><tr><th>Frame</th><th>TPR</th><th>FPR</th><th>Measured on</th>
<th>Reviewed sentences</th></tr></thead><tbody>{rows}</tbody></table></div></section>"""


def _drilldown(data: DashboardData) -> str:
    rows, titles = data.sentences, data.frame_titles
    periods = sorted((set(data.trends["period"]) | set(rows["period"])) - {""})
    frame_options = "".join(f'<option value="{html.escape(f)}">{html.escape(t)}</option>'
                            for f, t in titles.items())
    period_options = '<option value="">All periods</option>' + "".join(
        f'<option value="{p}">{html.escape(_period_label(p, data.freq))}</option>' for p in periods)
    if (rows["period"] == "").any():
        period_options += '<option value="undated">Undated</option>'
    outlet_options = '<option value="">All outlets</option>' + "".join(
        f'<option value="{html.escape(o)}">{html.escape(o)}</option>' for o in sorted(set(rows["outlet"].dropna())))
    body = "".join(_sentence_row(r) for r in rows.itertuples())
    return f"""<section id="drilldown"><h2>What exactly was said</h2>
<p class="note">The sentences the champion scores highest for a frame (up to 25 per period), with their
outlet, date, strength (the log-odds of the model's calibrated score, which still ranks sentences whose
probability rounds to 1.00) and article. Choose a frame and a period, or click a point on the share chart.</p>
<div class="controls"><label>Frame <select id="drill-frame">{frame_options}</select></label>
<label>Period <select id="drill-period">{period_options}</select></label>
<label>Outlet <select id="drill-outlet">{outlet_options}</select></label>
<label>Search <input type="search" id="drill-search" placeholder="words in the sentence"></label>
<span id="drill-count" class="note"></span></div>
<p class="note" id="drill-review">To review these sentences: <code id="drill-command"></code></p>
<div class="scroll"><table id="drill-table"><thead><tr><th>Date</th><th>Outlet</th><th title="log-odds of the calibrated score: probabilities near 1 all print as 1.00, log-odds still rank them">Strength</th><th>Sentence</th><th>Article</th>
</tr></thead><tbody>{body}</tbody></table></div></section>"""


def _sentence_row(row) -> str:
    title = html.escape(str(row.title or row.source or "article"))
    url = str(row.url or "")
    link = f'<a href="{html.escape(url)}" target="_blank" rel="noopener">{title}</a>' if url.startswith(
        ("http://", "https://")) else title
    outlet = "" if pd.isna(row.outlet) else str(row.outlet)
    return (f'<tr data-frame="{html.escape(row.frame)}" data-period="{row.period or "undated"}" '
            f'data-published="{row.published or ""}" '
            f'data-outlet="{html.escape(outlet)}"><td>{row.published or "undated"}</td>'
            f'<td>{html.escape(outlet)}</td><td class="num">{_log_odds(row.score):+.1f}</td>'
            f'<td class="text">{html.escape(str(row.text))}</td><td>{link}</td></tr>')


def _log_odds(score: float) -> float:
    """ln(p / (1 - p)), p clipped away from 0 and 1."""
    p = min(max(float(score), 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def _period_label(period: str, freq: str) -> str:
    start = pd.Timestamp(period)
    return {"W": f"Week of {period}", "M": start.strftime("%B %Y"),
            "Q": f"{start.year} Q{start.quarter}", "Y": str(start.year)}.get(freq, period)


def _day(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "unknown"
    return pd.Timestamp(value).strftime("%Y-%m-%d") if isinstance(value, (date, datetime, pd.Timestamp)) \
        else str(value)
