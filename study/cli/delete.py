"""``study delete``: a study, its checkpoints (runs/NAME) and its artifacts, after a confirmation. No
torch."""

from __future__ import annotations

import argparse
import sys

from study.cli.base import Command, add_storage, add_study_name


class Delete(Command):
    name = "delete"
    help = "Delete a study with its checkpoints (runs/NAME) and its artifacts."
    example = "study delete shoes-v3                # asks first\n  study delete shoes-v3 --yes"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_name(parser, default=None, required=True)
        add_storage(parser)
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument("--force", action="store_true",
                            help="delete even while one of its trials is running (that process then stops, "
                                 "writing nothing)")

    def take_action(self, args: argparse.Namespace) -> int:
        # optuna: on use, never for --help
        from study.errors import UserInputError
        from study.runtime.liveness import refuse_while_running
        from study.runtime.studies import load_existing, remove_study
        from study.storage.database import StorageConfig, open_storage

        storage = open_storage(StorageConfig(url=args.storage), must_exist=True)
        study = load_existing(args.name, args.storage, writes=True)
        n = len(study.get_trials(deepcopy=False))
        if not args.force:  # before the question: a running trial is said first
            refuse_while_running(study, grace=StorageConfig().grace, action="deleting")
        if not args.yes:
            if not sys.stdin.isatty():
                raise UserInputError(f"Deleting study {args.name!r} ({n} trials, its checkpoints and "
                                     "artifacts) needs a confirmation: run it in a terminal, or pass --yes.")
            answer = input(f"delete study {args.name!r} with {n} trials, its checkpoints and artifacts? "
                           "[y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        remove_study(storage, args.name, force=args.force)
        print(f"deleted study {args.name!r} ({n} trials, checkpoints and artifacts)")
        return 0


COMMAND = Delete()
