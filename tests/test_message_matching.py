"""The phrase matching every test uses on user-facing text (tests/messages.py), and a check that no test
matches such text in a way a line break could defeat (issue 22)."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

from tests.messages import assert_not_says, assert_one_paragraph, assert_says, flatten, says

TESTS = Path(__file__).resolve().parent
# the exceptions whose text the CLI prints wrapped (UserInputError and its kinds)
USER_FACING = {"UserInputError", "StorageUnavailableError", "MissingCheckpointError", "DiskFullError",
               "DamagedCheckpointError"}
# what CLI output, `data check` reports, error text, warnings and log records are called in the tests
MESSAGE_TEXT = re.compile(r"\b(err|out|stderr|stdout|message|warning|report|checked|output|console"
                          r"|captured)\b|caplog|getMessage|str\(info|info\.value")
ON_PURPOSE = "# unnormalised on purpose"


def test_phrases_match_across_line_breaks_and_indents() -> None:
    wrapped = ("error: /tmp/x/pairs.csv: the model variant 'fusion' needs\n   behaviour  features; "
               "set\tmodel.variant")
    assert flatten(wrapped) == ("error: /tmp/x/pairs.csv: the model variant 'fusion' needs behaviour "
                                "features; set model.variant")
    assert_says(wrapped, "needs behaviour features", "set model.variant", "/tmp/x/pairs.csv")
    assert_says(ValueError("a\nb"), "a b")  # an exception: its text
    assert says(wrapped, "needs\nbehaviour") and not says(wrapped, "needs features")
    assert_not_says(wrapped, "Traceback", "needs features")


def test_a_failure_names_the_missing_phrase_and_shows_the_text() -> None:
    with pytest.raises(AssertionError) as info:
        assert_says("one\ntwo three", "one two", "two four")
    assert "missing ['two four']" in str(info.value) and "one two three" in str(info.value)
    with pytest.raises(AssertionError) as info:
        assert_not_says("one\ntwo", "one two")
    assert "unexpected ['one two']" in str(info.value)


def test_one_paragraph_means_every_line_but_the_last_is_full() -> None:
    words = " ".join(f"word{i}" for i in range(40))
    assert_one_paragraph(textwrap.fill(f"error: {words}", width=100))
    with pytest.raises(AssertionError):
        assert_one_paragraph(f"error: {words[:50]}\nsecond paragraph")


def _offences(path: Path) -> list[str]:
    """The lines of a test module that match user-facing text without normalising whitespace."""
    found = []
    source = path.read_text().splitlines()
    for node in ast.walk(ast.parse("\n".join(source), str(path))):
        if ON_PURPOSE in source[getattr(node, "lineno", 1) - 1]:
            continue
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "pytest.raises":
            match = next((k.value for k in node.keywords if k.arg == "match"), None)
            kind = ast.unparse(node.args[0]) if node.args else ""
            pattern = match.value if isinstance(match, ast.Constant) else ""
            if match is not None and (kind in USER_FACING or re.search(r"\s|\\s", str(pattern))):
                found.append(f"{path.name}:{node.lineno}: pytest.raises({kind}, match=...)")
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
            left, right = node.left, ast.unparse(node.comparators[0])
            literal = left.value if isinstance(left, ast.Constant) and isinstance(left.value, str) else None
            if literal is not None and "\n" in literal:
                continue  # a check of the layout itself ("\n" not in message, "example:\n  study ")
            if MESSAGE_TEXT.search(right) and not (literal is not None and " " not in literal.strip()):
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_test_matches_user_facing_text_across_a_possible_line_break() -> None:
    """Multi-word phrases (and paths, which may hold spaces) in CLI output, error text, warnings and logs go
    through assert_says / assert_not_says / says, never ``in`` or ``match=``; a line that must test the raw
    text says so with the comment ``# unnormalised on purpose``."""
    offences = [o for path in sorted(TESTS.rglob("test_*.py")) if path.name != Path(__file__).name
                for o in _offences(path)]
    assert offences == []
