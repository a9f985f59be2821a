"""Projects: a folder holding rhetoric.toml, found like git finds its repository, and created by `rhetoric init`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from rhetoric.config import CONFIG_FILE
from rhetoric.errors import ConfigError

PROJECT_ENV = "RHETORIC_PROJECT"
# the checkout this package runs from: where `rhetoric init` copies labels and the champion from
HOME = Path(__file__).resolve().parents[1]

CONFIG_TEMPLATE = '''# rhetoric project settings. Every key is optional; the values below are the defaults.
# Relative paths are relative to this folder, wherever a command is run from.

[settings]
# db = "sqlite:///.rhetoric/rhetoric.db"   # or postgresql+psycopg://user@host/rhetoric (pip install ".[postgres]")
# out = "outputs"                         # the dashboard and exports
# models = "models"                       # the model registry
# labels = "labels"                       # frames.toml and labelled sentences
# http_timeout = 20                       # seconds a whole fetch of a page or feed may take
# allow_private = []                      # internal hosts fetching may reach, e.g. ["127.0.0.1:8080", "intranet"]
# max_bytes = 5000000                     # size cap per file or page
# user_agent = "rhetoric/0.1 (+https://github.com/rhetoric-project/rhetoric; news framing research)"
# fetch_retries = 2                       # extra attempts after a connection error, timeout or HTTP 5xx
# retry_backoff = 2.0                     # first retry delay in seconds, doubling each time
# near_duplicate_threshold = 0.8          # MinHash similarity at which two articles are one story
# batch_size = 2500                       # articles read, prepared and stored at a time; sentences scored at a time
# lock_wait = 120                         # seconds to wait for another run's write to this store, then skip
# workers = 0                             # processes preparing a run's articles, the run's own included; 0: one per core

# A folder of .txt/.md/.html articles, with an optional manifest.csv (file,published,outlet,title,url).
{sources}
# An RSS or Atom feed (every item's page is fetched):
# [[source]]
# kind = "feed"
# url = "https://example.org/world/rss.xml"
# outlet = "Example News"

# Outlets charted together in the dashboard's outlet selector:
# [outlet_groups]
# "Russian state media" = ["RT", "TASS"]
'''


def find_project(start: Path | None = None, explicit: str | Path | None = None) -> Path:
    """The project folder: --project / RHETORIC_PROJECT, else the first folder upwards holding rhetoric.toml.

    Raises:
        ConfigError: one line naming the fix (`rhetoric init DIR` or --project).
    """
    chosen = explicit or os.environ.get(PROJECT_ENV)
    if chosen:
        folder = Path(chosen).expanduser().resolve()
        if not (folder / CONFIG_FILE).is_file():
            raise ConfigError(f"{folder}: not a rhetoric project (no {CONFIG_FILE}); create one with "
                              f"`rhetoric init {chosen}`")
        return folder
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE).is_file():
            return folder
    raise ConfigError(f"not inside a rhetoric project (no {CONFIG_FILE} in {here} or any folder above it); "
                      "create one with `rhetoric init DIR`, or pass --project DIR")


def keep_state_file(path: Path, text: str) -> None:
    """Write a file of the project's state folder (.rhetoric/) in one step: a reader never sees half of it, and
    overlapping commands never mix two. Such files are caches: a folder that cannot be written only costs the
    next command the work again, so it is not an error. The text is written as given (no newline translation)."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8", newline="")
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)


def init_project(target: Path, source: Path = HOME) -> list[str]:
    """Create a project folder from the installed one; returns what was created, for the summary.

    Raises:
        ConfigError: the target already holds a project, or the installed labels or champion are missing.
    """
    from rhetoric.registry import Registry

    target = Path(target).resolve()
    if (target / CONFIG_FILE).exists():
        raise ConfigError(f"{target / CONFIG_FILE} already exists: {target} is a project already")
    labels, models = source / "labels", source / "models"
    if not (labels / "frames.toml").is_file():
        raise ConfigError(f"{labels}: no frames.toml to copy; reinstall rhetoric from its source checkout "
                          "(pip install -e .)")
    registry = Registry(models)
    champion = registry.champion()  # verified: SHA-256 and scikit-learn version
    target.mkdir(parents=True, exist_ok=True)
    made = []
    shutil.copytree(labels, target / "labels", ignore=shutil.ignore_patterns("audit"), dirs_exist_ok=True)
    made.append("labels/ (frames.toml and the labelled sentences)")
    if champion is not None:
        shutil.copytree(models / champion.version, target / "models" / champion.version, dirs_exist_ok=True)
        Registry(target / "models").promote(champion.version, champion.metadata.get("metrics", {})
                                            .get("eval", {}).get("macro_f1"))
        made.append(f"models/{champion.version} (the verified champion, with its metadata and card)")
    (target / "outputs").mkdir(exist_ok=True)
    (target / "articles").mkdir(exist_ok=True)
    (target / CONFIG_FILE).write_text(CONFIG_TEMPLATE.format(sources='[[source]]\nkind = "folder"\npath = "articles"\n'),
                                      encoding="utf-8")
    made += ["outputs/ (empty)", "articles/ (put .txt, .md or .html articles here)",
             f"{CONFIG_FILE} (a folder source, articles/, and every setting commented)"]
    return made
