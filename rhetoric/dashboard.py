"""Writing the dashboard (outputs/index.html) from the store, atomically, and keeping its template so that
a run that found nothing new refills it instead of drawing every chart again."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from rhetoric import parallel
from rhetoric.config import Settings
from rhetoric.labels import FRAMES_FILE, load_frames
from rhetoric.locking import is_dead
from rhetoric.store import Store

if TYPE_CHECKING:
    from rhetoric.charts.template import PageTemplate


def write_dashboard(store: Store, settings: Settings, model_meta: dict | None, history: list[dict],
                    evidence: dict | None = None, run_id: str | None = None) -> Path:
    """Build the dashboard from the store and write it to OUT/index.html (atomically).

    run_id names the run writing the page, if any: only that run is "this page's run".
    A write that fails or is interrupted leaves no partial index.html.tmp behind.

    The page but its "Last run" fact is kept under the state folder with a key made of the
    store's content_token, the frames, model, champion history, error rates, outlet groups
    and the code that draws it. When the key matches (a run that found nothing new), that
    template is refilled with the last run in milliseconds instead of querying the store and
    drawing every chart again.
    """
    titles = frame_titles(settings, model_meta)
    key = _dashboard_key(store, titles, model_meta, history, evidence, settings.outlet_groups)
    template = _kept_template(settings, key)
    if template is None:
        # imported here: SciPy takes a good part of a second, and nothing before the dashboard needs it
        from rhetoric.charts import draw_template
        from rhetoric.trends import dashboard_data

        data = dashboard_data(store, titles, model_meta, history, evidence=evidence,
                              outlet_groups=settings.outlet_groups)
        # drawn by the run's helper when one is idle, as it is by the end of a run: it imported plotly while
        # it waited for its first slice, so the charts cost this process neither that nor their drawing
        template = parallel.aside(draw_template, data).result()
        _keep_template(settings, key, template)
    from rhetoric.charts.template import fill_last_run

    last_run = store.last_run()
    if last_run and last_run.get("status") == "running":
        last_run["status"] = live_status(store, last_run["run_id"], run_id)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    path = settings.out_dir / "index.html"
    tmp = partial_dashboard(settings, run_id)
    try:
        tmp.write_text(fill_last_run(template, last_run), encoding="utf-8")
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


TEMPLATE_FILE = "dashboard-template.html"


def _dashboard_key(store: Store, titles: dict, model_meta: dict | None, history: list[dict], evidence: dict | None,
                   outlet_groups) -> str:
    """What the page but its last run depends on, hashed (write_dashboard)."""
    import hashlib
    import json

    parts = [store.content_token(), titles, model_meta, history, evidence, outlet_groups, _drawing_code()]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@lru_cache(maxsize=1)
def _drawing_code() -> str:
    """A hash of the code that turns the store into the page (rhetoric.trends, rhetoric.charts) and plotly's version."""
    import hashlib
    from importlib.metadata import version

    package = Path(__file__).parent
    digest = hashlib.sha256(version("plotly").encode())
    for path in sorted([package / "trends.py", *(package / "charts").glob("*.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _kept_template(settings: Settings, key: str) -> PageTemplate | None:
    """The kept page template if it was made under this key; None otherwise (or if it cannot be read)."""
    from rhetoric.charts.template import PageTemplate

    try:
        with open(settings.state_dir / TEMPLATE_FILE, encoding="utf-8", newline="") as kept:
            if kept.readline().rstrip("\n") != key:
                return None
            cut = int(kept.readline())
            page = kept.read()
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return PageTemplate(page[:cut], page[cut:]) if 0 <= cut <= len(page) else None


def _keep_template(settings: Settings, key: str, template: PageTemplate) -> None:
    """Keep the template: its key, where it is cut, then the page; replaced in one step, so overlapping runs
    never mix two."""
    from rhetoric.project import keep_state_file

    keep_state_file(settings.state_dir / TEMPLATE_FILE,
                    f"{key}\n{len(template.before)}\n{template.before}{template.after}")


def partial_dashboard(settings: Settings, run_id: str | None = None) -> Path:
    """Where a run writes the dashboard before it replaces index.html: one file per run, as runs may overlap."""
    return settings.out_dir / (f"index.html.{run_id}.tmp" if run_id else f"index.html.{os.getpid()}.tmp")


def remove_dead_partials(store: Store, settings: Settings) -> int:
    """Remove the half-written dashboards of runs that died writing them; how many there were."""
    removed = 0
    for tmp in settings.out_dir.glob("index.html*.tmp"):
        owner = tmp.name.removeprefix("index.html").removesuffix(".tmp").lstrip(".")
        if not owner or owner.isdigit() or is_dead(store.alive_lock(owner)):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def live_status(store: Store, recorded_run: str, writing_run: str | None) -> str:
    """What a run recorded as running really is: 'writing' (the run writing the page), 'running' (it holds
    its own alive lock), or 'interrupted' (that lock is free: it died without recording its end)."""
    if recorded_run == writing_run:
        return "writing"
    return "interrupted" if is_dead(store.alive_lock(recorded_run)) else "running"


def frame_titles(settings: Settings, model_meta: dict | None) -> dict[str, str]:
    """Frame names in words, from labels/frames.toml; the model's own names where it is absent."""
    if (settings.labels_dir / FRAMES_FILE).is_file():
        return {f.name: f.title for f in load_frames(settings.labels_dir)}
    names = (model_meta or {}).get("frames") or []
    return {name: name.replace("_", " ").capitalize() for name in names}
