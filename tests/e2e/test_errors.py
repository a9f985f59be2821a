"""Every command, given a user's mistake, exits 1 or 2 with one line on standard error and no traceback."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

from rhetoric.store import Store
from tests.model_fixtures import without_scorer
from tests.project_fixtures import make_project

pytestmark = pytest.mark.slow
RHETORIC = [sys.executable, "-m", "rhetoric.cli"]


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    base = tmp_path_factory.mktemp("errors")
    project = make_project(base)
    outside = base / "outside"
    outside.mkdir()
    empty = f"sqlite:///{base / 'empty.db'}"
    Store(empty).create_schema()
    return project, outside, empty, base


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    env.pop("RHETORIC_PROJECT", None)
    return subprocess.run([*RHETORIC, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


CASES = [
    # (where, arguments, exit status, words the one line must contain)
    ("outside", ["classify", "Talks now."], 1, "rhetoric init DIR"),
    ("outside", ["--project", "{base}/nowhere", "classify", "x"], 1, "not a rhetoric project"),
    ("outside", ["init", "{project}"], 1, "is a project already"),
    ("project", ["run", "--source", "{base}/no-such-folder"], 1, "does not exist"),
    ("project", ["run", "--db", "{base}/plain.db"], 1, "sqlite:///"),
    ("project", ["export", "--out", "x.csv"], 2, "sentences|runs|trends"),
    ("project", ["export", "runs", "--db", "sqlite:///{base}/missing.db", "--out", "x.csv"], 1, "no store here yet"),
    ("project", ["charts", "--db", "sqlite:///{base}/missing.db"], 1, "no store here yet"),
    ("project", ["label", "suggest", "--db", "sqlite:///{base}/missing.db"], 1, "no store here yet"),
    ("project", ["label", "suggest", "--db", "{empty}"], 1, "no stored sentence"),
    ("project", ["label", "suggest", "--db", "{empty}", "--period", "spring"], 1, "--period 'spring'"),
    ("project", ["label", "suggest", "--db", "{empty}", "--random", "2"], 1, "between 0 and 1"),
    ("project", ["label", "audit", "--db", "{empty}"], 1, "no sentence classified"),
    ("project", ["label", "import", "{base}/no-export.json"], 1, "cannot read the export"),
    ("project", ["serve", "--cron", "every hour"], 1, "five cron fields"),
    ("project", ["serve", "--interval", "-5"], 1, "positive number of seconds"),
    ("project", ["train", "--labels", "{base}/no-labels"], 1, "frames file"),
    ("project", ["classify", "--format", "xml", "x"], 2, "invalid choice"),
    ("project", ["frobnicate"], 2, "invalid choice"),
]


@pytest.mark.parametrize("where, arguments, status, words", CASES, ids=[" ".join(c[1])[:60] for c in CASES])
def test_a_mistake_is_one_clear_line(places, where, arguments, status, words):
    project, outside, empty, base = places
    values = {"base": base, "project": project, "empty": empty}
    done = run(project if where == "project" else outside, *(a.format(**values) for a in arguments))
    assert done.returncode == status, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, done.stderr
    assert "Traceback" not in done.stderr and words in done.stderr


def test_label_without_an_action_prints_the_label_help(places):
    project, *_ = places
    done = run(project, "label")
    assert done.returncode == 2 and "suggest" in done.stderr and "audit" in done.stderr
    assert "Traceback" not in done.stderr


def test_init_then_commands_from_deep_inside_the_project(tmp_path):
    made = run(tmp_path, "init", "proj")
    assert made.returncode == 0, made.stderr
    project = tmp_path / "proj"
    assert {p.name for p in project.iterdir()} >= {"rhetoric.toml", "labels", "models", "outputs", "articles"}
    deep = project / "any" / "depth"
    deep.mkdir(parents=True)
    classified = run(deep, "classify", "The illegal unilateral sanctions will fail, the minister said.")
    assert classified.returncode == 0, classified.stderr
    assert classified.stdout.splitlines()[1].startswith("anti_sanctions")
    articles = deep / "mine"
    articles.mkdir()
    (articles / "one.txt").write_text("Talks resume in Geneva\nThe two delegations met on Monday to discuss a "
                                      "ceasefire, officials said.\n", encoding="utf-8")
    ran = run(deep, "run", "--source", "mine")  # relative to where it is typed
    assert ran.returncode == 0, ran.stderr
    assert "articles: 1 new" in ran.stdout
    assert (project / ".rhetoric" / "rhetoric.db").is_file() and (project / "outputs" / "index.html").is_file()
    refused = run(deep, "run", "--source", "nowhere")
    assert refused.returncode == 1 and "does not exist" in refused.stderr


def _champion_outside(project: Path, name: str) -> None:
    """Move the champion's folder out of models/ and point champion.json at it by NAME (format: {outside})."""
    models = project / "models"
    pointer = json.loads((models / "champion.json").read_text())
    outside = project.parent / "outside-models"
    shutil.move(models / pointer["champion"], outside / pointer["champion"])
    name = name.format(outside=outside / pointer["champion"], version=pointer["champion"])
    (models / "champion.json").write_text(json.dumps({**pointer, "champion": name}))


def _champion_linked_out(project: Path) -> None:
    """Move the champion's folder out of models/ and leave a symbolic link to it under its name."""
    models = project / "models"
    version = json.loads((models / "champion.json").read_text())["champion"]
    shutil.move(models / version, project.parent / "linked")
    (models / version).symlink_to(project.parent / "linked", target_is_directory=True)


def _champion_artifact(project: Path, write, name: str = "model.joblib") -> None:
    """Replace a file of the champion and record its new SHA-256, as anyone who can write models/ can.

    For model.joblib the champion also loses its scorer.npz, as a version saved before scorers
    existed: only such a version is scored by unpickling.
    """
    models = project / "models"
    version = json.loads((models / "champion.json").read_text())["champion"]
    if name == "model.joblib":
        without_scorer(models, version)
    write(models / version / name)
    meta_path = models / version / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["sha256" if name == "model.joblib" else "scorer_sha256"] = hashlib.sha256(
        (models / version / name).read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))


TAMPERED = [
    # (how the registry was changed, command, words the one line must contain)
    (lambda p: _champion_outside(p, "../outside-models/{version}"), ["classify", "Talks now."],
     "is not a model version"),
    (lambda p: _champion_outside(p, "{outside}"), ["status"], "is not a model version"),
    (_champion_linked_out, ["run"], "outside the registry"),
    (_champion_linked_out, ["train"], "outside the registry"),
    (lambda p: _champion_artifact(p, lambda f: joblib.dump({"model": 1}, f)), ["label", "suggest"],
     "holds a builtins.dict, expected a rhetoric.model.FrameModel"),
    (lambda p: _champion_artifact(p, lambda f: joblib.dump([0.5, 0.5], f)), ["train"],
     "holds a builtins.list, expected a rhetoric.model.FrameModel"),
    (lambda p: _champion_artifact(p, lambda f: f.write_text("not a pickle\n")), ["classify", "Talks now."],
     "not a loadable joblib model file"),
    (lambda p: _champion_artifact(p, lambda f: f.write_text("not a pickle\n")), ["export", "trends", "--db", "{db}", "--out", "t.csv"],
     "not a loadable joblib model file"),
    (lambda p: _champion_artifact(p, lambda f: f.write_text("not a zip\n"), "scorer.npz"), ["classify", "Talks now."],
     "scorer.npz: not a readable scorer file"),
    (lambda p: _champion_artifact(p, lambda f: f.write_bytes(b""), "scorer.npz"), ["label", "suggest"],
     "scorer.npz: not a readable scorer file"),
]


@pytest.mark.parametrize("tamper, arguments, words", TAMPERED,
                         ids=[f"{i}-{' '.join(c[1])[:20]}" for i, c in enumerate(TAMPERED)])
def test_a_model_the_registry_does_not_own_is_refused_in_one_line(tmp_path, tamper, arguments, words):
    project = make_project(tmp_path)
    tamper(project)
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    Store(db).create_schema()
    done = run(project, *(a.format(db=db) for a in arguments))
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 2, done.stderr
    assert "Traceback" not in done.stderr and words in done.stderr
    assert lines[0].startswith("rhetoric: error: ") and "models" in lines[0]
