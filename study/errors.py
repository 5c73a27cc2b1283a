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



def close_match(word: str, options: object, *, cutoff: float = 0.6) -> str | None:
    """The option closest to ``word`` by ``difflib`` (or equal to it but for case), or None."""
    import difflib  # standard library, only where a message is being written

    choices = [str(o) for o in options]  # type: ignore[attr-defined]
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=cutoff)
    if not close:  # case alone: `Title` for `title`
        close = [c for c in choices if c.lower() == str(word).lower()][:1]
    return close[0] if close else None


def did_you_mean(word: str, options: object) -> str:
    """``" Did you mean 'x'?"`` for the option closest to ``word``, or ``""`` when none is close:
    ``train.epoch`` -> ``train.epochs``, ``search_trm`` -> ``search_term``."""
    close = close_match(word, options)
    return f" Did you mean {close!r}?" if close else ""


def missing_path(path: object, what: str = "The data file") -> str:
    """``"The data file X does not exist."`` plus the closest name in its folder, when one is close (a typo
    in the file name: ``pairs.cvs`` for ``pairs.csv``), or a word that its folder is missing too."""
    from pathlib import Path

    path = Path(str(path))
    folder = path.parent
    try:
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    except OSError:
        names = []
    close = close_match(path.name, names)
    if close is not None:
        hint = f" Did you mean {str(folder / close)!r}?"
    elif not folder.is_dir():
        hint = f" Its folder {folder} does not exist either."
    else:
        hint = ""
    return f"{what} {path} does not exist.{hint}"
