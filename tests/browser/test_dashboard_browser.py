"""Render the dashboard from a real store in headless Chromium: the plots draw and every frame is named."""

import os
import re
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from rhetoric.charts.page import dashboard_html
from rhetoric.store import NewArticle, Store
from rhetoric.trends import dashboard_data

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--hide-scrollbars", "--virtual-time-budget=15000"]
TITLES = {"multipolarity": "Multipolarity", "anti_sanctions": "Anti-sanctions",
          "peace_talks": "Peace talks", "anti_hegemony": "Anti-hegemony"}
CHARTS = ("chart-share", "chart-volume", "chart-outlets", "chart-cooccurrence")

pytestmark = [
    pytest.mark.browser,
    # CI installs Chromium and sets RHETORIC_REQUIRE_BROWSER, so there a missing browser fails, never skips
    pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("RHETORIC_REQUIRE_BROWSER"),
                       reason="needs /usr/bin/chromium (apt-get install -y chromium)"),
]


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """index.html built through the store: 3 outlets over three years, one undated article."""
    folder = tmp_path_factory.mktemp("dashboard")
    store = Store(f"sqlite:///{folder / 'rhetoric.db'}")
    store.create_schema()
    batch = [NewArticle(f"h{i}", [f"Sentence {j} of story {i} <b>quoted</b>." for j in range(6)],
                        f"story{i}.html", title=f"Story {i}", outlet=("Wire", "Daily", "Weekly")[i % 3],
                        published=date(2021, 1, 4) + timedelta(days=23 * i), url=f"https://example.org/{i}")
             for i in range(48)]
    batch.append(NewArticle("undated", ["No date here."], "undated.html", outlet="Daily"))
    store.add_articles(batch, run_id="run-1")
    store.start_run("run-1", "v1")
    store.finish_run("run-1", "completed", {"articles_new": len(batch)})
    ids = store.sentence_texts().sort_values("sentence_id")["sentence_id"].tolist()
    frames = list(TITLES)
    labels = [[int((s + k) % (k + 3) == 0) for k in range(len(frames))] for s in ids]
    scores = [[0.9 if flag else 0.1 for flag in row] for row in labels]
    store.write_predictions(ids, frames, labels, scores, "v1")
    meta = {"version": "v1", "metrics": {"eval": {"macro_f1": 0.74}},
            "rates": {f: {"tpr": 0.8, "fpr": 0.05} for f in frames}}
    history = [{"version": "v1", "promoted_at": "2022-03-01T12:00:00+00:00", "macro_f1": 0.74}]
    path = folder / "index.html"
    data = dashboard_data(store, TITLES, meta, history, outlet_groups=(("Papers", ("Daily", "Weekly")),))
    path.write_text(dashboard_html(data), encoding="utf-8")
    return path


def chromium(*args: str) -> str:
    done = subprocess.run([str(CHROMIUM), *FLAGS, *args], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_dashboard_draws_offline_and_names_every_frame(page):
    dom = chromium("--dump-dom", page.as_uri())
    for chart in CHARTS:
        tag = re.search(rf'<div[^>]*id="{chart}"[^>]*>', dom)
        assert tag and "js-plotly-plot" in tag.group(0), f"{chart} was not drawn"
    assert dom.count('class="main-svg"') >= 2 * len(CHARTS)
    assert "js-line" in dom  # the share lines have paths
    drawn_text = set(re.findall(r'data-unformatted="([^"]+)"', dom))  # text plotly put in its SVG
    for title in TITLES.values():
        assert title in drawn_text  # the share chart's panel titles
        assert sum(title in text for text in drawn_text) >= 2  # ... and the heatmaps' coloured ticks
        assert f">{title}</option>" in dom and f"</i>{title}</span>" in dom  # drill-down select, header chips
    assert "undated article left out of time charts" in dom
    assert re.search(r'id="drill-count"[^>]*>\d+ sentences?, highest score first<', dom)  # the filter script ran


def test_screenshot_of_the_dashboard(page):
    shot = page.with_name("dashboard.png")
    chromium("--window-size=1300,3200", f"--screenshot={shot}", page.as_uri())
    assert shot.stat().st_size > 50_000  # a rendered page, not a blank one


def drill_count(dom: str) -> int:
    found = re.search(r'id="drill-count"[^>]*>(\d+) sentences?, highest score first<', dom)
    return int(found.group(1)) if found else 0


def test_search_outlet_and_dates_change_what_is_shown(page):
    everything = drill_count(chromium("--dump-dom", page.as_uri()))
    assert everything > 0
    searched = chromium("--dump-dom", page.as_uri() + "#q=story%203")
    assert 0 < drill_count(searched) < everything
    assert all("story 3" in row.lower() for row in re.findall(r"<tr data-frame[^>]*data-period[^>]*>(?:(?!</tr>).)*</tr>", searched)
               if "hidden" not in row.split(">")[0])
    wire = chromium("--dump-dom", page.as_uri() + "#outlet=Wire")
    assert 0 < drill_count(wire) < everything
    assert "--outlet Wire" in re.search(r'id="drill-command">([^<]*)<', wire).group(1)
    dated = chromium("--dump-dom", page.as_uri() + "#from=2021-01-01&to=2021-06-30")
    assert 0 < drill_count(dated) < everything
    assert "--period 2021-01-01..2021-06-30" in dated


def test_the_outlet_selector_offers_outlets_and_groups(page):
    dom = chromium("--dump-dom", page.as_uri())
    options = re.search(r'<select id="trend-outlet">(.*?)</select>', dom).group(1)
    assert ">Papers (group)<" in options and ">Wire<" in options and ">All outlets<" in options


def test_a_real_click_on_a_point_filters_the_drill_down(page, tmp_path):
    """Drive Chromium over the DevTools protocol: a mouse click on a share-chart point selects its period."""
    import json
    import socket
    import time
    import urllib.request

    from websockets.sync.client import connect

    with socket.socket() as probe:  # a free port on loopback for the DevTools endpoint
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    browser = subprocess.Popen([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                                "--disable-background-networking", "--no-first-run", f"--remote-debugging-port={port}",
                                f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1300,1400", page.as_uri()],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, target = time.time() + 60, None
        while target is None and time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as answer:
                    target = next((t for t in json.load(answer)
                                   if t.get("type") == "page" and t.get("url", "").startswith("file:")), None)
            except OSError:
                time.sleep(0.3)
        assert target is not None, "Chromium's DevTools endpoint did not come up"
        with connect(target["webSocketDebuggerUrl"], max_size=None) as ws:
            counter = iter(range(1, 10_000))

            def call(method, **params):
                number = next(counter)
                ws.send(json.dumps({"id": number, "method": method, "params": params}))
                while True:
                    reply = json.loads(ws.recv(timeout=30))
                    if reply.get("id") == number:
                        return reply.get("result", {})

            def evaluate(expression):
                return call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

            ready = ("document.readyState === 'complete' && !!document.getElementById('drill-period') && "
                     "document.querySelectorAll('#chart-share .scatterlayer .points path').length > 1")
            while time.time() < deadline and not evaluate(ready):
                time.sleep(0.3)
            time.sleep(0.5)  # plotly binds its event handlers after drawing
            box = evaluate("""(function () {
                var point = document.querySelectorAll('#chart-share .scatterlayer .points path')[1];
                point.scrollIntoView({block: 'center'});
                var r = point.getBoundingClientRect();
                return {x: r.left + r.width / 2, y: r.top + r.height / 2};
            })()""")
            before = evaluate("document.getElementById('drill-period').value")
            for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
                call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)
            time.sleep(1.0)
            after = evaluate("document.getElementById('drill-period').value")
            shown = evaluate("document.getElementById('drill-count').textContent")
            visible = evaluate("Array.prototype.filter.call(document.querySelectorAll('#drill-table tbody tr'),"
                               " function (r) { return !r.hidden; }).map(function (r) { return r.dataset.period; })")
    finally:
        browser.terminate()
        browser.wait(timeout=30)
    assert before == "" and after != "", "the click did not select a period"
    assert visible and set(visible) == {after}
    assert shown.endswith("highest score first")
