"""The console around a command: logging as ``-q``, ``-v`` and ``--log-file`` ask, output streams that
survive a closed pipe, and a user error wrapped as one paragraph that never breaks a path."""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
import textwrap
import warnings


def setup_logging(args: argparse.Namespace, *, training: bool) -> None:
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
    if training:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        from transformers.utils import logging as hf_logging  # transformers: ~1 s, training commands only

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


class ClosedPipeSafe:
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
