"""``study rank``: score candidate rows with an exported model (``study.export.scoring``)."""

from __future__ import annotations

import argparse

from study.cli.base import Command, add_column_map


class Rank(Command):
    name = "rank"
    help = ("Score candidate (query, product) rows with an exported model and write them ordered by score "
            "within each query, with score and rank columns.")
    example = ("study rank --model models/shoes-v3 --input candidates.csv --output ranked.csv\n"
               "  study rank --model models/shoes-v3 --input candidates.parquet --output ranked.jsonl\n"
               "  study rank --model models/shoes-v3 --input other.csv --map query=search_term --output "
               "ranked.csv   # a file shaped unlike the training file")
    training = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", required=True, help="directory written by `study export`")
        parser.add_argument("--input", required=True, help="candidates: CSV, TSV, Parquet or JSON lines")
        parser.add_argument("--output", required=True, help="ranked rows: .csv, .parquet or .jsonl")
        parser.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N")
        add_column_map(parser, "column mapping, e.g. query=search_term (repeatable); needed only for a "
                               "file whose columns are named unlike the training file's (the export "
                               "remembers those)")

    def take_action(self, args: argparse.Namespace) -> int:
        # torch: on use, never for --help
        from study.export.scoring import Ranker, check_output, read_candidates, write_ranked
        from study.runtime.request import parse_column_maps

        columns = parse_column_maps(args.map)
        check_output(args.output, args.input)  # a bad output is refused before the model is loaded or
        # anything is scored
        ranker = Ranker.load(args.model, device=args.device)
        frame = read_candidates(args.input, columns={**ranker.columns, **columns})
        ranked = ranker.rank(frame, source=str(args.input), columns=columns, origin="--map")
        write_ranked(ranked, args.output)
        print(f"ranked {len(ranked):,} candidates of {ranked['query_id'].nunique():,} queries into "
              f"{args.output}")
        return 0


COMMAND = Rank()
