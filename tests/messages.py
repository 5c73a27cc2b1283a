"""Matching user-facing text in tests whatever its line breaks.

The CLI wraps every error at 100 columns and ``study data check`` wraps its warnings, and where a line breaks
depends on the length of the paths in the message (the temporary folder, the clone's folder). So tests match
phrases with every run of whitespace, line breaks and indents included, collapsed to one space, in the text
and in the phrase alike: ``assert_says(err, "needs behaviour features")`` holds however the words were
wrapped. The wrapper never breaks inside a word (``break_long_words=False``, ``break_on_hyphens=False``),
so a path or a single token is never split either.

A plain helper module, not a test module: test modules import it, never each other.
"""

from __future__ import annotations

import itertools
import re

_WHITESPACE = re.compile(r"\s+")


def flatten(text: object) -> str:
    """``text`` with every run of whitespace (newlines and indents included) replaced by one space."""
    return _WHITESPACE.sub(" ", str(text))


def says(text: object, phrase: str) -> bool:
    """Whether ``text`` contains ``phrase``, whitespace normalised in both: for ``any(...)`` over warnings."""
    return flatten(phrase) in flatten(text)


def assert_says(text: object, *phrases: str) -> None:
    """Assert that ``text`` contains every one of ``phrases``, whitespace normalised in both; a failure names
    the phrases missing and shows the normalised text."""
    flat = flatten(text)
    missing = [phrase for phrase in phrases if flatten(phrase) not in flat]
    assert not missing, f"missing {missing!r} in the text (whitespace normalised):\n{flat}"


def assert_not_says(text: object, *phrases: str) -> None:
    """Assert that ``text`` contains none of ``phrases``, whitespace normalised in both; a failure names the
    phrases found and shows the normalised text."""
    flat = flatten(text)
    found = [phrase for phrase in phrases if flatten(phrase) in flat]
    assert not found, f"unexpected {found!r} in the text (whitespace normalised):\n{flat}"


def assert_one_paragraph(text: str, width: int = 100) -> None:
    """Assert that ``text`` (the CLI's stderr) is one paragraph wrapped at ``width`` columns, wherever its
    lines break: no line is indented (a later paragraph's lines are) and every line but the last is full,
    the next line's first word would not have fitted on it (a short line means a new paragraph)."""
    lines = str(text).strip("\n").split("\n")
    for line, after in itertools.pairwise(lines):
        first_word = after.split(" ", 1)[0]
        assert first_word and len(line) + 1 + len(first_word) > width, (
            f"not one paragraph wrapped at {width} columns: {after!r} follows the short line {line!r}")
