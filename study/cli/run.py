"""``study run``: create or resume a study and run it until it has ``--n-trials`` finished trials (the run
itself is ``study.runtime.session``)."""

from __future__ import annotations

import argparse

from study.cli.base import Command, add_column_map, add_study_name
from study.storage.urls import DEFAULT_STORAGE


class Run(Command):
    name = "run"
    help = "Create or resume a study and run it until it has --n-trials finished trials."
    example = ("study run\n"
               "  study run --data pairs.csv             # your judged pairs: query,title,label is enough\n"
               "  study run --data shop.csv --map query=search_term --map label=relevance\n"
               "  study run --data pairs.csv --print-config > my.toml\n"
               "  study run --config my.toml --name shoes-v3 --n-trials 200 --workers 4\n"
               "  study run shoes-v3                   # same name again = resume\n"
               "  study run --set train.epochs=2 --set model.n_layers=1\n"
               "  study run --name shoes-v4 --warm-start-from shoes-v3 --enqueue '{\"train.head_lr\": 0.01}'")
    training = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--config", help="TOML config (default: the built-in synthetic catalogue)")
        parser.add_argument("--data",
                            help="judged pairs: CSV, TSV, Parquet, JSON lines, or an ESCI/WANDS/Home Depot "
                                 "file or folder (sets data.path; the study is named after it unless --name)")
        parser.add_argument("--source", help="force the data source: file, esci, wands, homedepot (default: "
                                             "auto, detected from the file and column names)")
        add_column_map(parser, "column mapping, e.g. query=search_term (repeatable)")
        add_study_name(parser, default=None, help_="study name (default: the data file's name, else "
                                                    "'default'; an existing name resumes that study)")
        parser.add_argument("--n-trials", type=int, help="total finished trials the study should reach")
        parser.add_argument("--workers", type=int,
                            help="worker processes on this machine sharing the storage")
        parser.add_argument("--timeout", type=float, help="seconds after which no new trial is started")
        parser.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
        parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                            help="override one config field, e.g. train.epochs=3 (a fixed field is no longer "
                                 "searched)")
        parser.add_argument("--new", action="store_true", help="delete an existing study of this name first")
        parser.add_argument("--force", action="store_true",
                            help="with --new: replace the study even while one of its trials is running "
                                 "(that process then stops, writing nothing)")
        parser.add_argument("--enqueue", action="append", default=[], metavar="JSON",
                            help="run these searched values first, e.g. '{\"train.head_lr\": 0.01}' "
                                 "(repeatable; [[enqueue]] tables in the config do the same)")
        parser.add_argument("--tracker", choices=("mlflow", "wandb"),
                            help="also log every finished trial to MLflow or Weights & Biases (needs the "
                                 "extra study[mlflow] or study[wandb]; study.tracker_uri sets where)")
        parser.add_argument("--warm-start-from", metavar="STUDY",
                            help="run the best finished configs of another study in the same storage first "
                                 "(study.warm_start_trials of them, default 5)")
        parser.add_argument("--print-config", action="store_true",
                            help="print the effective config as TOML (for --config) and exit without running")
        parser.add_argument("--storage", default=None,
                            help="SQLAlchemy URL or journal file (default: $STUDY_STORAGE or "
                                 f"{DEFAULT_STORAGE})")

    def take_action(self, args: argparse.Namespace) -> int:
        import dataclasses  # the run's imports load torch: on use, never for --help

        from study.runtime.session import RunRequest, resolve_config, run_study
        from study.toml_out import config_to_toml

        _refuse_a_file_as_name(args)
        request = RunRequest(**{f.name: getattr(args, f.name) for f in dataclasses.fields(RunRequest)
                                if hasattr(args, f.name)})
        config, cuts = resolve_config(request)
        if args.print_config:
            print(config_to_toml(config), end="")
            return 0
        run_study(config, cuts=cuts, new=args.new, force=args.force, quiet=args.quiet)
        return 0


def _refuse_a_file_as_name(args: argparse.Namespace) -> None:
    """``study run pairs.csv`` meant ``--data pairs.csv``: a study NAME that is an existing file is refused
    rather than becoming a study named after the file's path on the built-in catalogue."""
    import os

    if args.study_name is not None and os.path.isfile(args.study_name) and args.data is None:
        from study.errors import UserInputError  # a user error: on use only

        raise UserInputError(f"{args.study_name!r} is a file, and `study run NAME` takes a study name; to "
                             f"run a study on the file, pass it with --data: study run --data "
                             f"{args.study_name}")


COMMAND = Run()
