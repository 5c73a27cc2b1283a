"""``study report``: one self-contained HTML file (``study.report``)."""

from __future__ import annotations

import argparse

from study.cli.base import Command, add_storage, add_study_name


class Report(Command):
    name = "report"
    help = ("Write one self-contained HTML report (plotly inlined, works offline): the search, then the best "
            "trial's ranking quality against the baselines.")
    example = ("study report shoes-v3 --out report.html\n"
               "  study report demo --storage sqlite:////data/studies.db --out reports/demo.html")
    training = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_study_name(parser)
        add_storage(parser)
        parser.add_argument("--out", help="HTML file to write (default: reports/<name>.html)")
        parser.add_argument("--device", default="auto", help="where the best model re-scores the test split "
                                                             "(auto, cpu, cuda; default: %(default)s)")

    def take_action(self, args: argparse.Namespace) -> int:
        # torch and plotly: on use, never for --help
        from study.report.build import build_report, report_path
        from study.runtime.studies import load_existing

        study = load_existing(args.name, args.storage)
        out = report_path(args.out, args.name)
        build_report(study, out=out, storage_url=args.storage, device=args.device)
        print(f"report: {out} ({out.stat().st_size / 1e6:.1f} MB; open it in a browser, it works offline)")
        return 0


COMMAND = Report()
