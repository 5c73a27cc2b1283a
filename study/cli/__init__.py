"""The ``study`` command line. Each command lives in one module of this package (its help, example, options
and action: ``study.cli.run`` for ``study run``); this module builds the parser from them, sets up the
console and turns a user error into one paragraph and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Before torch loads: OpenMP threads that spin at barriers lose their core whenever another process needs it,
# and a CPU step then runs 3-4x slower (bench/RESULTS.md, "Contention"). Sleeping waiters cost little alone.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from study import __version__
from study.cli.base import Command, common_options, resolve_study_name
from study.cli.console import ClosedPipeSafe, setup_logging, wrap_error
from study.errors import UserInputError
from study.storage.urls import redact

__all__ = ["HANDLERS", "build_parser", "main", "wrap_error"]

# command -> the module that holds it, in the order `study --help` lists them
HANDLERS = {
    "run": "study.cli.run", "worker": "study.cli.worker", "status": "study.cli.status",
    "best": "study.cli.best", "list": "study.cli.listing", "trials": "study.cli.trials",
    "compare": "study.cli.compare", "delete": "study.cli.delete", "data": "study.cli.data_check",
    "report": "study.cli.report", "dashboard": "study.cli.dashboard", "export": "study.cli.export",
    "rank": "study.cli.rank", "cache": "study.cli.cache", "proxy": "study.cli.proxy",
}
GROUPS = {"data": "Inspect data files."}  # commands with subcommands: `study data check`


def _add(subs: argparse._SubParsersAction, command: Command, common: argparse.ArgumentParser, *,
         with_options: bool) -> None:
    parser = subs.add_parser(command.name, help=command.help, description=command.help,
                             epilog=f"example:\n  {command.example}", parents=[common],
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    if with_options:
        command.add_arguments(parser)
    parser.set_defaults(handler=command, own_parser=parser)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Every command's parser; given the command line, only the named command gets its options (the others
    are listed by name and help, which is all that ``study --help`` or a mistyped command shows)."""
    named = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    parser = argparse.ArgumentParser(
        prog="study",
        description="Tune BERT + behaviour-feature rankers for shop search with Optuna; every trial is "
                    "kept in a database so studies resume after any crash.",
        epilog="example:\n  study run            # the built-in catalogue, ./studies.db\n  study status",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"study {__version__}")
    parser.set_defaults(handler=None, own_parser=parser)
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    common = common_options()
    for name, module in HANDLERS.items():
        command: Command = importlib.import_module(module).COMMAND
        with_options = named is None or named == name or named not in HANDLERS
        if name not in GROUPS:
            _add(subs, command, common, with_options=with_options)
            continue
        group = subs.add_parser(name, help=GROUPS[name], description=GROUPS[name],
                                epilog=f"example:\n  {command.example}",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        group.set_defaults(handler=None, own_parser=group)
        _add(group.add_subparsers(dest=f"{name}_command", metavar="COMMAND"), command, common,
             with_options=with_options)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args, extra = parser.parse_known_args(argv)
    if extra:  # the command's own usage, not the top-level one
        args.own_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.handler is None:  # `study` or `study data` alone
        parser.print_help()
        return 0
    resolve_study_name(args, args.own_parser)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ClosedPipeSafe(sys.stdout), ClosedPipeSafe(sys.stderr)
    try:
        return _dispatch(args)
    finally:
        sys.stdout, sys.stderr = streams


def _dispatch(args: argparse.Namespace) -> int:
    setup_logging(args, training=args.handler.training)
    from study.runtime.signals import Terminated, install_sigterm  # loads optuna: lazy, as in setup_logging

    install_sigterm()
    try:
        return int(args.handler.take_action(args) or 0)
    except UserInputError as exc:
        print(wrap_error(redact(str(exc))), file=sys.stderr)
        return 2
    except Terminated:
        print("terminated: the running trial was closed and will continue from its checkpoint next time.",
              file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted: the running trial was closed and will continue from its checkpoint next time.",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
