"""``study proxy``: Optuna's gRPC storage proxy in front of one database, for fleets larger than the
database's connection budget (workers then use ``--storage grpc://host:port``)."""

from __future__ import annotations

import argparse
import os
import sys

from study.cli.base import Command


class Proxy(Command):
    name = "proxy"
    help = ("Serve one study database to many workers through Optuna's gRPC storage proxy: the workers hold "
            "no database connection, the proxy holds --threads.")
    example = ("study proxy --storage postgresql://user:pass@db-host/studies --host 0.0.0.0 --port 13000\n"
               "  study worker --name shoes-v3 --storage grpc://proxy-host:13000   # on each worker machine")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--storage", default=os.environ.get("STUDY_STORAGE"),
                            required="STUDY_STORAGE" not in os.environ,
                            help="the database the proxy serves, postgresql://... (default: $STUDY_STORAGE)")
        parser.add_argument("--host", default="127.0.0.1",
                            help="address to bind (default: %(default)s; 0.0.0.0 serves other machines, "
                                 "without a password: keep it on a private network)")
        parser.add_argument("--port", type=int, default=13000, help="port (default: %(default)s)")
        parser.add_argument("--threads", type=int, default=16,
                            help="requests served at once, and database connections held (default: "
                                 "%(default)s)")

    def take_action(self, args: argparse.Namespace) -> int:
        from study.errors import UserInputError
        from study.storage.database import serve_proxy  # optuna and grpc: on use, never for --help
        from study.storage.urls import is_grpc, is_journal, redact

        if is_grpc(args.storage) or is_journal(args.storage):
            raise UserInputError(f"study proxy serves a database (postgresql://..., sqlite:///...), got "
                                 f"{redact(args.storage)}.")
        if args.threads < 1:
            raise UserInputError(f"--threads must be at least 1, got {args.threads}.")
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"warning: binding to {args.host}: the gRPC proxy has no login, so anyone who can reach "
                  "this port can read and write the studies.", file=sys.stderr)

        def ready() -> None:
            print(f"gRPC storage proxy for {redact(args.storage)} on grpc://{args.host}:{args.port} "
                  f"({args.threads} threads and database connections; Ctrl-C stops)", flush=True)

        try:
            serve_proxy(args.storage, host=args.host, port=args.port, threads=args.threads, on_ready=ready)
        except KeyboardInterrupt:
            print("proxy stopped", file=sys.stderr)
        return 0


COMMAND = Proxy()
