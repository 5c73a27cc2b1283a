"""Commands that build on a study: ``report``, ``dashboard``, ``export`` and ``rank`` (parsers and handlers)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from study.storage import redact

EXAMPLES = {
    "report": "study report --name shoes-v3 --out report.html\n"
              "  study report --name demo --storage sqlite:////data/studies.db --out reports/demo.html",
    "dashboard": "study dashboard                                    # ./studies.db on http://127.0.0.1:8080/\n"
                 "  study dashboard --storage postgresql://user:pass@db-host/studies --port 8081\n"
                 "  study dashboard --storage journal:///shared/fs/study.log --artifacts /shared/fs/artifacts",
    "export": "study export --name shoes-v3 --out models/shoes-v3\n"
              "  study export --name shoes-v3 --out models/shoes-v3-full --retrain   # refit on train + validation",
    "rank": "study rank --model models/shoes-v3 --input candidates.csv --output ranked.csv\n"
            "  study rank --model models/shoes-v3 --input candidates.parquet --output ranked.jsonl",
}


def _parser(subs: argparse._SubParsersAction, name: str, help_: str) -> argparse.ArgumentParser:
    return subs.add_parser(name, help=help_, description=help_, epilog=f"example:\n  {EXAMPLES[name]}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)


def add_parsers(subs: argparse._SubParsersAction, sub: Callable, storage_arg: Callable) -> None:
    del sub  # cli's helper reads cli.EXAMPLES; these commands carry their own examples
    report = _parser(subs, "report", "Write one self-contained HTML report (plotly inlined, works offline): the "
                                     "search, then the best trial's ranking quality against the baselines.")
    report.add_argument("--name", default="default", help="study name (default: %(default)s)")
    storage_arg(report)
    report.add_argument("--out", help="HTML file to write (default: reports/<name>.html)")
    report.add_argument("--device", default="auto", help="where the best model re-scores the test split "
                                                         "(auto, cpu, cuda; default: %(default)s)")

    dashboard = _parser(subs, "dashboard", "Serve optuna-dashboard on the study storage (live; safe beside "
                                           "running SQLite workers), bound to 127.0.0.1 unless told otherwise.")
    storage_arg(dashboard)
    dashboard.add_argument("--host", default="127.0.0.1",
                           help="address to bind (default: %(default)s; 0.0.0.0 exposes it without a password)")
    dashboard.add_argument("--port", type=int, default=8080, help="port (default: %(default)s; 0 = any free port)")
    dashboard.add_argument("--artifacts", default="runs/artifacts",
                           help="trial artifact folder written by `study run` (default: %(default)s)")

    export = _parser(subs, "export", "Write the best trial as a self-contained model directory: safetensors "
                                     "weights, tokenizer, feature scaler, config, metrics and a model card.")
    export.add_argument("--name", default="default", help="study name (default: %(default)s)")
    storage_arg(export)
    export.add_argument("--out", required=True, help="directory to write (it must not exist, unless --force)")
    export.add_argument("--retrain", action="store_true",
                        help="first refit the best config on train + validation for its best epoch count")
    export.add_argument("--device", default="auto", help="device for --retrain (default: %(default)s)")
    export.add_argument("--force", action="store_true", help="replace an existing exported model at --out")

    rank = _parser(subs, "rank", "Score candidate (query, product) rows with an exported model and write them "
                                 "ordered by score within each query, with score and rank columns.")
    rank.add_argument("--model", required=True, help="directory written by `study export`")
    rank.add_argument("--input", required=True, help="candidates: CSV, TSV, Parquet or JSON lines")
    rank.add_argument("--output", required=True, help="ranked rows: .csv, .parquet or .jsonl")
    rank.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N")


def cmd_report(args: argparse.Namespace) -> int:
    from study.report import build_report
    from study.studies import load_existing

    study = load_existing(args.name, args.storage)
    out = Path(args.out or Path("reports") / f"{args.name}.html")
    build_report(study, out=out, storage_url=args.storage, device=args.device)
    print(f"report: {out} ({out.stat().st_size / 1e6:.1f} MB; open it in a browser, it works offline)")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from study.dashboard import is_loopback, serve

    if not is_loopback(args.host):
        print(f"warning: binding to {args.host}: optuna-dashboard has no login, so anyone who can reach this "
              "port can read and edit the studies.", file=sys.stderr)

    def ready(url: str) -> None:
        print(f"optuna-dashboard for {redact(args.storage)} at {url}  (artifacts: {args.artifacts}; Ctrl-C stops)",
              flush=True)

    try:
        serve(args.storage, host=args.host, port=args.port, artifacts=args.artifacts, on_ready=ready)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: a normal way to stop a server
        print("dashboard stopped", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from study.export import export_best
    from study.studies import load_existing

    study = load_existing(args.name, args.storage)
    metrics = export_best(study, out=Path(args.out), retrain=args.retrain, device=args.device, force=args.force)
    metric = metrics["objective"]
    shown = [f"{split} {metric} {m[metric]:.4f}" for split, m in (("validation", metrics.get("validation")),
                                                                   ("test", metrics.get("test"))) if m]
    if metrics.get("retrained"):
        shown.append(f"test after retraining {metrics['retrained']['test'][metric]:.4f}")
    print(f"exported trial {metrics['trial']} of {args.name!r} to {args.out}" + (f" ({', '.join(shown)})"
                                                                                 if shown else ""))
    print(f"use it: study rank --model {args.out} --input candidates.csv --output ranked.csv")
    return 0


def cmd_rank(args: argparse.Namespace) -> int:
    from study.ranking import Ranker, read_candidates, write_ranked

    ranker = Ranker.load(args.model, device=args.device)
    ranked = ranker.rank(read_candidates(args.input), source=str(args.input))
    write_ranked(ranked, args.output)
    print(f"ranked {len(ranked):,} candidates of {ranked['query_id'].nunique():,} queries into {args.output}")
    return 0
