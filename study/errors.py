"""The user-facing error type: bad input that the CLI turns into one paragraph and exit code 2."""

from __future__ import annotations


class UserInputError(Exception):
    """A problem with what the user gave us (a file, a column, a config value).

    The message is a complete, one-paragraph explanation: what is wrong, where (file, column,
    rows), and what to do about it. The CLI prints it as is and exits with code 2.
    """


def describe_rows(index: list[int] | object, *, limit: int = 5) -> str:
    """Human row numbers (1-based, as in a spreadsheet with a header on line 1 -> data from row 2)."""
    rows = [int(i) for i in list(index)]
    shown = ", ".join(str(r + 2) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) != 1 else ''} {shown}{more}"
