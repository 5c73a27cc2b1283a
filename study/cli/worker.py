"""``study worker``: join an existing study from this shell or machine and run its trials."""

from __future__ import annotations

import argparse

from study.cli.base import Command, add_storage, add_study_name


class Worker(Command):
    name = "worker"
    help = "Join an existing study from this shell or machine and run its trials."
    example = "study worker shoes-v3 --storage postgresql://user:pass@db-host/studies"
    training = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_name(parser, default=None, required=True, help_="the study to join (it must exist)")
        add_storage(parser)
        parser.add_argument("--worker-index", type=int, default=0,
                            help="distinct per worker, seeds its sampler (default: derived from host and "
                                 "process id; give 1..N for reproducible seeds)")
        parser.add_argument("--timeout", type=float,
                            help="seconds after which this worker starts no new trial")
        parser.add_argument("--device", help="auto (default: the stored config's), cpu, cuda, cuda:N")

    def take_action(self, args: argparse.Namespace) -> int:
        from study.runtime.session import join_study  # torch: on use, never for --help

        return join_study(args.name, args.storage, worker_index=args.worker_index, timeout=args.timeout,
                          device=args.device, quiet=args.quiet)


COMMAND = Worker()
