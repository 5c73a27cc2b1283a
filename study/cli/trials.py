"""``study trials``: every trial of a study as a table, CSV or JSON (rows from ``study.views``). No torch."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from study.cli.base import Command, add_storage, add_study_name


class Trials(Command):
    name = "trials"
    help = "Every trial of a study: state, values, duration, epochs run, why pruned or failed, params."
    example = ("study trials shoes-v3\n  study trials shoes-v3 --format csv > trials.csv\n"
               "  study trials shoes-v3 --format json")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_name(parser, default=None, required=True)
        add_storage(parser)
        parser.add_argument("--format", choices=("table", "csv", "json"), default="table",
                            help="output format (default: %(default)s)")

    def take_action(self, args: argparse.Namespace) -> int:
        from study.runtime.studies import load_existing  # optuna: on use, never for --help
        from study.views import param_headers, trial_rows

        rows = trial_rows(load_existing(args.name, args.storage))
        columns = list(dict.fromkeys(k for row in rows for k in row))
        if args.format == "json":
            print(json.dumps(rows, indent=1, default=str))
        elif args.format == "csv":
            writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        else:
            short = param_headers(columns, {k for row in rows for k in row if "." in k})
            cells = [[_cell(row.get(c))[:60 if c == "reason" else 40] for c in columns] for row in rows]
            widths = [max([len(short[c])] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
            print("  ".join(short[c].ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
            for r in cells:
                print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        return 0


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return (f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4
                else f"{value:.4f}".rstrip("0").rstrip("."))
    return str(value)


COMMAND = Trials()
