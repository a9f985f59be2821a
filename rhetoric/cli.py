"""The `rhetoric` command line. Errors of the RhetoricError family are caught here once."""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Sequence

from rhetoric import __version__
from rhetoric.config import Settings, cli_source, load_settings
from rhetoric.errors import RhetoricError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args) or 0
    except RhetoricError as exc:
        print(f"rhetoric: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM where a command stops on it (rhetoric.network.Stopped)
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"rhetoric: interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:  # `rhetoric ... | head`: the reader stopped reading; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def console() -> int:
    """The console script: main(), then leave the interpreter nothing to collect on its way out.

    A Python process's last step is to free what it holds: its finalization runs the cyclic
    garbage collector over every object still alive, several times. After a run that is
    about 250,000 objects (Prefect, pydantic, SQLAlchemy, scikit-learn), and it took 0.5-0.7 s
    of every `rhetoric run`, for memory the operating system takes back whole a moment later.
    gc.freeze() moves them out of the collector's sight first, so the process ends in
    0.05 s. What needs closing is closed before that: the run closes its store (SQLite then
    checkpoints its write-ahead log), atexit handlers and logging still run, and a cycle
    left unclosed by a command loses nothing (a store's committed writes are on disk).
    In-process callers of main() (tests) keep their collector.
    """
    global _OWN_PROCESS
    _OWN_PROCESS = True
    code = main()
    gc.freeze()  # standard streams are still flushed, and atexit handlers run, after this
    return code


# whether the command runs in a process of its own, which ends with it (console()), not in a caller's (tests)
_OWN_PROCESS = False


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line naming the fix (subcommands inherit the class)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rhetoric", description=(
        "Track how states frame world affairs in the news: ingest articles, classify their "
        "sentences into framing categories, store them and chart the trends."))
    parser.add_argument("--version", action="version", version=f"rhetoric {__version__}")
    parser.add_argument("--project", metavar="DIR",
                        help="the project folder (default: $RHETORIC_PROJECT, else the first folder upwards from "
                             "here that holds rhetoric.toml)")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    status = commands.add_parser("status", help="the project, its store, last runs, champion and audit state")
    _add_db(status)
    _add_models(status)
    _add_labels(status)
    status.set_defaults(handler=cmd_status)

    init = commands.add_parser("init", help="create a project folder: rhetoric.toml, labels, the champion model")
    init.add_argument("directory", metavar="DIR", type=Path)
    init.set_defaults(handler=cmd_init)

    run = commands.add_parser("run", help="one pipeline run through the Prefect flow")
    _add_source(run)
    _add_db(run)
    _add_out_dir(run)
    _add_models(run)
    run.set_defaults(handler=cmd_run)

    server = commands.add_parser("server", help="keep Prefect's server running for this project (faster runs)")
    server.add_argument("action", choices=("start", "stop", "status"), metavar="start|stop|status")
    server.add_argument("--port", type=int, help="start: port on 127.0.0.1 (default 4200, else a free one)")
    server.set_defaults(handler=cmd_server)

    classify = commands.add_parser("classify", help="classify sentences (arguments or stdin, one per line)")
    classify.add_argument("texts", nargs="*", metavar="TEXT", help="sentences; read from stdin when none")
    classify.add_argument("--format", choices=("table", "jsonl"), default="table")
    _add_models(classify)
    _add_labels(classify)
    classify.set_defaults(handler=cmd_classify)

    export = commands.add_parser("export", help="write stored sentences, runs or trends as CSV")
    export.add_argument("what", choices=("sentences", "runs", "trends"), metavar="sentences|runs|trends")
    _add_db(export)
    export.add_argument("--out", required=True, metavar="FILE", help="CSV file to write")
    export.add_argument("--freq", choices=("W", "M", "Q", "Y"), help="trends: period (default: by data span)")
    export.add_argument("--by", choices=("outlet",), help="trends: one series per outlet")
    _add_models(export)
    _add_labels(export)
    _add_raw(export)
    export.set_defaults(handler=cmd_export)

    train = commands.add_parser("train", help="train a challenger and promote it if it is not worse")
    _add_labels(train)
    _add_models(train)
    train.add_argument("--force", action="store_true", help="promote the challenger whatever its scores")
    train.set_defaults(handler=cmd_train)

    label = commands.add_parser("label", help="the labelling loop: suggest sentences, import annotations")
    label_commands = label.add_subparsers(title="label commands", metavar="ACTION")
    label.set_defaults(handler=lambda args: _help(label))
    suggest = label_commands.add_parser("suggest", help="sentences the champion is least sure about, as labels CSV")
    suggest.add_argument("-n", type=int, default=50, help="how many sentences (default 50)")
    _add_db(suggest)
    suggest.add_argument("--out", metavar="FILE", help="CSV to write (default: standard output)")
    suggest.add_argument("--random", type=float, default=0.0, metavar="SHARE",
                         help="share of the n drawn at random (default 0)")
    suggest.add_argument("--topical", type=float, default=0.0, metavar="SHARE",
                         help="share of the n that mention a frame's topic words but are not flagged with it (default 0)")
    suggest.add_argument("--seed", type=int, default=0, help="seed of the random and topical draws (default 0)")
    suggest.add_argument("--period", metavar="P",
                         help="only sentences of articles published in P: YYYY, YYYY-Qn, YYYY-MM, YYYY-MM-DD or START..END")
    suggest.add_argument("--outlet", metavar="O", help="only sentences of this outlet")
    suggest.add_argument("--frame", metavar="F",
                         help="the sentences the dashboard's drill-down shows for frame F (flagged, highest score "
                              "first) instead of the least sure ones")
    _add_models(suggest)
    _add_labels(suggest)
    _add_raw(suggest)
    suggest.set_defaults(handler=cmd_label_suggest)
    audit = label_commands.add_parser("audit", help="a stratified sample of this corpus to review, or --report "
                                                    "the champion's measured error on it")
    audit.add_argument("-n", type=int, default=300, help="how many sentences (default 300)")
    _add_db(audit)
    audit.add_argument("--out", metavar="FILE", help="CSV to write (default: standard output)")
    audit.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    audit.add_argument("--report", action="store_true",
                       help="print the champion's precision, recall, TPR and FPR on the reviewed audit rows")
    _add_models(audit)
    _add_labels(audit)
    _add_raw(audit)
    audit.set_defaults(handler=cmd_label_audit)
    imp = label_commands.add_parser("import", help="convert a Label Studio JSON or doccano JSONL export")
    imp.add_argument("file", type=Path, metavar="FILE")
    imp.add_argument("--out", metavar="FILE", help="CSV to write (default: standard output)")
    _add_labels(imp)
    _add_raw(imp)
    imp.set_defaults(handler=cmd_label_import)

    serve = commands.add_parser("serve", help="run the pipeline on a schedule (a served Prefect deployment)")
    when = serve.add_mutually_exclusive_group()
    when.add_argument("--interval", type=float, metavar="SECONDS",
                      help="seconds between runs (default 3600 when --cron is not given)")
    when.add_argument("--cron", metavar="EXPR", help='cron schedule, e.g. "0 * * * *" (every hour)')
    _add_source(serve)
    _add_db(serve)
    _add_out_dir(serve)
    _add_models(serve)
    serve.set_defaults(handler=cmd_serve)

    charts = commands.add_parser("charts", help="rebuild the dashboard from the store")
    _add_db(charts)
    _add_out_dir(charts)
    _add_models(charts)
    _add_labels(charts)
    charts.set_defaults(handler=cmd_charts)
    return parser


def _add_source(p):
    p.add_argument("--source", action="append", metavar="DIR|FEED_URL",
                   help="a folder of articles or an RSS/Atom feed URL, added to rhetoric.toml's sources "
                        "(default: seeds/); repeatable")


def _add_db(p):
    p.add_argument("--db", metavar="URL", help="store URL (default: $RHETORIC_DB or .rhetoric/rhetoric.db)")


def _add_out_dir(p):
    p.add_argument("--out", metavar="DIR", help="folder for the dashboard (default: outputs/)")


def _add_models(p):
    p.add_argument("--models", metavar="DIR", help="model registry (default: models/)")


def _add_labels(p):
    p.add_argument("--labels", metavar="DIR", help="labels folder (default: labels/)")


def _add_raw(p):
    p.add_argument("--raw", action="store_true",
                   help="write cells as they are (default: a text cell starting with = + - @, tab or carriage "
                        "return gets a leading ' so that a spreadsheet shows it as text, not as a formula)")


def _settings(args, **extra) -> Settings:
    """The project's settings; paths typed on the command line are relative to the working directory."""
    from rhetoric.project import find_project

    root = find_project(explicit=getattr(args, "project", None))
    overrides = {"db_url": getattr(args, "db", None), "models_dir": _here(getattr(args, "models", None)),
                 "labels_dir": _here(getattr(args, "labels", None)),
                 **{k: _here(v) if k == "out_dir" else v for k, v in extra.items()}}
    sources = tuple(cli_source(s if str(s).startswith(("http://", "https://")) else _here(s))
                    for s in getattr(args, "source", None) or ())
    return load_settings(root, overrides=overrides, extra_sources=sources)


def _here(path: str | Path | None) -> str | None:
    """A path typed on the command line, made absolute against the working directory."""
    return None if path is None else str(Path(path).expanduser().resolve())


def cmd_status(args) -> int:
    from rhetoric.audit import load_audit
    from rhetoric.errors import StoreError
    from rhetoric.labels import load_frames
    from rhetoric.dashboard import live_status
    from rhetoric.pipeline import correction_evidence, model_languages, open_existing_store
    from rhetoric.registry import Registry

    settings = _settings(args)
    print(f"project: {settings.root}")
    champion = Registry(settings.models_dir).champion()
    if champion is None:
        print("champion: none yet (the first run trains one)")
    else:
        real = (champion.metadata.get("metrics") or {}).get("real")
        figure = f", macro-F1 {real['macro_f1']:.3f} on real text" if real else ""
        print(f"champion: {champion.version} ({champion.metadata.get('candidate')}{figure}); "
              f"reads {', '.join(model_languages(champion))}")
    frames = load_frames(settings.labels_dir)
    audit = load_audit(settings.labels_dir, frames)
    reviewed = int((audit["origin"] == "audit").sum()) if len(audit) else 0
    print(f"audit: {reviewed} reviewed sentence(s) in {settings.labels_dir / 'audit'}"
          + ("" if reviewed else " (run `rhetoric label audit` to measure the error on this corpus)"))
    try:
        store = open_existing_store(settings)
    except StoreError as missing:
        print(f"store: none yet ({missing})")
        return 0
    summary = store.corpus_summary()
    print(f"store: {settings.resolved_db_url()}: {summary['articles']:,} articles, {summary['sentences']:,} sentences, "
          f"{len(summary['outlets'])} outlet(s), published {summary['first_published']} to {summary['last_published']}")
    if summary.get("languages"):
        print("languages: " + ", ".join(f"{k} {v:,}" for k, v in sorted(summary["languages"].items(),
                                                                         key=lambda kv: -kv[1])))
    runs = store.export_runs().tail(3)
    for run in runs.itertuples():
        status = live_status(store, run.run_id, None) if run.status == "running" else run.status
        print(f"run {run.started:%Y-%m-%d %H:%M} {status}: {run.articles_new} new article(s), "
              f"{run.sentences_new} new sentence(s), model {run.model_version}")
    if champion is not None:
        evidence = correction_evidence(store, settings, champion)
        print("error rates: " + "; ".join(f"{f} from {e['from']}" for f, e in evidence.items()))
    return 0


def cmd_init(args) -> int:
    from rhetoric.project import init_project

    made = init_project(args.directory)
    print(f"created the rhetoric project {args.directory.resolve()}:")
    for item in made:
        print(f"  {item}")
    print(f"next: put articles in {args.directory}/articles, then `cd {args.directory} && rhetoric run`")
    return 0


def _quiet_prefect() -> None:
    """Defaults for a local research tool: no analytics, and time for the temporary server on a busy machine.

    Prefect waits 20 s for its temporary server by default; a normal start takes 15-20 s on two
    cores, so under load it times out. 90 s (PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS
    overrides it) costs nothing when the server is quick.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from flows.server import START_TIMEOUT

    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", f"{START_TIMEOUT:g}")


HEARTBEAT_VARIABLES = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


def _without_heartbeats():
    """A context in which a flow run sends Prefect no heartbeats, unless the environment asks for them.

    Prefect 3 starts a heartbeat thread for every flow run (every 180 s by default), so that
    a server with a zombie-run automation can mark a run whose process died as crashed. At the
    end of the run it joins that thread, which sleeps in one-second steps: every `rhetoric
    run` waited up to a second for it (hand runs that found nothing new took 3.4 s with
    heartbeats, 2.8 s without). A hand run is a foreground command, and the store records a
    run that died anyway (the next run marks it interrupted), so `rhetoric run` turns them
    off. PREFECT_FLOWS_HEARTBEAT_FREQUENCY set in the environment keeps them; deployments run
    by `rhetoric serve` or a worker keep Prefect's default.
    """
    import contextlib

    if any(name in os.environ for name in HEARTBEAT_VARIABLES):
        return contextlib.nullcontext()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    return temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})


def _with_prefect(settings: Settings, start, hint: bool = True):
    """Run a flow against the Prefect API the project has (flows.server.prefect_api), and say once
    per project how to skip the temporary server's start-up when one had to be started."""
    from flows.server import prefect_api

    with prefect_api(settings.state_dir) as (_, where, startup):
        result = start()
    if hint and where == "temporary server":
        marker = settings.state_dir / "prefect" / "server-hint-shown"
        if not marker.exists():
            print(f"rhetoric: Prefect's temporary server took {startup:.0f} s of this command; "
                  "`rhetoric server start` keeps one running for this project so the next run skips that",
                  file=sys.stderr)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
    return result


def cmd_run(args) -> int:
    from rhetoric.network import stop_on_signals
    from rhetoric.pipeline import preflight

    settings = _settings(args, out_dir=args.out)
    preflight(settings)
    from rhetoric.language import warm_up
    from rhetoric.pipeline import start_helpers

    warm_up()  # on the other core while Prefect starts
    start_helpers(settings)  # so do the helpers that will prepare the first chunk with this process
    _quiet_prefect()
    from flows.pipeline import run_pipeline

    if _OWN_PROCESS:
        # what is loaded by now (modules, Prefect, SQLAlchemy) lives until the process ends: frozen, it is left
        # out of the collections the run's own allocations set off (first runs on 10,000 articles: 7.33 s
        # against 7.48 s, eight alternating hand runs each)
        gc.freeze()
    sources = [s if s.startswith(("http://", "https://")) else _here(s) for s in args.source or []]
    # SIGINT/SIGTERM: fetches stop at once, the run ends as interrupted, one line here
    with stop_on_signals(), _without_heartbeats():
        summary = _with_prefect(settings, lambda: run_pipeline(sources=sources, db=settings.db_url or None,
                                                     out=str(settings.out_dir), models=str(settings.models_dir),
                                                     root=str(settings.root)))
    print(summary.render())
    return 0


def cmd_server(args) -> int:
    """start, stop or report the project's lasting Prefect server; status exits 3 when none runs."""
    from flows.server import project_server, start_server, stop_server

    settings = _settings(args)
    if args.action == "start":
        _quiet_prefect()
        record, started = start_server(settings.state_dir, port=args.port)
        print(f"Prefect server {'started' if started else 'already running'}: {record.ui_url} (pid {record.pid}; "
              f"database and log in {record.home}); `rhetoric run` and `rhetoric serve` in this project use it; "
              "`rhetoric server stop` ends it")
        return 0
    if args.action == "stop":
        record = stop_server(settings.state_dir)
        print(f"Prefect server stopped (pid {record.pid})" if record else "no Prefect server was running for this project")
        return 0
    record = project_server(settings.state_dir)
    if record is None:
        print("no Prefect server running for this project; `rhetoric server start` starts one")
        return 3
    print(f"Prefect server running: {record.ui_url} (pid {record.pid}, up {_age(record.started)}; "
          f"database and log in {record.home})")
    return 0


def _age(started: float) -> str:
    import time

    seconds = int(time.time() - started)
    return f"{seconds // 3600} h {seconds % 3600 // 60} min" if seconds >= 3600 else f"{seconds // 60} min {seconds % 60} s"


def cmd_serve(args) -> int:
    from rhetoric.pipeline import preflight

    _check_schedule(args.interval, args.cron)
    settings = _settings(args, out_dir=args.out)
    preflight(settings)
    _quiet_prefect()
    from flows.serve import serve

    interval = args.interval if args.interval is not None or args.cron else 3600.0
    serve(settings, sources=args.source or [], interval=interval, cron=args.cron)
    return 0


_CRON_FIELD = re.compile(r"^[0-9*,/\-A-Za-z?]+$")


def _check_schedule(interval: float | None, cron: str | None) -> None:
    """A schedule that cannot work is refused in one line before Prefect starts."""
    from rhetoric.errors import ConfigError

    if interval is not None and interval <= 0:
        raise ConfigError(f"--interval {interval:g}: expected a positive number of seconds, e.g. 3600")
    if cron is not None:
        fields = cron.split()
        if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
            raise ConfigError(f'--cron {cron!r}: expected five cron fields "minute hour day month weekday", '
                              'e.g. "0 * * * *" for every hour')


def cmd_classify(args) -> int:
    """One output line per input line, blank lines included (empty labels, no scores), so outputs stay aligned."""
    from rhetoric.registry import ensure_champion

    settings = _settings(args)
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]
    model = ensure_champion(settings.models_dir, settings.labels_dir)
    filled = [i for i, t in enumerate(texts) if t.strip()]
    labels, scores = model.predict([texts[i] for i in filled]) if filled else ([], [])
    results = dict(zip(filled, zip(labels, scores)))
    frames = model.frames
    out = sys.stdout
    if args.format == "jsonl":
        for i, text in enumerate(texts):
            row_labels, row_scores = results.get(i, ((), None))
            out.write(json.dumps({
                "text": text,
                "labels": [f for f, on in zip(frames, row_labels) if on],
                "scores": {f: round(float(s), 4) for f, s in zip(frames, row_scores)} if row_scores is not None else {},
            }, ensure_ascii=False) + "\n")
        return 0
    out.write("labels\t" + "\t".join(frames) + "\ttext\n")
    for i, text in enumerate(texts):
        if i not in results:
            out.write("\t" * (len(frames) + 1) + f"{text}\n")
            continue
        row_labels, row_scores = results[i]
        names = ",".join(f for f, on in zip(frames, row_labels) if on) or "-"
        out.write(names + "\t" + "\t".join(f"{s:.2f}" for s in row_scores) + f"\t{text}\n")
    return 0


def cmd_export(args) -> int:
    from rhetoric.pipeline import open_existing_store

    settings = _settings(args)
    store = open_existing_store(settings)
    if args.what == "runs":
        table = store.export_runs()
    elif args.what == "sentences":
        table = _export_sentences(store, settings)
    else:
        table = _export_trends(store, settings, args.freq, args.by == "outlet")
    path = Path(args.out)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    _write_csv(table, str(path), args.raw, note=sys.stdout)
    return 0


def _export_sentences(store, settings: Settings):
    from rhetoric.labels import load_frames

    frames = [f.name for f in load_frames(settings.labels_dir)]
    table = store.export_sentences(frames)
    table["published"] = table["published"].map(lambda d: d.isoformat() if d else "")
    columns = ["source", "published", "outlet", "title", "idx", "text", *frames,
               *[f"score_{f}" for f in frames], "model_version", "language"]
    return table[columns]


def _export_trends(store, settings: Settings, freq: str | None, by_outlet: bool):
    from rhetoric.pipeline import correction_evidence
    from rhetoric.registry import Registry
    from rhetoric.trends import evidence_rates, trends_table

    champion = Registry(settings.models_dir).champion()
    if champion is None:
        return trends_table(store.article_frame_totals(), None, freq=freq, by_outlet=by_outlet)
    evidence = correction_evidence(store, settings, champion)
    return trends_table(store.article_frame_totals(), evidence_rates(evidence), freq=freq, by_outlet=by_outlet,
                        rates_from={f: e["from"] for f, e in evidence.items()})


def cmd_train(args) -> int:
    settings = _settings(args)
    _quiet_prefect()
    from flows.train import train_flow
    from rhetoric.registry import Registry

    Registry(settings.models_dir).verify()  # a registry it cannot trust is refused now, not after training
    outcome = _with_prefect(settings, lambda: train_flow(labels_dir=str(settings.labels_dir),
                                               models_dir=str(settings.models_dir), force=args.force))
    print(outcome.report())
    return 0


def cmd_label_suggest(args) -> int:
    from rhetoric.errors import InputError
    from rhetoric.labelling import shown_sentences, suggest
    from rhetoric.labels import load_eval_labels, load_frames, load_labels
    from rhetoric.pipeline import open_existing_store
    from rhetoric.registry import ensure_champion

    settings = _settings(args)
    model = ensure_champion(settings.models_dir, settings.labels_dir)
    frames = load_frames(settings.labels_dir)
    # never suggest what a person already labelled, for training or for evaluation
    labelled = [*load_labels(settings.labels_dir, frames)["text"],
                *load_eval_labels(settings.labels_dir, frames)["text"]]
    shares = {"--random": args.random, "--topical": args.topical}
    for flag, share in shares.items():
        if not 0.0 <= share <= 1.0:
            raise InputError(f"{flag} {share}: expected a share between 0 and 1")
    if args.random + args.topical > 1.0:
        raise InputError(f"--random {args.random} and --topical {args.topical} add up to more than 1; lower one")
    stored = _filtered(open_existing_store(settings).sentence_texts(), model, args.period, args.outlet)
    if stored.empty:
        raise InputError(f"{settings.resolved_db_url()}: no stored sentence to choose from"
                         + (" in that period or outlet" if args.period or args.outlet else "")
                         + "; run `rhetoric run` first, or widen --period / --outlet")
    if args.frame:
        table = shown_sentences(stored, model, args.frame, n=args.n)
    else:
        table = suggest(stored, model, n=args.n, exclude=labelled, random_share=args.random,
                        topical_share=args.topical, topics={f.name: f.topics for f in frames}, seed=args.seed)
    _write_csv(table, args.out, args.raw)
    return 0


def _filtered(stored, model, period: str | None, outlet: str | None):
    """Stored sentences the model can read, in the period and outlet asked for."""
    import pandas as pd

    from rhetoric.errors import InputError
    from rhetoric.labelling import period_bounds
    from rhetoric.pipeline import model_languages

    languages = set(model_languages(model))
    stored = stored[stored["language"].isna() | stored["language"].isin(languages)]
    if outlet:
        if outlet not in set(stored["outlet"].dropna()):
            known = ", ".join(sorted(stored["outlet"].dropna().unique())[:12])
            raise InputError(f"--outlet {outlet!r}: no stored article from it; stored outlets include {known}")
        stored = stored[stored["outlet"] == outlet]
    if period:
        start, end = period_bounds(period)
        published = pd.to_datetime(stored["published"])
        stored = stored[(published >= start) & (published < end)]
    return stored


def cmd_label_audit(args) -> int:
    from rhetoric.audit import audit_metrics, draw_audit, load_audit, report_table
    from rhetoric.errors import InputError
    from rhetoric.labels import load_frames
    from rhetoric.pipeline import open_existing_store
    from rhetoric.registry import ensure_champion

    settings = _settings(args)
    model = ensure_champion(settings.models_dir, settings.labels_dir)
    frames = load_frames(settings.labels_dir)
    store = open_existing_store(settings)
    if args.report:
        audit = load_audit(settings.labels_dir, frames)
        ids = audit["sentence_id"] if "sentence_id" in audit else []
        print(report_table(audit_metrics(audit, store.texts_by_id(ids), model, frames)))
        return 0
    if args.n <= 0:
        raise InputError(f"-n {args.n}: expected a positive number of sentences")
    names = [f.name for f in frames if f.name in model.frames]
    stored = store.export_sentences(names)
    classified = stored[stored["model_version"] == model.version]
    if classified.empty:
        raise InputError(f"{settings.resolved_db_url()}: no sentence classified by the champion {model.version} is "
                         "stored; run `rhetoric run` first")
    _write_csv(draw_audit(classified, names, model.version, n=args.n, seed=args.seed), args.out, args.raw)
    return 0


def cmd_label_import(args) -> int:
    from rhetoric.labelling import import_annotations
    from rhetoric.labels import load_frames

    settings = _settings(args)
    table = import_annotations(args.file, load_frames(settings.labels_dir))
    _write_csv(table, args.out, args.raw)
    return 0


def cmd_charts(args) -> int:
    from rhetoric.dashboard import write_dashboard
    from rhetoric.pipeline import correction_evidence, open_existing_store
    from rhetoric.registry import Registry

    settings = _settings(args, out_dir=args.out)
    registry = Registry(settings.models_dir)
    champion = registry.champion()
    store = open_existing_store(settings)
    evidence = correction_evidence(store, settings, champion) if champion else None
    path = write_dashboard(store, settings, champion.metadata if champion else None, registry.history(), evidence)
    print(f"dashboard: {path}")
    return 0


def _write_csv(table, out: str | None, raw: bool = False, note=None) -> None:
    """The table as CSV to out (standard output when None), text cells spreadsheet-safe unless raw."""
    from rhetoric.labels import spreadsheet_safe

    table = table if raw else spreadsheet_safe(table)
    if out:
        table.to_csv(out, index=False)
        print(f"wrote {len(table)} rows to {out}", file=note or sys.stderr)
    else:
        table.to_csv(sys.stdout, index=False)


if __name__ == "__main__":
    sys.exit(console())
