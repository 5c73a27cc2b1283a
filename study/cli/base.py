"""What every command is made of, as Optuna's ``cli.py`` has it: one class per command with its help, its
example, ``add_arguments`` and ``take_action``; plus the options every command takes. Light on purpose:
``study --help`` builds every command's parser, so a command imports what it runs inside ``take_action``."""

from __future__ import annotations

import argparse
import os

from study.storage.urls import DEFAULT_STORAGE


class Command:
    """One ``study`` command: ``name`` (under ``group`` for ``study data check``), one line of ``help``, an
    ``example`` for the epilog, its options and what it does."""

    name: str = ""
    group: str | None = None
    help: str = ""
    example: str = ""
    training: bool = False  # loads transformers: its logging is quietened first

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        raise NotImplementedError

    def take_action(self, args: argparse.Namespace) -> int:
        raise NotImplementedError


def add_study_name(parser: argparse.ArgumentParser, *, default: str | None = "default",
                   required: bool = False, help_: str = "the study") -> None:
    """The study a command acts on, the same way for every command: a positional NAME, or ``--name NAME``
    (the older spelling, kept as an alias). ``resolve_study_name`` puts the one given in ``args.name``."""
    shown = (" (required)" if required else f" (default: {default})" if default else "")
    parser.add_argument("study_name", nargs="?", metavar="NAME", help=f"{help_}{shown}")
    parser.add_argument("--name", dest="study_name_option", metavar="NAME", help="the same as NAME")
    parser.set_defaults(study_name_default=default, study_name_required=required)


def resolve_study_name(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """``args.name`` from NAME or ``--name`` (both given must agree), else the command's default."""
    if not hasattr(args, "study_name_default"):
        return
    given = [n for n in (args.study_name, args.study_name_option) if n is not None]
    if len(set(given)) > 1:
        parser.error(f"two study names given: {given[0]!r} and --name {given[1]!r}; give one")
    if not given and args.study_name_required:
        parser.error("the study NAME is required (as NAME or --name NAME)")
    args.name = given[0] if given else args.study_name_default


def add_storage(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage", default=os.environ.get("STUDY_STORAGE", DEFAULT_STORAGE),
                        help="SQLAlchemy URL or journal file (default: $STUDY_STORAGE or %(default)s)")


def add_column_map(parser: argparse.ArgumentParser, help_: str) -> None:
    parser.add_argument("--map", action="append", default=[], metavar="CANONICAL=COLUMN", help=help_)


def common_options() -> argparse.ArgumentParser:
    """Options every command takes: how much it says, and a log file."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="warnings and errors only, no progress bars")
    common.add_argument("-v", "--verbose", action="store_true", help="debug messages too")
    common.add_argument("--log-file", metavar="PATH",
                        help="also write every message (debug level included) to PATH, appending")
    return common
