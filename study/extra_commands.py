"""Commands that build on a study: ``report``, ``dashboard``, ``export`` and ``rank`` (their parsers are in
``study.cli``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from study.dashboard.server import is_loopback, serve
from study.runtime.studies import load_existing
from study.storage.urls import redact


def cmd_report(args: argparse.Namespace) -> int:
    from study.report.build import (  # torch: `study dashboard` (this module) needs none
        build_report,
        report_path,
    )

    study = load_existing(args.name, args.storage)
    out = report_path(args.out, args.name)
    build_report(study, out=out, storage_url=args.storage, device=args.device)
    print(f"report: {out} ({out.stat().st_size / 1e6:.1f} MB; open it in a browser, it works offline)")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    if not is_loopback(args.host):
        print(f"warning: binding to {args.host}: optuna-dashboard has no login, so anyone who can reach this "
              "port can read and edit the studies.", file=sys.stderr)

    def ready(url: str) -> None:
        print(f"optuna-dashboard for {redact(args.storage)} at {url}  (artifacts: {args.artifacts}; Ctrl-C "
              "stops)", flush=True)

    try:
        serve(args.storage, host=args.host, port=args.port, artifacts=args.artifacts, on_ready=ready)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: a normal way to stop a server
        print("dashboard stopped", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from study.export.model_dir import export_best  # torch: see cmd_report

    study = load_existing(args.name, args.storage)
    metrics = export_best(study, out=Path(args.out), retrain=args.retrain, device=args.device,
                          force=args.force)
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
    from study.export.scoring import (  # torch: see cmd_report
        Ranker,
        output_format,
        read_candidates,
        write_ranked,
    )
    from study.runtime.session import parse_column_maps  # torch: see cmd_report

    columns = parse_column_maps(args.map)
    output_format(args.output)  # a bad output name is refused before the model is loaded or anything scored
    ranker = Ranker.load(args.model, device=args.device)
    ranked = ranker.rank(read_candidates(args.input, columns=columns), source=str(args.input))
    write_ranked(ranked, args.output)
    print(f"ranked {len(ranked):,} candidates of {ranked['query_id'].nunique():,} queries into {args.output}")
    return 0
