"""The ``study`` command line: argument parsing and dispatch. The commands themselves live in
``study.commands``; this module turns user errors into one paragraph and exit code 2."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import textwrap
import warnings

# Before torch loads: OpenMP threads that spin at barriers lose their core whenever another process needs it,
# and a CPU step then runs 3-4x slower (bench/RESULTS.md, "Contention"). Sleeping waiters cost little alone.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from study.data.errors import UserInputError
from study.storage import DEFAULT_STORAGE, redact

EXAMPLES = {
    "run": "study run\n  study run --data pairs.csv             # your judged pairs: query,title,label is enough\n"
           "  study run --data shop.csv --map query=search_term --map label=relevance\n"
           "  study run --data pairs.csv --print-config > my.toml\n"
           "  study run --config my.toml --name shoes-v3 --n-trials 200 --workers 4\n"
           "  study run --name shoes-v3            # same name again = resume\n"
           "  study run --set train.epochs=2 --set model.n_layers=1",
    "worker": "study worker --name shoes-v3 --storage postgresql://user:pass@db-host/studies",
    "status": "study status --name shoes-v3\n  study status                      # every study in the storage",
    "best": "study best --name shoes-v3 --json",
    "data check": "study data check my.csv\n  study data check ./wands --source wands\n"
                  "  study data check pairs.csv --map query=search_term --map label=relevance",
}


def _storage_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=os.environ.get("STUDY_STORAGE", DEFAULT_STORAGE),
                   help="SQLAlchemy URL or journal file (default: $STUDY_STORAGE or %(default)s)")


def _sub(subs: argparse._SubParsersAction, name: str, help_: str, example_key: str | None = None) -> argparse.ArgumentParser:
    epilog = f"example:\n  {EXAMPLES[example_key or name]}"
    return subs.add_parser(name, help=help_, description=help_, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="study",
        description="Tune BERT + behaviour-feature rankers for shop search with Optuna; every trial is kept in "
                    "a database so studies resume after any crash.",
        epilog="example:\n  study run            # the built-in catalogue, ./studies.db\n  study status",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = _sub(subs, "run", "Create or resume a study and run it until it has --n-trials finished trials.")
    run.add_argument("--config", help="TOML config (default: the built-in synthetic catalogue)")
    run.add_argument("--data", help="judged pairs: CSV, TSV, Parquet, JSON lines, or an ESCI/WANDS/Home Depot file "
                                    "or folder (sets data.path; the study is named after it unless --name)")
    run.add_argument("--source", help="force the data source: file, esci, wands, homedepot (default: auto, "
                                      "detected from the file and column names)")
    run.add_argument("--map", action="append", default=[], metavar="CANONICAL=COLUMN",
                     help="column mapping, e.g. query=search_term (repeatable)")
    run.add_argument("--name", help="study name (default: 'default'; an existing name resumes that study)")
    run.add_argument("--n-trials", type=int, help="total finished trials the study should reach")
    run.add_argument("--workers", type=int, help="worker processes on this machine sharing the storage")
    run.add_argument("--timeout", type=float, help="seconds after which no new trial is started")
    run.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override one config field, e.g. train.epochs=3 (a fixed field is no longer searched)")
    run.add_argument("--new", action="store_true", help="delete an existing study of this name first")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--print-config", action="store_true",
                     help="print the effective config as TOML (for --config) and exit without running")
    run.add_argument("--storage", default=None,
                     help=f"SQLAlchemy URL or journal file (default: $STUDY_STORAGE or {DEFAULT_STORAGE})")

    worker = _sub(subs, "worker", "Join an existing study from this shell or machine and run its trials.")
    worker.add_argument("--name", required=True)
    _storage_arg(worker)
    worker.add_argument("--worker-index", type=int, default=0,
                        help="distinct per worker, seeds its sampler (default: derived from host and process id; "
                             "give 1..N for reproducible seeds)")
    worker.add_argument("--timeout", type=float)
    worker.add_argument("--device")
    worker.add_argument("--quiet", action="store_true")

    status = _sub(subs, "status", "Trial counts by state, the best value and params, running trials and their age.")
    status.add_argument("--name")
    _storage_arg(status)

    best = _sub(subs, "best", "The best trial: value, params, validation and test metrics, checkpoint.")
    best.add_argument("--name", default="default")
    _storage_arg(best)
    best.add_argument("--json", action="store_true", help="machine-readable output")

    data = subs.add_parser("data", help="Inspect data files.", description="Inspect data files.")
    data_subs = data.add_subparsers(dest="data_command", metavar="COMMAND")
    check = _sub(data_subs, "check", "Validate a data file: print what is wrong and where, or a summary.", "data check")
    check.add_argument("path", help="CSV, TSV, Parquet, JSON lines, or a directory for an adapter")
    check.add_argument("--source", help="file, esci, wands or homedepot (default: detected from the file and "
                                        "column names)")
    check.add_argument("--products", help="ESCI products parquet")
    check.add_argument("--map", action="append", default=[], metavar="CANONICAL=COLUMN",
                       help="column mapping, e.g. query=search_term")
    from study import extra_commands

    extra_commands.add_parsers(subs, _sub, _storage_arg)
    return parser


def _setup_logging(quiet: bool) -> None:
    import optuna

    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    for name in ("data", "models"):
        logging.getLogger(name).setLevel(logging.WARNING)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*FutureWarning.*")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


class _ClosedPipeSafe:
    """An output stream that survives its reader going away (``study run 2>&1 | head``): the first write to a
    closed pipe sends the rest of that stream to /dev/null and the command carries on, so a study is not
    stopped (and its trial failed) by a closed pager."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def _closed(self) -> None:
        with open(os.devnull, "w") as devnull:
            try:
                os.dup2(devnull.fileno(), self._stream.fileno())  # also for the interpreter's final flush
            except (OSError, ValueError):
                pass
        self._stream = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._closed()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._closed()

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None or (args.command == "data" and args.data_command is None):
        parser.print_help()
        return 0
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ClosedPipeSafe(sys.stdout), _ClosedPipeSafe(sys.stderr)
    try:
        return _dispatch(args)
    finally:
        sys.stdout, sys.stderr = streams


def _dispatch(args: argparse.Namespace) -> int:
    _setup_logging(getattr(args, "quiet", False))
    from study import commands, extra_commands
    from study.liveness import Terminated, install_sigterm

    install_sigterm()
    handler = getattr(commands, f"cmd_{args.command}", None) or getattr(extra_commands, f"cmd_{args.command}")
    try:
        return int(handler(args) or 0)
    except UserInputError as exc:
        paragraphs = redact(str(exc)).split("\n")  # several problems: one paragraph each
        print("error: " + "\n".join(textwrap.fill(p, width=100, break_long_words=False, break_on_hyphens=False,
                                                  subsequent_indent="   " if i else "")
                                    for i, p in enumerate(paragraphs)), file=sys.stderr)
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
