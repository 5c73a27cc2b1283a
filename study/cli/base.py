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
