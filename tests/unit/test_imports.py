"""Start-up: importing the run's flow, or the CLI, loads only what every run needs (issue 12).

Each import runs in a fresh interpreter, as `rhetoric run` starts one: in this process other tests
have imported everything already.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# loaded where they are used: the dashboard (plotly, scipy.stats), loading or training a model (scikit-learn,
# joblib, scipy), HTML pages (trafilatura, lxml) and feeds (feedparser)
ON_USE = ("plotly", "scipy", "sklearn", "joblib", "trafilatura", "lxml", "feedparser")


def modules_after(statement: str) -> set[str]:
    """Every module a fresh interpreter holds after running the statement."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    return set(json.loads(result.stdout.splitlines()[-1]))


def loaded_after(statement: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running the statement."""
    return {m.split(".")[0] for m in modules_after(statement)}


@pytest.mark.parametrize("module", ["flows.pipeline", "rhetoric.pipeline", "rhetoric.registry"])
def test_importing_the_run_loads_no_package_used_later(module):
    loaded = loaded_after(f"import {module}")
    assert module.split(".")[0] in loaded
    assert sorted(loaded & set(ON_USE)) == []


def test_the_cli_loads_neither_prefect_nor_the_data_stack_before_a_command_needs_them():
    loaded = loaded_after("import rhetoric.cli")
    assert "rhetoric" in loaded
    assert sorted(loaded & {*ON_USE, "prefect", "pandas", "numpy", "sqlalchemy"}) == []


def test_the_dashboard_still_finds_what_it_imports_on_use():
    loaded = loaded_after("from rhetoric.charts.page import dashboard_html\nfrom rhetoric.trends import exact_band\n"
                          "exact_band([1], [10])")
    assert {"plotly", "scipy"} <= loaded


def test_the_dashboard_and_scoring_with_the_shipped_champion_leave_scipy_stats_and_scikit_learn_unloaded():
    # scipy.stats alone takes 0.4-0.6 s to import, scikit-learn more: neither the intervals nor the champion's
    # scorer.npz need them, nor joblib
    modules = modules_after("from rhetoric.charts.page import dashboard_html\nfrom rhetoric.trends import exact_band\n"
                            "from rhetoric.registry import Registry\nexact_band([1], [10])\n"
                            f"Registry({str(ROOT / 'models')!r}).champion().predict(['Sanctions are illegal.'])")
    assert "rhetoric.scorer" in modules
    assert sorted(m for m in modules if m.split(".")[0] in ("sklearn", "joblib") or m.startswith("scipy.stats")) == []


def test_refilling_a_kept_dashboard_template_draws_nothing():
    loaded = loaded_after("from rhetoric.charts.template import PageTemplate, fill_last_run\n"
                          "fill_last_run(PageTemplate('<dd>', '</dd>'), {'status': 'writing', 'started': '2026-11-29'})")
    assert "rhetoric" in loaded and sorted(loaded & set(ON_USE)) == []


def test_a_helper_preparing_a_chunk_loads_no_database_or_data_frame_library():
    # helpers (rhetoric.parallel) import the function they run: the first chunk waits for them to be ready
    loaded = loaded_after("import rhetoric.prepare")
    assert "rhetoric" in loaded
    assert sorted(loaded & {*ON_USE, "pandas", "sqlalchemy", "prefect"}) == []


def test_a_helper_drawing_the_dashboard_loads_no_database_library(tmp_path):
    """A run hands the dashboard's data to its helper to draw (rhetoric.charts.draw_template): the data is plain
    (the last run's row without SQLAlchemy's key type), so unpickling it there imports no SQLAlchemy (0.13 s)."""
    import pickle

    from rhetoric.store import Store
    from rhetoric.trends import dashboard_data

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.create_schema()
    store.start_run("run-1")
    data = dashboard_data(store, {"anti_sanctions": "Anti-sanctions"}, None, [])
    assert data.summary["last_run"]["run_id"] == "run-1"
    (tmp_path / "data.pkl").write_bytes(pickle.dumps(data))
    loaded = loaded_after("import pickle\nfrom rhetoric.prepare import warm\nfrom rhetoric.charts import draw_template\n"
                          f"warm()\ndraw_template(pickle.loads(open({str(tmp_path / 'data.pkl')!r}, 'rb').read()))")
    assert "plotly" in loaded and "sqlalchemy" not in loaded
