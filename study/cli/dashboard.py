"""``study dashboard``: optuna-dashboard on the study storage (``study.dashboard.server``)."""

from __future__ import annotations

import argparse
import sys

from study.cli.base import Command, add_storage


class Dashboard(Command):
    name = "dashboard"
    help = ("Serve optuna-dashboard on the study storage (live; safe beside running SQLite workers), "
            "bound to 127.0.0.1 unless told otherwise.")
    example = ("study dashboard                                    # ./studies.db on http://127.0.0.1:8080/\n"
               "  study dashboard --storage postgresql://user:pass@db-host/studies --port 8081\n"
               "  study dashboard --storage journal:///shared/fs/study.log --artifacts /shared/fs/artifacts")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_storage(parser)
        parser.add_argument("--host", default="127.0.0.1",
                            help="address to bind (default: %(default)s; 0.0.0.0 exposes it without a "
                                 "password)")
        parser.add_argument("--port", type=int, default=8080,
                            help="port (default: %(default)s; 0 = any free port)")
        parser.add_argument("--artifacts", default="runs/artifacts",
                            help="trial artifact folder written by `study run` (default: %(default)s)")

    def take_action(self, args: argparse.Namespace) -> int:
        # optuna-dashboard: on use, never for --help
        from study.dashboard.server import is_loopback, serve
        from study.storage.urls import redact

        if not is_loopback(args.host):
            print(f"warning: binding to {args.host}: optuna-dashboard has no login, so anyone who can reach "
                  "this port can read and edit the studies.", file=sys.stderr)

        def ready(url: str) -> None:
            print(f"optuna-dashboard for {redact(args.storage)} at {url}  (artifacts: {args.artifacts}; "
                  "Ctrl-C stops)", flush=True)

        try:
            serve(args.storage, host=args.host, port=args.port, artifacts=args.artifacts, on_ready=ready)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: a normal way to stop a server
            print("dashboard stopped", file=sys.stderr)
        return 0


COMMAND = Dashboard()
