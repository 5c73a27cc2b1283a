"""The ``study`` command line: argument parsing and dispatch. The commands themselves live in
``study.commands``; this module turns user errors into one paragraph and exit code 2."""

from __future__ import annotations

import argparse
import importlib
import itertools
import logging
import os
import sys
import textwrap
import warnings

# Before torch loads: OpenMP threads that spin at barriers lose their core whenever another process needs it,
# and a CPU step then runs 3-4x slower (bench/RESULTS.md, "Contention"). Sleeping waiters cost little alone.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from study import __version__
from study.errors import UserInputError
from study.storage.urls import DEFAULT_STORAGE, redact

EXAMPLES = {
    "run": "study run\n"
           "  study run --data pairs.csv             # your judged pairs: query,title,label is enough\n"
           "  study run --data shop.csv --map query=search_term --map label=relevance\n"
           "  study run --data pairs.csv --print-config > my.toml\n"
           "  study run --config my.toml --name shoes-v3 --n-trials 200 --workers 4\n"
           "  study run --name shoes-v3            # same name again = resume\n"
           "  study run --set train.epochs=2 --set model.n_layers=1\n"
           "  study run --name shoes-v4 --warm-start-from shoes-v3 --enqueue '{\"train.head_lr\": 0.01}'",
    "worker": "study worker --name shoes-v3 --storage postgresql://user:pass@db-host/studies",
    "status": "study status --name shoes-v3\n"
              "  study status                      # every study in the storage",
    "best": "study best --name shoes-v3 --json",
    "list": "study list\n  study list --storage postgresql://user:pass@db-host/studies",
    "trials": "study trials shoes-v3\n  study trials shoes-v3 --format csv > trials.csv\n"
              "  study trials shoes-v3 --format json",
    "compare": "study compare shoes-v3 shoes-v4      # test metrics side by side, paired intervals",
    "delete": "study delete shoes-v3                # asks first\n  study delete shoes-v3 --yes",
    "data check": "study data check my.csv\n  study data check ./wands --source wands\n"
                  "  study data check pairs.csv --map query=search_term --map label=relevance",
    "report": "study report --name shoes-v3 --out report.html\n"
              "  study report --name demo --storage sqlite:////data/studies.db --out reports/demo.html",
    "dashboard": "study dashboard                                    # ./studies.db on http://127.0.0.1:8080/\n"
                 "  study dashboard --storage postgresql://user:pass@db-host/studies --port 8081\n"
                 "  study dashboard --storage journal:///shared/fs/study.log --artifacts "
                 "/shared/fs/artifacts",
    "export": "study export --name shoes-v3 --out models/shoes-v3\n"
              "  study export --name shoes-v3 --out models/shoes-v3-full --retrain   # refit on train + "
              "validation",
    "rank": "study rank --model models/shoes-v3 --input candidates.csv --output ranked.csv\n"
            "  study rank --model models/shoes-v3 --input candidates.parquet --output ranked.jsonl\n"
            "  study rank --model models/shoes-v3 --input export.csv --map query=search_term --output "
            "ranked.csv",
}


TRAINING_COMMANDS = {"run", "worker", "data", "report", "export", "rank"}
# which module runs each command (imported on use)
HANDLERS = {
    "run": "study.commands", "worker": "study.commands", "data": "study.commands",
    "status": "study.show", "best": "study.show", "list": "study.show", "trials": "study.show",
    "compare": "study.show", "delete": "study.show",
    "report": "study.extra_commands", "dashboard": "study.extra_commands", "export": "study.extra_commands",
    "rank": "study.extra_commands",
}


def _storage_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", default=os.environ.get("STUDY_STORAGE", DEFAULT_STORAGE),
                   help="SQLAlchemy URL or journal file (default: $STUDY_STORAGE or %(default)s)")


def _common() -> argparse.ArgumentParser:
    """Options every command takes: how much it says, and a log file."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true",
                        help="warnings and errors only, no progress bars")
    common.add_argument("-v", "--verbose", action="store_true", help="debug messages too")
    common.add_argument("--log-file", metavar="PATH",
                        help="also write every message (debug level included) to PATH, appending")
    return common


_COMMON = _common()


def _sub(subs: argparse._SubParsersAction, name: str, help_: str,
         example_key: str | None = None) -> argparse.ArgumentParser:
    epilog = f"example:\n  {EXAMPLES[example_key or name]}"
    return subs.add_parser(name, help=help_, description=help_, epilog=epilog, parents=[_COMMON],
                           formatter_class=argparse.RawDescriptionHelpFormatter)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="study",
        description="Tune BERT + behaviour-feature rankers for shop search with Optuna; every trial is "
                    "kept in a database so studies resume after any crash.",
        epilog="example:\n  study run            # the built-in catalogue, ./studies.db\n  study status",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"study {__version__}")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = _sub(subs, "run", "Create or resume a study and run it until it has --n-trials finished trials.")
    run.add_argument("--config", help="TOML config (default: the built-in synthetic catalogue)")
    run.add_argument("--data",
                     help="judged pairs: CSV, TSV, Parquet, JSON lines, or an ESCI/WANDS/Home Depot file "
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
                     help="override one config field, e.g. train.epochs=3 (a fixed field is no longer "
                          "searched)")
    run.add_argument("--new", action="store_true", help="delete an existing study of this name first")
    run.add_argument("--enqueue", action="append", default=[], metavar="JSON",
                     help="run these searched values first, e.g. '{\"train.head_lr\": 0.01}' (repeatable; "
                          "[[enqueue]] tables in the config do the same)")
    run.add_argument("--tracker", choices=("mlflow", "wandb"),
                     help="also log every finished trial to MLflow or Weights & Biases (needs the extra "
                          "study[mlflow] or study[wandb]; study.tracker_uri sets where)")
    run.add_argument("--warm-start-from", metavar="STUDY",
                     help="run the best finished configs of another study in the same storage first "
                          "(study.warm_start_trials of them, default 5)")
    run.add_argument("--print-config", action="store_true",
                     help="print the effective config as TOML (for --config) and exit without running")
    run.add_argument("--storage", default=None,
                     help=f"SQLAlchemy URL or journal file (default: $STUDY_STORAGE or {DEFAULT_STORAGE})")

    worker = _sub(subs, "worker", "Join an existing study from this shell or machine and run its trials.")
    worker.add_argument("--name", required=True, help="the study to join (it must exist)")
    _storage_arg(worker)
    worker.add_argument("--worker-index", type=int, default=0,
                        help="distinct per worker, seeds its sampler (default: derived from host and process "
                             "id; give 1..N for reproducible seeds)")
    worker.add_argument("--timeout", type=float, help="seconds after which this worker starts no new trial")
    worker.add_argument("--device", help="auto (default: the stored config's), cpu, cuda, cuda:N")

    status = _sub(subs, "status",
                  "Trial counts by state, the best value and params, running trials and their age.")
    status.add_argument("--name", help="the study (default: list every study in the storage)")
    _storage_arg(status)

    best = _sub(subs, "best", "The best trial: value, params, validation and test metrics, checkpoint.")
    best.add_argument("--name", default="default", help="study name (default: %(default)s)")
    _storage_arg(best)
    best.add_argument("--json", action="store_true", help="machine-readable output")

    listing = _sub(subs, "list",
                   "One line per study: trial counts by state, best value, data, last activity.")
    _storage_arg(listing)

    trials = _sub(subs, "trials", "Every trial of a study: state, values, duration, epochs, reason, params.")
    trials.add_argument("name", help="study name")
    _storage_arg(trials)
    trials.add_argument("--format", choices=("table", "csv", "json"), default="table",
                        help="output format (default: %(default)s)")

    compare = _sub(subs, "compare", "Test metrics and baselines of several studies side by side, with paired "
                                    "intervals where they share test queries.")
    compare.add_argument("names", nargs="+", metavar="NAME", help="two or more study names")
    _storage_arg(compare)

    delete = _sub(subs, "delete", "Delete a study with its checkpoints (runs/NAME) and its artifacts.")
    delete.add_argument("name", help="study name")
    _storage_arg(delete)
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    data = subs.add_parser("data", help="Inspect data files.", description="Inspect data files.",
                           epilog=f"example:\n  {EXAMPLES['data check']}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    data_subs = data.add_subparsers(dest="data_command", metavar="COMMAND")
    check = _sub(data_subs, "check", "Validate a data file: print what is wrong and where, or a summary.",
                 "data check")
    check.add_argument("path", help="CSV, TSV, Parquet, JSON lines, or a directory for an adapter")
    check.add_argument("--source", help="file, esci, wands or homedepot (default: detected from the file and "
                                        "column names)")
    check.add_argument("--products", help="ESCI products parquet")
    check.add_argument("--map", action="append", default=[], metavar="CANONICAL=COLUMN",
                       help="column mapping, e.g. query=search_term")
    report = _sub(subs, "report", "Write one self-contained HTML report (plotly inlined, works offline): the "
                                     "search, then the best trial's ranking quality against the baselines.")
    report.add_argument("--name", default="default", help="study name (default: %(default)s)")
    _storage_arg(report)
    report.add_argument("--out", help="HTML file to write (default: reports/<name>.html)")
    report.add_argument("--device", default="auto", help="where the best model re-scores the test split "
                                                         "(auto, cpu, cuda; default: %(default)s)")

    dashboard = _sub(subs, "dashboard", "Serve optuna-dashboard on the study storage (live; safe beside "
                                           "running SQLite workers), bound to 127.0.0.1 unless told "
                                           "otherwise.")
    _storage_arg(dashboard)
    dashboard.add_argument("--host", default="127.0.0.1",
                           help="address to bind (default: %(default)s; 0.0.0.0 exposes it without a "
                                "password)")
    dashboard.add_argument("--port", type=int, default=8080,
                           help="port (default: %(default)s; 0 = any free port)")
    dashboard.add_argument("--artifacts", default="runs/artifacts",
                           help="trial artifact folder written by `study run` (default: %(default)s)")

    export = _sub(subs, "export", "Write the best trial as a self-contained model directory: safetensors "
                                     "weights, tokenizer, feature scaler, config, metrics and a model card.")
    export.add_argument("--name", default="default", help="study name (default: %(default)s)")
    _storage_arg(export)
    export.add_argument("--out", required=True, help="directory to write (it must not exist, unless --force)")
    export.add_argument("--retrain", action="store_true",
                        help="first refit the best config on train + validation for its best epoch count")
    export.add_argument("--device", default="auto", help="device for --retrain (default: %(default)s)")
    export.add_argument("--force", action="store_true", help="replace an existing exported model at --out")

    rank = _sub(subs, "rank", "Score candidate (query, product) rows with an exported model and write them "
                                 "ordered by score within each query, with score and rank columns.")
    rank.add_argument("--model", required=True, help="directory written by `study export`")
    rank.add_argument("--input", required=True, help="candidates: CSV, TSV, Parquet or JSON lines")
    rank.add_argument("--output", required=True, help="ranked rows: .csv, .parquet or .jsonl")
    rank.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N")
    rank.add_argument("--map", action="append", default=[], metavar="CANONICAL=COLUMN",
                      help="column mapping, e.g. query=search_term (repeatable)")
    return parser


def _setup_logging(args: argparse.Namespace) -> None:
    import optuna  # optuna: ~0.2 s; --help and usage errors (parsed before this) never need it

    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    handlers: list[logging.Handler] = [console]
    if args.log_file:
        to_file = logging.FileHandler(args.log_file, encoding="utf-8")
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(to_file)
    logging.basicConfig(level=logging.DEBUG if args.log_file else level, format="%(message)s",
                        handlers=handlers, force=True)
    if not args.verbose:
        for name in ("study.data", "study.models"):
            logging.getLogger(name).setLevel(logging.WARNING if not args.log_file else logging.INFO)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*FutureWarning.*")
    # transformers alone takes a second to import: only where it is used
    if args.command in TRAINING_COMMANDS:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from transformers.utils import logging as hf_logging  # transformers: ~1 s, training commands only

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
    args, extra = parser.parse_known_args(argv)
    if extra:  # the command's own usage, not the top-level one
        command = (parser._subparsers._group_actions[0].choices.get(args.command, parser) if args.command
                   else parser)
        if args.command == "data" and getattr(args, "data_command", None):
            command = command._subparsers._group_actions[0].choices[args.data_command]
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None or (args.command == "data" and args.data_command is None):
        parser.print_help()
        return 0
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _ClosedPipeSafe(sys.stdout), _ClosedPipeSafe(sys.stderr)
    try:
        return _dispatch(args)
    finally:
        sys.stdout, sys.stderr = streams


_PATH_SPACE = "\ue000"  # stands for a space inside a path while wrapping: textwrap never breaks at it


def _keep_paths_whole(paragraph: str) -> str:
    """``paragraph`` with the spaces inside paths made unbreakable: a space is kept whole when the word
    before it holds a path separator and does not end the path (``:``, ``,``, ``;``), or the word after it
    continues a path (holds a separator but does not start with one), so ``/Users/ann/My Drive/pairs.csv``
    stays on one line. Around an ordinary slash (``1/2``) this only keeps two words together."""
    words = paragraph.split(" ")
    out = [words[0]]
    for before, word in itertools.pairwise(words):
        in_path = (("/" in before or "\\" in before) and not before.endswith((":", ",", ";"))
                   or ("/" in word or "\\" in word) and not word.startswith(("/", "\\", "~")))
        out.append((_PATH_SPACE if in_path and before and word else " ") + word)
    return "".join(out)


def wrap_error(message: str, width: int = 100) -> str:
    """A user error as the console shows it: ``error: `` and the message wrapped at ``width`` columns, one
    paragraph per line of it (several problems: the lines after a numbered problem's first are indented).
    Neither a word nor a path is ever broken, so a long path may make its line longer than ``width``."""
    return "\n".join(
        textwrap.fill(_keep_paths_whole(paragraph), width=width, initial_indent="" if i else "error: ",
                      subsequent_indent="   " if i else "", break_long_words=False, break_on_hyphens=False)
        .replace(_PATH_SPACE, " ")
        for i, paragraph in enumerate(message.split("\n")))


def _dispatch(args: argparse.Namespace) -> int:
    _setup_logging(args)
    from study.runtime.liveness import (  # loads optuna: lazy, like in _setup_logging
        Terminated,
        install_sigterm,
    )

    install_sigterm()
    # only the command's own imports: status needs no torch
    module = importlib.import_module(HANDLERS[args.command])
    handler = getattr(module, f"cmd_{args.command}")
    try:
        return int(handler(args) or 0)
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
