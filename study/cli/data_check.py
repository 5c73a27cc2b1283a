"""``study data check``: validate a data file, print what is wrong and where, or a summary and the command
that runs a study on it."""

from __future__ import annotations

import argparse
import shlex

from study.cli.base import Command, add_column_map


class DataCheck(Command):
    name = "check"
    group = "data"
    help = "Validate a data file: print what is wrong and where, or a summary."
    example = ("study data check my.csv\n  study data check ./wands --source wands\n"
               "  study data check pairs.csv --map query=search_term --map label=relevance")
    training = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("path", help="CSV, TSV, Parquet, JSON lines, or a directory for an adapter")
        parser.add_argument("--source", help="file, esci, wands or homedepot (default: detected from the "
                                             "file and column names)")
        parser.add_argument("--products", help="ESCI products parquet")
        add_column_map(parser, "column mapping, e.g. query=search_term")

    def take_action(self, args: argparse.Namespace) -> int:
        from study.data.config import DataConfig  # pandas and the loaders: on use only
        from study.data.sources import load_dataset
        from study.data.summary import check_file_report
        from study.runtime.request import check_data, parse_column_maps

        columns = parse_column_maps(args.map)
        cfg = DataConfig.from_dict({"source": args.source or "auto", "path": args.path,
                                    "products_path": args.products, "columns": columns})
        check_data(cfg, columns=columns, origin="--map")  # before anything is read
        # the same checks as `study run`; the report lists the warnings
        pairs = load_dataset(cfg, log_warnings=False)
        print(check_file_report(pairs))
        print(f"run a study on it:\n  {run_command(args, columns)}")
        return 0


def run_command(args: argparse.Namespace, columns: dict[str, str]) -> str:
    """The ``study run`` command for the file ``study data check`` just read, with its --source and --map."""
    from study.toml_out import toml_value  # the config's module: on use only

    parts = ["study", "run", "--data", args.path]
    if args.source:
        parts += ["--source", args.source]
    for canonical, column in columns.items():
        parts += ["--map", f"{canonical}={column}"]
    if args.products:
        parts += ["--set", f"data.products_path={toml_value(args.products)}"]
    return " ".join(shlex.quote(p) for p in parts)


COMMAND = DataCheck()
